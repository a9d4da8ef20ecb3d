"""Draw a digit: a 28x28 canvas on the cursor keys, predicted live by the model trained in the dashboard or by
a loaded checkpoint. The drawing is scaled and centred the way MNIST's digits were before the model sees it."""

from __future__ import annotations

import functools

import numpy as np
from rich.text import Text
from textual import work
from textual.worker import get_current_worker
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from convtui.core.training import drawn_digits, snapshots
from convtui.toy.formatting import format_percent, truncate
from convtui.tui.train_worker import kernel_lock, latest_model
from convtui.tui.widgets.canvas import DrawingCanvas
from convtui.tui.widgets.heatmap import HeatmapGrid

TEST_DIGITS_SHOWN = 100  # `t` cycles through the first test digits


@functools.lru_cache(maxsize=1)
def _first_test_digits():
    """Read once: decompressing the test set on every key press would stall the UI thread."""
    from convtui.core.storage.datasets import load_split

    return load_split("test", limit=TEST_DIGITS_SHOWN)

BAR_WIDTH = 30
LARGE_CANVAS_HEIGHT = 36  # below this terminal height the canvas uses half blocks


def prediction_lines(probs: np.ndarray) -> Text:
    """One bar per digit; the most likely one is highlighted."""
    best = int(np.argmax(probs))
    lines = []
    for digit, p in enumerate(probs):
        bar = "█" * int(truncate(p * BAR_WIDTH, 0))
        style = "bold green" if digit == best else ""
        lines.append(Text.assemble((f"{digit} ", "bold"), (bar.ljust(BAR_WIDTH), style or "cyan"),
                                   (f" {format_percent(p, 1):>6}", style)))
    return Text("\n").join(lines)


class DrawScreen(Screen):
    """Draw a digit and watch the model's guess change with every stroke."""

    HELP = (
        "Move the pen with the cursor keys; it draws, erases or just moves (space switches). Enter inks one "
        "dab, c clears, t puts a real MNIST test digit on the canvas (again for the next one).\n\n"
        "The model is the one the dashboard trained last (m), or a checkpoint or run folder you load (l, type "
        "the path, enter). On the right: what the model sees (your drawing scaled to 20 pixels and centred by "
        "mass, as MNIST's digits were) and its probability for each digit.\n\n"
        "Percentages are truncated, never rounded, as in every lesson: 99.7% is 99% sure, and 100% means "
        "exactly 1.")

    BINDINGS = [
        # Short labels: with the canvas's and the app's keys, the footer must fit 80 columns.
        Binding("l", "load", "Load", tooltip="Load a checkpoint or run folder"),
        Binding("m", "latest", "Trained", tooltip="The dashboard's latest model"),
        Binding("t", "test_digit", "Digit", tooltip="Next MNIST test digit"),
    ]

    DEFAULT_CSS = """
    DrawScreen #draw-main { height: 1fr; }
    DrawScreen #draw-side { width: 1fr; padding: 0 1; }
    DrawScreen #draw-model { height: auto; color: $text-muted; }
    DrawScreen #draw-guess { height: auto; margin-top: 1; }
    DrawScreen #draw-bars { height: auto; margin-top: 1; }
    DrawScreen #draw-seen { margin-top: 1; }
    DrawScreen #draw-path { display: none; }
    DrawScreen #draw-path.shown { display: block; }
    """

    def __init__(self):
        super().__init__()
        self.model = None
        self.model_name = ""
        self.following = False  # True: use the dashboard's newest model at every stroke (it may be training)
        self.test_index = -1
        self.last_probs: np.ndarray | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="draw-main"):
            yield DrawingCanvas(id="canvas")
            with Vertical(id="draw-side"):
                yield Static("", id="draw-model")
                yield Input(placeholder="checkpoint.npz or run folder, then enter", id="draw-path")
                yield Static("", id="draw-guess")
                yield Static("", id="draw-bars")
                yield HeatmapGrid(id="draw-seen", title="what the model sees (scaled and centred like MNIST)")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.fit_canvas()
        self.query_one(DrawingCanvas).focus()
        self.action_latest(quiet=True)
        self.show_model()

    def on_resize(self) -> None:
        self.fit_canvas()

    def fit_canvas(self) -> None:
        self.query_one(DrawingCanvas).set_class(self.app.size.height < LARGE_CANVAS_HEIGHT, "small")

    def on_screen_resume(self) -> None:
        if self.model is None:
            self.action_latest(quiet=True)

    # ---------------------------------------------------------------- model
    def action_latest(self, quiet: bool = False) -> None:
        if latest_model.model is None:
            if not quiet:
                self.notify("no model trained yet: train one on the dashboard, or load one with l",
                            severity="warning")
            return
        self.model, self.model_name = latest_model.model, latest_model.description
        self.following = True
        self.show_model()
        self.predict_now()

    def action_load(self) -> None:
        path = self.query_one("#draw-path", Input)
        path.add_class("shown")
        path.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.load_model(event.value)

    @work(thread=True, exclusive=True, group="load")
    def load_model(self, text: str) -> None:
        """Read a checkpoint (or a run folder's) off the UI thread; every problem becomes one message."""
        from convtui.core.storage.checkpoint import load_model
        from convtui.core.storage.run_folder import RunError, read_run
        from convtui.served_paths import confine_to_served_runs

        try:
            run = confine_to_served_runs(read_run)(text)  # a served session opens runs under ./runs only
            if run.checkpoint is None:
                raise RunError(f"{run.path} has no checkpoint.npz to predict with")
            model, checkpoint = load_model(run.checkpoint)
            if model.input_shape != (1, 28, 28):  # the canvas is MNIST's 28x28; a model for other sizes can't read it
                raise RunError(f"{run.checkpoint}: the model takes {model.input_shape[1]}x{model.input_shape[2]} "
                               f"images, the canvas draws 28x28 digits")
        except Exception as exc:  # RunError, CheckpointError, OSError: all are the user's to fix
            self.app.call_from_thread(self.notify, str(exc), severity="error", timeout=8)
            return
        self.app.call_from_thread(self.use_loaded, model, f"{checkpoint.model_name} from {run.checkpoint}")

    def use_loaded(self, model, name: str) -> None:
        self.model, self.model_name, self.following = model, name, False
        path = self.query_one("#draw-path", Input)
        path.remove_class("shown")
        self.query_one(DrawingCanvas).focus()
        self.show_model()
        self.predict_now()

    def show_model(self) -> None:
        text = f"model: {self.model_name}" if self.model is not None else (
            "no model yet: train one on the dashboard (then m) or load a checkpoint with l")
        self.query_one("#draw-model", Static).update(text)

    # ---------------------------------------------------------------- drawing and predicting
    def action_test_digit(self) -> None:
        """Put the next MNIST test digit on the canvas, to see what the model was trained on."""
        from convtui.core.storage.datasets import DataError

        try:
            test = _first_test_digits()
        except DataError as exc:
            self.notify(f"no MNIST test digits: {exc}", severity="error")
            return
        self.test_index = (self.test_index + 1) % len(test)
        self.query_one(DrawingCanvas).set_pixels(test.images[self.test_index] / 255.0)

    def on_drawing_canvas_changed(self, message: DrawingCanvas.Changed) -> None:
        if self.following and latest_model.model is not self.model:
            self.model, self.model_name = latest_model.model, latest_model.description
            self.show_model()
        seen = drawn_digits.centre_like_mnist(message.pixels)
        self.query_one("#draw-seen", HeatmapGrid).set_images([seen])
        self.predict(seen)

    def predict_now(self) -> None:
        self.predict(drawn_digits.centre_like_mnist(self.query_one(DrawingCanvas).pixels))

    @work(thread=True, exclusive=True, group="predict")
    def predict(self, seen: np.ndarray) -> None:
        model = self.model
        if model is None:
            return
        if not seen.any():
            self.app.call_from_thread(self.show_prediction, None)
            return
        with kernel_lock:  # waits for the trainer's current step if the dashboard is training
            probs = snapshots.predict(model, seen.astype(np.float32).reshape(1, 1, 28, 28))[0]
        if get_current_worker().is_cancelled:  # a newer drawing's prediction is on its way: do not cover it
            return
        self.app.call_from_thread(self.show_prediction, probs)

    def show_prediction(self, probs: np.ndarray | None) -> None:
        self.last_probs = probs
        guess, bars = self.query_one("#draw-guess", Static), self.query_one("#draw-bars", Static)
        if probs is None:
            guess.update("draw a digit: the canvas is empty")
            bars.update("")
            return
        best = int(np.argmax(probs))
        guess.update(Text.assemble("the model says ", (str(best), "bold green"),
                                   f" ({format_percent(probs[best])} sure)"))
        bars.update(prediction_lines(probs))
