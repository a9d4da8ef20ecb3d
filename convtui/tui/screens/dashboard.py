"""Train on MNIST and watch it learn: the live dashboard, on the same event generator as `convtui train`.

The form (left) is derived from TrainConfig. Training runs on a thread worker (see `train_worker`); this screen
only turns the worker's messages into widget updates, on the UI thread. `state` is a RunState (see run_state):
every change goes through its transition table. The one way to ask a run to stop is `self.control.request_stop()`.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from convtui.core.training import events as ev
from convtui.core.training.config import ConfigError, TrainConfig
from convtui.core.training.text import format_event, format_percent
from convtui.tui.run_state import RunState, next_state, why_no_pause, why_no_stop
from convtui.tui.screens.dashboard_form import TrainForm, form_message
from convtui.tui.screens.dashboard_panels import Panels
from convtui.tui.train_worker import (RunControl, SlotWaiting, SnapshotReady, StepUpdate, TrainEvent, TrainFailed,
                                      TrainingSession, latest_model, make_samples)

# The plots redraw at most once a second while training (and at every snapshot); the status line up to 10 times.
# plotext builds each chart in Python on the UI thread, whose CPU and GIL the training threads then wait for.
# Measured on the cnn at 120x40, 2 cores, 20 s windows: redrawing 4 times a second kept the UI thread 18-21% busy
# and the run at 1,000-1,290 img/s; once a second, 10-11% and 1,350-1,500 img/s (headless: 1,800-2,000).
REPLOT_INTERVAL_S = 1.0
clock = time.monotonic  # the replot throttle's clock (a test replaces it, not the event loop's)
READY_TEXT = "ready: choose settings, then press ctrl+s (or enter in a field) to start"


def done_status(done: ev.Done, step: ev.Step, epochs: int) -> str:
    """The status line of an ended run: how it ended and where, without the speed and ETA of a running one
    (a stopped run has no time left to wait for)."""
    return (f"{done.reason} | epoch {step.epoch + 1}/{epochs} step {step.step} | loss {step.running_loss:.3f} | "
            f"acc {format_percent(step.running_accuracy)} | lr {step.lr:.3g}")


class DashboardScreen(Screen):
    """Live MNIST training: accuracy, loss, digits, weights, confusion matrix, filters and feature maps."""

    HELP = (
        "Pick a model preset and its settings on the left (tab moves between fields); ctrl+s starts from "
        "anywhere, enter from a field, s when no field is focused. A field you typed in keeps its value when "
        "you change the preset; the others take the preset's. Training runs on our own Numba kernels in a worker thread; the first run compiles them.\n\n"
        "Panels: 1 accuracy, 2 loss, 3 training digits (mistakes first, in red), 4 weight and bias percentile "
        "bands over time, 5 test digits, 6 confusion matrix, 7 (cnn) the conv1 filters and one test digit's "
        "feature maps through conv1, pool1, conv2 and pool2 ([ and ] choose the digit).\n\n"
        "Stopping keeps what was learned: the run folder under ./runs holds config.json, metrics.csv and "
        "checkpoint.npz (open it in Runs). Escape stops the run the same way and goes back to the lessons "
        "once the step in flight has ended; d (draw a digit) keeps it training underneath.")

    HELP_KEYS = (("tab/shift+tab", "Next / previous field"), ("enter", "Start"))  # the form's own keys
    BINDINGS = [
        # `s` alone would type an "s" in a focused field: ctrl+s starts from anywhere, s where no field has focus.
        Binding("ctrl+s", "start", "Start", key_display="^s"),
        Binding("s", "start", "Start (no field focused)", show=False),
        Binding("space", "pause", "Pause/resume"),
        Binding("x", "stop", "Stop"),
        Binding("n", "settings", "Form", tooltip="Show or hide the settings form"),  # short: the footer fits 80 columns
        Binding("1", "zoom(1)", "Zoom", key_display="1-7", tooltip="Zoom panel 1"),
        *[Binding(str(n), f"zoom({n})", f"Zoom panel {n}", show=False) for n in range(2, 8)],
        Binding("0", "zoom(0)", "All"),
        Binding("left_square_bracket", "digit(-1)", "Digit", key_display="[ ]", tooltip="Previous digit"),
        Binding("right_square_bracket", "digit(1)", "Next digit", key_display="]", show=False),
        Binding("d", "draw", "Draw"),
        Binding("escape", "leave", "Back"),
        Binding("backspace", "leave", "Back", show=False),  # the app's other back key: same wait for the trainer
    ]

    DEFAULT_CSS = """
    DashboardScreen #dash-main { height: 1fr; }
    DashboardScreen #dash-right { height: 1fr; width: 1fr; }
    DashboardScreen #status { height: 1; padding: 0 1; background: $boost; }
    DashboardScreen #message { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    DashboardScreen.running TrainForm { display: none; }
    DashboardScreen.form-hidden TrainForm { display: none; }
    """

    state: reactive[RunState] = reactive(RunState.IDLE, init=False)

    def __init__(self, runs_root: str | Path = "runs", initial: TrainConfig | None = None,
                 sample_sizes: tuple[int, int] = (300, 1000)):
        super().__init__()
        self.runs_root, self.initial, self.sample_sizes = Path(runs_root), initial, sample_sizes
        self.control: RunControl | None = None  # the current run's pause, stop and digit controls
        self.session: TrainingSession | None = None  # set by the worker once the trainer is built
        self.slot_wait: str | None = None  # the training slot's waiting line while `convtui serve` queues this run
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
                yield Static(READY_TEXT, id="status")
                yield Static("", id="message")
                yield Panels(id="panels")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#form-model").focus()

    def validate_state(self, wanted: RunState) -> RunState:
        return next_state(self.state, wanted)  # raises IllegalTransition on a move the table does not allow

    def watch_state(self, state: RunState) -> None:
        self.set_class(state.in_progress, "running")
        self.show_status()

    # ---------------------------------------------------------------- keys
    def action_start(self) -> None:
        if self.state.in_progress:
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
        if self.state is RunState.RUNNING:
            self.control.pause()
            self.state = RunState.PAUSED
        elif self.state is RunState.PAUSED:
            self.control.resume()
            self.state = RunState.RUNNING
        else:
            self.notify(why_no_pause(self.state, "ctrl+s starts a run"))

    def action_stop(self) -> None:
        if self.state.can_stop:
            self.state = RunState.STOPPING
            self.control.request_stop()  # reaches the trainer even while it is still loading the data
        elif not self.leaving:  # leaving stops a running run; after it there is nothing to say
            self.notify(why_no_stop(self.state, "ctrl+s starts a run"))

    def action_settings(self) -> None:
        """Show or hide the settings form (it hides itself while a run is going)."""
        if self.state.in_progress:
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
        if self.control is not None:
            self.control.follow_digit(self.feature_index)
        self.say(f"feature maps follow test digit #{self.feature_index}")

    def action_leave(self) -> None:
        """Back to the lessons. During a run, stop it first (saving its checkpoint) and go back once the step in
        flight has ended, so a lesson never competes with training for the two cores."""
        if self.state.in_progress:
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
        self.last_step, self.last_done, self.snapshots_shown = None, None, 0
        self.session, self.slot_wait = None, None
        self.control = RunControl(feature_index=self.feature_index)
        self.state = RunState.COMPILING
        self.set_focus(None)
        self.query_one(Panels).clear()
        self.say(f"{config.model}: loading MNIST ...")
        self.run_training(config, default_run_dir(config.model, self.runs_root), self.control)

    @work(thread=True, exclusive=True, group="training")
    def run_training(self, config: TrainConfig, out_dir: Path, control: RunControl) -> None:
        """On a worker thread: build the trainer (loads data), then pull its events until Done."""
        from convtui.core.training.trainer import Trainer

        worker = get_current_worker()
        try:
            trainer = Trainer(config, out_dir=out_dir)
            samples = make_samples(trainer, *self.sample_sizes)
        except Exception as exc:  # DataError, CheckpointError, a full disk: one line in the app
            self.post_message(TrainFailed(f"cannot start: {exc}"))
            return
        # A stop asked for while the data was loading is already in `control`: the session passes it on.
        self.session = TrainingSession(trainer, samples, self.post_message, lambda: worker.is_cancelled,
                                       control=control)
        self.session.run()

    def on_train_event(self, message: TrainEvent) -> None:
        event = message.event
        self.slot_wait = None  # the trainer only speaks once it holds the training slot
        text = format_event(event, self.epochs)
        if isinstance(event, ev.Compiling):
            self.state = RunState.COMPILING  # already so (or stopping): see run_state.IGNORED
        elif isinstance(event, ev.TrainStart):
            self.state = RunState.RUNNING  # unless x was pressed while it loaded
            self.start_event = event
        elif isinstance(event, ev.EpochEnd):
            self.share_model(f"after epoch {event.epoch + 1}")
            panels = self.query_one(Panels)
            if event.val_accuracy is not None:
                panels.add_test_point(event.epoch + 1.0, event.val_loss, event.val_accuracy, "val",
                                      "test")
            panels.replot()
        elif isinstance(event, ev.Done):
            self.finish(event)  # says the formatted text with what to do next
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
        now = clock()
        # A paused or stopping run draws its last points at once: the learner is looking at them now.
        if now - self._last_replot >= REPLOT_INTERVAL_S or self.state is not RunState.RUNNING:
            self._last_replot = now
            panels.replot()
        self.show_status()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        snapshot = message.snapshot
        panels = self.query_one(Panels)
        panels.add_test_point(message.x, snapshot.test.loss, snapshot.test.accuracy, "test",
                              "sample")
        panels.show_snapshot(snapshot, message.bands, message.where)
        self.share_model(f"at step {snapshot.step}, training")
        panels.replot()
        self.snapshots_shown += 1

    def on_slot_waiting(self, message: SlotWaiting) -> None:
        self.slot_wait = message.text
        self.say(f"{message.text}; your run starts when the slot is free (x cancels)")
        self.show_status()

    def on_train_failed(self, message: TrainFailed) -> None:
        self.state = RunState.FAILED
        self.say(message.text)
        self.notify(message.text, severity="error", timeout=8)
        if self.leaving:  # the run ended on its own while we waited to leave: go back as asked
            self.leaving = False
            self.app.action_back()

    def finish(self, done: ev.Done) -> None:
        self.last_done = done
        self.state = RunState.DONE
        self.set_class(True, "form-hidden")
        self.query_one(Panels).replot()
        steps = self.last_step.global_step if self.last_step is not None else 0
        self.share_model(f"({done.reason} after {steps} steps)")
        self.say(f"{format_event(done)} | ctrl+s: new run, n: settings, d: draw a digit")

    def share_model(self, description: str) -> None:
        """Hand the worker's copy of the model to the draw screen (a copy: training goes on meanwhile)."""
        if self.session is not None and self.session.model_copy is not None:
            latest_model.set(self.session.model_copy, f"{self.session.trainer.config.model} {description}")

    def on_unmount(self) -> None:
        # Quitting the app (q) ends the run too; the trainer saves what was learned before the worker returns.
        if self.control is not None:
            self.control.request_stop()

    # ---------------------------------------------------------------- status line
    def show_status(self) -> None:
        step, state = self.last_step, self.state
        if state is RunState.COMPILING and self.slot_wait:
            text = "[b]waiting for a training slot[/b]: every slot is in use by other sessions (x cancels)"
        elif state is RunState.COMPILING:
            text = "[b]compiling kernels[/b] (first run only) and loading MNIST ..."
        elif step is None:
            text = {RunState.IDLE: READY_TEXT,
                    RunState.FAILED: "failed: see the message below; n shows the settings",
                    RunState.STOPPING: "stopping after the current step ..."}.get(state, str(state))
        elif state is RunState.DONE and self.last_done is not None:
            text = done_status(self.last_done, step, self.epochs)
        else:
            label = {RunState.RUNNING: "training", RunState.PAUSED: "[b]paused[/b] (space resumes)",
                     RunState.STOPPING: "stopping ...", RunState.DONE: "finished"}.get(state, str(state))
            text = f"{label} | {format_event(step, self.epochs)} | lr {step.lr:.3g}"
        self.query_one("#status", Static).update(text)
