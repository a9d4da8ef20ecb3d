"""Train on MNIST and watch it learn: the live dashboard, on the same event generator as `convtui train`.

The form (left) is derived from TrainConfig. Training runs on a thread worker (see `train_worker`); this screen
only turns the worker's messages into widget updates, on the UI thread.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from convtui.core.training import events as ev
from convtui.core.training.config import ConfigError, TrainConfig
from convtui.core.training.text import format_event
from convtui.tui.screens.dashboard_form import TrainForm, form_message
from convtui.tui.screens.dashboard_panels import Panels
from convtui.tui.train_worker import (SnapshotReady, StepUpdate, TrainEvent, TrainFailed, TrainingSession,
                                      latest_model, make_samples)

REPLOT_INTERVAL_S = 0.25  # the plots redraw at most 4 times a second; the status line up to 10


class DashboardScreen(Screen):
    """Live MNIST training: accuracy, loss, digits, weights, confusion matrix, filters and feature maps."""

    HELP = (
        "Pick a model preset and its settings on the left (tab moves between fields, enter starts), or press "
        "[b]s[/b]. Training runs on our own Numba kernels in a worker thread; the first run compiles them.\n\n"
        "Panels: 1 accuracy, 2 loss, 3 training digits (mistakes first, in red), 4 weight and bias percentile "
        "bands over time, 5 test digits, 6 confusion matrix, 7 (cnn) the conv1 filters and one test digit's "
        "feature maps through conv1, pool1, conv2 and pool2 ([ and ] choose the digit).\n\n"
        "Stopping keeps what was learned: the run folder under ./runs holds config.json, metrics.csv and "
        "checkpoint.npz (open it in Runs). Escape stops the run the same way and goes back to the lessons "
        "once the step in flight has ended; d (draw a digit) keeps it training underneath.")

    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("space", "pause", "Pause/resume"),
        Binding("x", "stop", "Stop"),
        Binding("n", "settings", "Settings"),
        Binding("1", "zoom(1)", "Zoom", key_display="1-7"),
        *[Binding(str(n), f"zoom({n})", f"Zoom panel {n}", show=False) for n in range(2, 8)],
        Binding("0", "zoom(0)", "All"),
        Binding("left_square_bracket", "digit(-1)", "Digit", key_display="[ ]"),
        Binding("right_square_bracket", "digit(1)", "Next digit", key_display="]", show=False),
        Binding("d", "draw", "Draw"),
        Binding("escape", "leave", "Back"),
        Binding("backspace", "leave", "Back", show=False),  # the app's other back key: same wait for the trainer
    ]

    DEFAULT_CSS = """
    DashboardScreen #dash-main { height: 1fr; }
    DashboardScreen #dash-right { height: 1fr; width: 1fr; }
    DashboardScreen #status { height: 1; padding: 0 1; background: $boost; }
    DashboardScreen #message { height: 1; padding: 0 1; color: $text-muted; }
    DashboardScreen.running TrainForm { display: none; }
    DashboardScreen.form-hidden TrainForm { display: none; }
    """

    def __init__(self, runs_root: str | Path = "runs", initial: TrainConfig | None = None,
                 sample_sizes: tuple[int, int] = (300, 1000)):
        super().__init__()
        self.runs_root, self.initial, self.sample_sizes = Path(runs_root), initial, sample_sizes
        self.session: TrainingSession | None = None
        self.state = "idle"  # idle, compiling, running, paused, stopping, done, failed
        self.epochs = 0
        self.last_step: ev.Step | None = None
        self.last_done: ev.Done | None = None
        self.feature_index = 0
        self.snapshots_shown = 0
        self._last_replot = 0.0
        self.start_event: ev.TrainStart | None = None
        self.leaving = False  # escape pressed during a run: go back once the trainer has stopped
        self.log_lines: list[str] = []  # every message line shown, oldest first (the shared formatter's text)

    def compose(self) -> ComposeResult:
        with Horizontal(id="dash-main"):
            yield TrainForm(self.initial, id="form")
            with Vertical(id="dash-right"):
                yield Static("ready: choose settings, then press s (or enter) to start", id="status")
                yield Static("", id="message")
                yield Panels(id="panels")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#form-model").focus()

    # ---------------------------------------------------------------- keys
    def action_start(self) -> None:
        if self.state in ("compiling", "running", "paused", "stopping"):
            self.notify("a run is in progress: x stops it first", severity="warning")
            return
        form = self.query_one(TrainForm)
        try:
            config = form.config()
        except ConfigError as exc:
            form.show_error(form_message(exc))
            self.set_class(False, "form-hidden")
            return
        form.show_error("")
        self.start_training(config)

    def on_train_form_start_requested(self, message: TrainForm.StartRequested) -> None:
        self.action_start()

    def action_pause(self) -> None:
        if self.session is None:
            return
        if self.state == "running":
            self.session.pause()
            self.state = "paused"
        elif self.state == "paused":
            self.session.resume()
            self.state = "running"
        self.show_status()

    def action_stop(self) -> None:
        if self.state in ("compiling", "running", "paused"):
            self.state = "stopping"
            if self.session is not None:  # else the worker sees "stopping" once the data is loaded
                self.session.stop()
            self.show_status()

    def action_settings(self) -> None:
        """Show or hide the settings form (it hides itself while a run is going)."""
        if self.state in ("compiling", "running", "paused", "stopping"):
            self.notify("settings are shown again when the run ends", severity="information")
            return
        hidden = not self.has_class("form-hidden")
        self.set_class(hidden, "form-hidden")
        if not hidden:
            self.query_one("#form-model").focus()
        else:
            self.set_focus(None)

    def action_zoom(self, number: int) -> None:
        self.query_one(Panels).zoom(number)
        self.query_one(Panels).replot()

    def action_digit(self, delta: int) -> None:
        """Follow another test digit through the layers (panel 7)."""
        self.feature_index = max(0, self.feature_index + delta)
        if self.session is not None:
            self.session.follow_digit(self.feature_index)
        self.say(f"feature maps follow test digit #{self.feature_index}")

    def action_leave(self) -> None:
        """Back to the lessons. During a run, stop it first (saving its checkpoint) and go back once the step in
        flight has ended, so a lesson never competes with training for the two cores."""
        if self.state in ("compiling", "running", "paused", "stopping"):
            self.leaving = True
            self.action_stop()
            self.say("stopping the run; back to the lessons when the current step has finished ...")
            return
        self.app.action_back()

    def action_draw(self) -> None:
        from convtui.tui.screens.draw import DrawScreen

        self.app.push_screen(DrawScreen())

    # ---------------------------------------------------------------- the run
    def start_training(self, config: TrainConfig) -> None:
        from convtui.core.storage.run_folder import default_run_dir

        self.epochs = config.epochs
        self.state, self.last_step, self.last_done, self.snapshots_shown = "compiling", None, None, 0
        self.session = None
        self.set_class(True, "running")
        self.set_focus(None)
        self.query_one(Panels).clear()
        self.say(f"{config.model}: loading MNIST ...")
        self.show_status()
        self.run_training(config, default_run_dir(config.model, self.runs_root))

    @work(thread=True, exclusive=True, group="training")
    def run_training(self, config: TrainConfig, out_dir: Path) -> None:
        """On a worker thread: build the trainer (loads data), then pull its events until Done."""
        from convtui.core.training.trainer import Trainer

        worker = get_current_worker()
        try:
            trainer = Trainer(config, out_dir=out_dir)
            samples = make_samples(trainer, *self.sample_sizes)
        except Exception as exc:  # DataError, CheckpointError, a full disk: one line in the app
            self.post_message(TrainFailed(f"cannot start: {exc}"))
            return
        session = TrainingSession(trainer, samples, self.post_message, lambda: worker.is_cancelled)
        session.control.feature_index = self.feature_index
        self.session = session
        if self.state == "stopping":  # x pressed while the data was loading
            session.stop()
        session.run()

    def on_train_event(self, message: TrainEvent) -> None:
        event = message.event
        text = format_event(event, self.epochs)
        if isinstance(event, ev.Compiling):
            self.state = "compiling" if self.state != "stopping" else self.state
        elif isinstance(event, ev.TrainStart):
            self.state = "running" if self.state == "compiling" else self.state
            self.start_event = event
        elif isinstance(event, ev.EpochEnd):
            self.share_model(f"after epoch {event.epoch + 1}")
            panels = self.query_one(Panels)
            if event.val_accuracy is not None:
                panels.add_test_point(event.epoch + 1.0, event.val_loss, event.val_accuracy, "val",
                                      "test, full set")
            panels.replot()
        elif isinstance(event, ev.Done):
            self.finish(event)  # says the formatted text with what to do next
            self.show_status()
            if self.leaving:
                self.leaving = False
                self.app.notify(f"training stopped on leaving the dashboard: {event.message}", timeout=6)
                self.app.action_back()
            return
        self.say(text)
        self.show_status()

    def say(self, text: str) -> None:
        self.log_lines.append(text)
        self.query_one("#message", Static).update(text)

    def on_step_update(self, message: StepUpdate) -> None:
        self.last_step = message.step
        start = self.start_event
        if start is not None and start.n_val and message.step.step == start.steps_per_epoch:
            # The trainer now measures the whole test set: say so, or the screen looks stuck for a while.
            self.say(f"epoch {message.step.epoch + 1}: measuring loss and accuracy on {start.n_val:,} test images ...")
        panels = self.query_one(Panels)
        panels.add_train_points(message.points)
        now = time.monotonic()
        if now - self._last_replot >= REPLOT_INTERVAL_S:
            self._last_replot = now
            panels.replot()
        self.show_status()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        snapshot = message.snapshot
        panels = self.query_one(Panels)
        panels.add_test_point(message.x, snapshot.test.loss, snapshot.test.accuracy, "test",
                              "test sample")
        panels.show_snapshot(snapshot, message.bands)
        self.share_model(f"at step {snapshot.step}, training")
        panels.replot()
        self.snapshots_shown += 1

    def on_train_failed(self, message: TrainFailed) -> None:
        self.state = "failed"
        self.set_class(False, "running")
        self.say(message.text)
        self.notify(message.text, severity="error", timeout=8)
        self.show_status()
        if self.leaving:  # the run ended on its own while we waited to leave: go back as asked
            self.leaving = False
            self.app.action_back()

    def finish(self, done: ev.Done) -> None:
        self.last_done, self.state = done, "done"
        self.set_class(False, "running")
        self.set_class(True, "form-hidden")
        self.query_one(Panels).replot()
        steps = self.last_step.global_step if self.last_step is not None else 0
        self.share_model(f"({done.reason} after {steps} steps)")
        self.say(f"{format_event(done)} | s: new run, n: settings, d: draw a digit")

    def share_model(self, description: str) -> None:
        """Hand the worker's copy of the model to the draw screen (a copy: training goes on meanwhile)."""
        if self.session is not None and self.session.model_copy is not None:
            latest_model.set(self.session.model_copy, f"{self.session.trainer.config.model} {description}")

    def on_unmount(self) -> None:
        # Quitting the app (q) ends the run too; the trainer saves what was learned before the worker returns.
        if self.session is not None:
            self.session.stop()

    # ---------------------------------------------------------------- status line
    def show_status(self) -> None:
        step, state = self.last_step, self.state
        if state == "compiling":
            text = "[b]compiling kernels[/b] (first run only) and loading MNIST ..."
        elif step is None:
            text = {"idle": "ready: choose settings, then press s (or enter) to start",
                    "failed": "failed: see the message below; n shows the settings",
                    "stopping": "stopping after the current step ..."}.get(state, state)
        else:
            label = {"running": "training", "paused": "[b]paused[/b] (space resumes)",
                     "stopping": "stopping ...", "done": "finished"}.get(state, state)
            text = f"{label} | {format_event(step, self.epochs)} | lr {step.lr:.3g}"
        self.query_one("#status", Static).update(text)
