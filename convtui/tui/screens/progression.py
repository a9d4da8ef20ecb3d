"""The lecture's story in one run: softmax, mlp-sigmoid, mlp-relu, mlp and cnn trained back to back.

The steps and the class-length plan are data (`core/training/progression.py`); each trained step goes through the
dashboard's own `TrainingSession` (pause, stop, snapshots, the training slot) and writes a normal run folder under
./runs named "<time>-progression-<model>". One `RunControl` serves the whole progression, so space and x act on
whichever step is training. The figures the full-length presets reach are data too (`measured_accuracy.py`).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from convtui.core.training import events as ev
from convtui.core.training.progression import CLASS_PLAN, Plan, Reuse, find_reusable, run_folder_name, write_marker
from convtui.core.training.text import format_duration, plural
from convtui.tui.run_state import RunState, next_state, why_no_pause, why_no_stop
from convtui.tui.screens.lesson_base import LessonScreen
from convtui.tui.train_worker import (RunControl, SlotWaiting, SnapshotReady, StepUpdate, TrainEvent, TrainFailed,
                                      TrainingSession, make_samples)
from convtui.tui.screens.progression_view import MARKERS, Row, format_accuracy, results_table, time_left
from convtui.tui.widgets.plots import MetricPlot
REPLOT_INTERVAL_S = 0.25


class StepBegins(Message):
    """The worker moves to step `index`; `reuse` is the run standing in for it (nothing is trained then)."""

    def __init__(self, index: int, reuse: Reuse | None, folder: Path | None = None) -> None:
        super().__init__()
        self.index, self.reuse, self.folder = index, reuse, folder


class RunsFound(Message):
    """The runs under ./runs that match a step of the plan (found on a worker thread)."""

    def __init__(self, found: dict[str, Reuse]) -> None:
        super().__init__()
        self.found = found


class ProgressionEnded(Message):
    def __init__(self, completed: bool) -> None:
        super().__init__()
        self.completed = completed


class ProgressionScreen(LessonScreen):
    """Train the lecture's five steps back to back and compare them in one plot and one table."""

    TITLE = "The progression"
    INTRO = ("The lecture's story in one run: one layer (about 92%), more layers with sigmoid, then He init, Adam "
             "and ReLU, then dropout and learning-rate decay, then a CNN. s trains all five on a class-length "
             "plan; u reuses matching runs from ./runs and trains only the rest.")
    HELP = (
        "s trains the lecture's five steps back to back (softmax, mlp-sigmoid, mlp-relu, mlp, cnn), each on the "
        "plan shown (training images and epochs chosen to finish in a few minutes on a 2-core machine; the status "
        "line estimates how long on this one), all "
        "tested on the same test images. Their test accuracy overlays live in one plot: the points inside an "
        "epoch are measured on 1,000 test digits, the epoch ends on all the plan's test images.\n\n"
        "u does the same but takes a step from ./runs when a run there trained it exactly as the plan would "
        "(same preset settings, training images and test images, at least the plan's epochs; any seed): the "
        "table says which steps were reused. The last column is what each preset reaches at full length "
        "(60,000 images, 10 epochs), measured by benchmarks/accuracy.py.\n\n"
        "space pauses and resumes, x stops (the step in flight saves its checkpoint; finished steps keep their "
        "run folders, named <time>-progression-<model>, so Runs opens them). Escape stops the same way and goes "
        "back once the step in flight has ended.")
    BINDINGS = [
        Binding("s", "start(False)", "Run all five"),
        Binding("u", "start(True)", "Reuse runs"),
        Binding("space", "pause", "Pause/resume"),
        Binding("x", "stop", "Stop"),
        Binding("escape", "leave", "Back"),
        Binding("backspace", "leave", "Back", show=False),
    ]

    def __init__(self, runs_root: str | Path = "runs", plan: Plan = CLASS_PLAN):
        super().__init__()
        self.runs_root, self.plan = Path(runs_root), plan
        self.state = RunState.IDLE
        self.control: RunControl | None = None
        self.rows = [Row() for _ in plan.steps]
        self.current = -1  # the step the worker is on
        self.available: dict[str, Reuse] = {}  # matching runs found under runs_root
        self.reusing = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.last_step: ev.Step | None = None
        self.leaving = False
        self.message = ""
        self.log_lines: list[str] = []
        self._last_replot = 0.0

    # ---------------------------------------------------------------- layout
    def compose_lesson(self) -> ComposeResult:
        yield Static("", id="prog-status", classes="status")
        yield Static(self.plan_text(), id="prog-plan", classes="explanation")
        plot = MetricPlot("", id="prog-plot", bounds=(0.0, 100.0))
        plot.border_title = "test accuracy (%) per epoch"
        yield plot
        yield Static("", id="prog-table", classes="explanation")
        yield Static("", id="prog-message", classes="explanation")

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(1.0, self.show_status)  # the elapsed time ticks while a step trains
        self.scan_runs()

    def plan_text(self) -> str:
        groups: dict[tuple[int, int], list[str]] = {}
        for step in self.plan.steps:
            groups.setdefault((step.images, step.epochs), []).append(step.model)
        parts = [f"{', '.join(models)}: {images:,} images x {plural(epochs, 'epoch')}"
                 for (images, epochs), models in groups.items()]
        return (f"plan: {'; '.join(parts)}; tested on {self.plan.test_images:,} test images; "
                f"estimated {format_duration(self.plan.estimate_s())} on this 2-core machine")

    # ---------------------------------------------------------------- keys
    def action_start(self, reuse: bool) -> None:
        if self.state.in_progress:
            self.notify("the progression is running: x stops it first", severity="warning")
            return
        self.reusing = reuse
        self.rows = [Row() for _ in self.plan.steps]
        self.current, self.last_step, self.ended_at = -1, None, None
        self.started_at = time.monotonic()
        self.query_one("#prog-plot", MetricPlot).clear_series()
        self.control = RunControl()
        self.set_state(RunState.COMPILING)
        self.run_progression(self.plan, reuse, self.control)

    def action_pause(self) -> None:
        if self.state is RunState.RUNNING:
            self.control.pause()
            self.set_state(RunState.PAUSED)
        elif self.state is RunState.PAUSED:
            self.control.resume()
            self.set_state(RunState.RUNNING)
        else:
            self.notify(why_no_pause(self.state, "s runs all five, u reuses earlier runs"))

    def action_stop(self) -> None:
        if self.state.can_stop:
            self.set_state(RunState.STOPPING)
            self.control.request_stop()
        elif not self.leaving:  # leaving stops a running progression; after it there is nothing to say
            self.notify(why_no_stop(self.state, "s runs all five, u reuses earlier runs"))

    def action_leave(self) -> None:
        if self.state.in_progress:
            self.leaving = True
            self.action_stop()
            self.say("stopping the progression; back to the lessons when the current step has finished ...")
            return
        self.app.action_back()

    def on_unmount(self) -> None:
        if self.control is not None:
            self.control.request_stop()  # quitting the app ends the run too; the trainer saves first

    def set_state(self, wanted: RunState) -> None:
        self.state = next_state(self.state, wanted)
        self.show_status()

    # ---------------------------------------------------------------- workers
    @work(thread=True, exclusive=True, group="progression-scan")
    def scan_runs(self) -> None:
        self.post_message(RunsFound(find_reusable(self.plan, self.runs_root)))

    def on_runs_found(self, message: RunsFound) -> None:
        self.available = message.found
        if self.reusing and self.state.in_progress and not message.found:
            self.say(f"no run under {self.runs_root}/ matches a step of the plan: training all five")
        self.show_table()
        self.show_status()

    @work(thread=True, exclusive=True, group="training")
    def run_progression(self, plan: Plan, reuse_runs: bool, control: RunControl) -> None:
        """On a worker thread: each step in turn, reused (with `reuse_runs`, when ./runs holds a match as of now)
        or trained through a TrainingSession."""
        from convtui.core.storage.datasets import load_split
        from convtui.core.storage.run_folder import default_run_dir
        from convtui.core.training.trainer import Trainer

        worker = get_current_worker()
        outcome: list[str] = []

        def post(message: Message) -> bool:  # watch how each step ends, and pass everything on
            if isinstance(message, TrainFailed):
                outcome.append("failed")
            elif isinstance(message, TrainEvent) and isinstance(message.event, ev.Done):
                outcome.append(message.event.reason)
            return self.post_message(message)

        reuse = find_reusable(plan, self.runs_root) if reuse_runs else {}
        if reuse_runs:
            self.post_message(RunsFound(reuse))
        try:
            train_data = load_split("train")
            test_data = load_split("test").head(plan.test_images)
        except Exception as exc:  # DataError: one line in the app
            self.post_message(TrainFailed(f"cannot start: {exc}"))
            self.post_message(ProgressionEnded(False))
            return
        for index, step in enumerate(plan.steps):
            while not control.unpaused.wait(0.1):  # paused between two steps
                if worker.is_cancelled:
                    control.request_stop()
            if control.stop_requested or worker.is_cancelled:
                break
            if step.model in reuse:
                self.post_message(StepBegins(index, reuse[step.model]))
                continue
            folder = default_run_dir(run_folder_name(step.model), self.runs_root)
            try:
                folder.mkdir(parents=True)
                write_marker(folder, plan, step)
                trainer = Trainer(plan.config(step), out_dir=folder, train_data=train_data, val_data=test_data)
                samples = make_samples(trainer, 300, 1000)
            except Exception as exc:  # a full disk, an unwritable ./runs: one line in the app
                self.post_message(TrainFailed(f"cannot start {step.model}: {exc}"))
                break
            self.post_message(StepBegins(index, None, folder))
            outcome.clear()
            TrainingSession(trainer, samples, post, lambda: worker.is_cancelled, control=control).run()
            if outcome[-1:] != ["completed"]:
                break
        self.post_message(ProgressionEnded(not control.stop_requested and outcome[-1:] in (["completed"], [])))

    # ---------------------------------------------------------------- messages (UI thread)
    def on_step_begins(self, message: StepBegins) -> None:
        self.current, self.last_step = message.index, None
        step, row = self.plan.steps[message.index], self.rows[message.index]
        if message.reuse is not None:
            row.status, row.accuracy, row.folder = "reused", message.reuse.accuracy, message.reuse.run.name
            row.epochs_done = len(message.reuse.curve)
            row.curve = [(float(epoch), accuracy) for epoch, accuracy in message.reuse.curve]
            self.say(f"{step.model}: reused {row.folder} ({format_accuracy(row.accuracy)} after "
                     f"{plural(row.epochs_done, 'epoch')}), not retrained")
        else:
            row.status, row.folder, row.started = "training", str(message.folder.name), time.monotonic()
            self.say(f"{step.model}: training {step.images:,} images x {plural(step.epochs, 'epoch')} into "
                     f"{message.folder}")
        self.replot(force=True)
        self.show_table()
        self.show_status()

    def on_train_event(self, message: TrainEvent) -> None:
        event, row = message.event, self.rows[self.current]
        if isinstance(event, ev.TrainStart) and self.state is RunState.COMPILING:
            self.set_state(RunState.RUNNING)
        elif isinstance(event, ev.EpochEnd) and event.val_accuracy is not None:
            row.accuracy, row.epochs_done = event.val_accuracy, event.epoch + 1
            row.curve.append((event.epoch + 1.0, event.val_accuracy))
            self.replot(force=True)
            self.show_table()
        elif isinstance(event, ev.Done):
            row.status = {"completed": "done"}.get(event.reason, event.reason)
            row.seconds = time.monotonic() - row.started
            self.say(f"{self.plan.steps[self.current].model}: {event.reason}, {event.message}")
            self.show_table()
        self.show_status()

    def on_step_update(self, message: StepUpdate) -> None:
        self.last_step = message.step
        self.show_status()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        # Inside an epoch only: at an epoch's end the whole test set's figure (EpochEnd) stands there instead.
        if message.x != int(message.x) or message.x == 0:
            self.rows[self.current].curve.append((message.x, message.snapshot.test.accuracy))
            self.replot()

    def on_slot_waiting(self, message: SlotWaiting) -> None:
        self.say(f"{message.text}; the progression goes on when the slot is free (x cancels)")

    def on_train_failed(self, message: TrainFailed) -> None:
        stopped = self.control is not None and self.control.stop_requested  # x while waiting for a slot
        if 0 <= self.current < len(self.rows):
            self.rows[self.current].status = "stopped" if stopped else "failed"
        self.say(message.text)
        if not stopped:
            self.notify(message.text, severity="error", timeout=8)

    def on_progression_ended(self, message: ProgressionEnded) -> None:
        self.ended_at = time.monotonic()
        failed = any(row.status == "failed" for row in self.rows)
        self.set_state(RunState.FAILED if failed else RunState.DONE)
        trained = [s.model for s, r in zip(self.plan.steps, self.rows) if r.status == "done"]
        reused = [s.model for s, r in zip(self.plan.steps, self.rows) if r.status == "reused"]
        took = format_duration(self.ended_at - self.started_at)
        self.say(("finished" if message.completed else "stopped") + f" in {took}: trained "
                 f"{', '.join(trained) or 'none'}; reused {', '.join(reused) or 'none'}. s: run again")
        self.show_table()
        if self.leaving:
            self.leaving = False
            self.app.action_back()
            return
        self.scan_runs()  # the runs just trained are on offer now

    # ---------------------------------------------------------------- drawing
    def say(self, text: str) -> None:
        self.log_lines.append(text)
        self.message = text
        if self.is_mounted:
            self.query_one("#prog-message", Static).update(Text(text))

    def refresh_lesson(self) -> None:
        self.show_status()
        self.show_table()
        self.replot(force=True)

    def replot(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_replot < REPLOT_INTERVAL_S:
            return
        self._last_replot = now
        plot = self.query_one("#prog-plot", MetricPlot)
        plot.series.clear()
        for index, (step, row) in enumerate(zip(self.plan.steps, self.rows)):
            if row.curve:
                xs, ys = zip(*row.curve)
                plot.set_series(step.model, f"{index + 1} {step.model}", xs, [100 * y for y in ys],
                                MARKERS[index])
        plot.replot()

    def show_table(self) -> None:
        offered = self.available if not self.state.in_progress else {}
        self.query_one("#prog-table", Static).update(results_table(self.plan, self.rows, offered))

    def time_left(self) -> float:
        skipped = set(self.available) if self.reusing else set()
        return time_left(self.plan, self.rows, self.current, self.last_step, skipped)

    def show_status(self) -> None:
        if not self.is_mounted:
            return
        state = self.state
        if state is RunState.IDLE:
            offer = (f"u reuses the runs under {self.runs_root}/ that match {', '.join(self.available)}"
                     if self.available else f"no run under {self.runs_root}/ matches a step yet")
            text = f"ready: s trains all five steps | {offer}"
        else:
            end = self.ended_at if self.ended_at is not None else time.monotonic()
            elapsed = format_duration(end - self.started_at)
            label = {RunState.COMPILING: "starting", RunState.RUNNING: "training",
                     RunState.PAUSED: "[b]paused[/b] (space resumes)", RunState.STOPPING: "stopping ...",
                     RunState.DONE: "finished", RunState.FAILED: "failed"}[state]
            if any(r.status == "stopped" for r in self.rows) and state is RunState.DONE:
                label = "stopped"
            where = ""
            if 0 <= self.current < len(self.plan.steps) and state.in_progress:
                step = self.plan.steps[self.current]
                epoch = f" epoch {self.last_step.epoch + 1}/{step.epochs}" if self.last_step else ""
                where = f" | step {self.current + 1}/{len(self.plan.steps)} {step.model}{epoch}"
            left = (f" | about {format_duration(self.time_left())} left"
                    if state in (RunState.RUNNING, RunState.COMPILING) else "")
            again = ""
            if not state.in_progress:
                again = " | s: again" + (f", u: reuse {plural(len(self.available), 'matching run')}"
                                         if self.available else "")
            text = f"{label}{where} | elapsed {elapsed}{left}{again}"
        self.query_one("#prog-status", Static).update(text)

