"""The glue between the trainer's event generator and the dashboard: runs on a Textual thread worker.

The worker thread pulls events from `Trainer.events()`, so pausing is simply not pulling the next one, and
stopping asks the trainer to stop after the current step (it then writes its checkpoint and yields `Done`).
The screen steers a run through its `RunControl` only: pause, resume, follow a digit, and `request_stop()`, the
one way to stop a run (the stop key, leaving the screen and quitting all use it; a cancelled worker too).
Between steps it computes the panels' numeric snapshots (never touching a widget) and posts small messages;
step updates are throttled so the UI redraws at most ~10 times a second whatever the training speed.
The UI is not thread-safe: only the screen's message handlers, on the UI thread, change widgets.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from textual.message import Message

from convtui import runtime
from convtui.core.training import events as ev
from convtui.core.training import snapshots
from convtui.core.training.training_slot import training_slot

STEP_INTERVAL_S = 0.1  # at most ~10 step redraws per second
# A snapshot at least every second when it is cheap (an mlp trains ~1 epoch in 2 s here, so the old 2 s let the
# test digits trail the accuracy curve by an epoch), never taking more than ~10% of the training time.
SNAPSHOT_MIN_INTERVAL_S = 1.0
SNAPSHOT_MAX_SHARE = 0.1  # snapshots may take at most ~10% of the training time
SNAPSHOT_BUDGET_S = 0.8  # one snapshot should not hold the trainer (and the stop key) longer than this
CALIBRATION_IMAGES = 50  # test images timed once, warm, before the first snapshot, to size the samples
# Test digits per snapshot: the largest of these the model predicts within the budget, fixed for the whole run
# so every snapshot (and "n/1000 wrong") compares with the last; round numbers a learner can read as a share.
SAMPLE_SIZES = (1000, 500, 200, 100)
TRAIN_SHARE = 0.3  # training digits per test digit (300 beside 1,000)
EMA_ALPHA = 0.05  # smoothing of the per-batch train curves (a batch of 100 is noisy)

kernel_lock = threading.Lock()
"""Held by any thread while it runs the Numba kernels for a model. The training worker holds it for each step and
snapshot; the draw and runs screens take it before predicting. The kernels themselves are thread-safe (Numba's
`omp` layer, see convtui.core), but two models computing at once would split two cores and halve both, and a
prediction never sees weights half-way through an update."""


COMPUTE_NICENESS = 10  # how much lower than the UI thread the training threads run (Linux only)


def deprioritise_compute_threads() -> int:
    """Lower the scheduling priority of every thread of this process except the UI (main) thread.

    On a 2-core machine Numba's pool threads and OpenBLAS's threads keep both cores busy; at equal priority the
    UI thread waits its turn and a key press can take a second. Niced, they yield the CPU to it at once, and
    training loses nothing while the UI is idle. Returns how many threads were changed (0 where unsupported).
    An unprivileged process may raise niceness but never lower it, so this is done once and kept.
    """
    if not hasattr(os, "setpriority") or not os.path.isdir("/proc/self/task"):
        return 0
    ui_thread, changed = threading.main_thread().native_id, 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == ui_thread:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, int(tid)) < COMPUTE_NICENESS:
                os.setpriority(os.PRIO_PROCESS, int(tid), COMPUTE_NICENESS)
                changed += 1
        except OSError:  # the thread ended meanwhile, or the system forbids it: not worth failing over
            continue
    return changed


# ---------------------------------------------------------------------------------------------- messages
class TrainEvent(Message):
    """A Compiling, TrainStart, EpochEnd or Done event, forwarded as is (never dropped)."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event


class StepUpdate(Message):
    """The latest step, plus every smoothed curve point since the previous update (none is lost)."""

    def __init__(self, step: ev.Step, points: list[tuple[float, float, float]]) -> None:
        super().__init__()
        self.step, self.points = step, points  # points: (epoch as a fraction, loss, accuracy)


class SnapshotReady(Message):
    """Panels 3-7's data at one moment, and where on the x axis (in epochs) it was taken."""

    def __init__(self, snapshot: snapshots.Snapshot, bands: snapshots.BandHistory, x: float,
                 where: str = "") -> None:
        super().__init__()
        self.snapshot, self.bands, self.x = snapshot, bands, x
        self.where = where  # "epoch 2 step 297", worded like the status line, so the two can be compared


class SlotWaiting(Message):
    """The run waits for a training slot (`convtui serve` lets one session train at a time); `text` says so."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class TrainFailed(Message):
    """The run could not start or crashed; `text` is one line for the user."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


# ---------------------------------------------------------------------------------------------- samples
@dataclass
class Samples:
    """The small fixed image sets the snapshots evaluate (NCHW float32 in [0, 1])."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def make_samples(trainer, n_train: int = 300, n_test: int = 1000) -> Samples:
    """The first `n_train` training and `n_test` test images of the trainer's data (test falls back to train
    when validation is off). Fixed samples make consecutive snapshots comparable."""
    from convtui.core.storage.datasets import to_float

    train = trainer.train_data.head(n_train)
    test = (trainer.val_data if trainer.val_data is not None else trainer.train_data).head(n_test)
    return Samples(to_float(train.images), train.labels.astype(np.int64),
                   to_float(test.images), test.labels.astype(np.int64))


class LatestModel:
    """The model the dashboard trained last (a copy), for the draw screen. Set and read on the UI thread."""

    def __init__(self):
        self.model = None
        self.description = ""

    def set(self, model, description: str) -> None:
        self.model, self.description = model, description

    def clear(self) -> None:
        self.model, self.description = None, ""


latest_model = LatestModel()


@dataclass
class RunControl:
    """What the UI thread asks of a run, read by the worker thread; threading.Event makes that safe. The screen
    makes it before the worker starts, so a stop asked for while the data loads is not lost."""

    feature_index: int = 0  # which test digit the feature-map view follows (an int write is atomic)
    unpaused: threading.Event = field(default_factory=threading.Event)  # cleared while paused
    stopping: threading.Event = field(default_factory=threading.Event)
    snapshot_now: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self.unpaused.set()

    @property
    def stop_requested(self) -> bool:
        return self.stopping.is_set()

    def pause(self) -> None:
        self.unpaused.clear()

    def resume(self) -> None:
        self.unpaused.set()

    def request_stop(self) -> None:
        """Stop after the current step; the trainer keeps what was learned (checkpoint) and yields Done."""
        self.stopping.set()
        self.unpaused.set()  # a paused run must wake up to finish

    def follow_digit(self, index: int) -> None:
        self.feature_index = index
        self.snapshot_now.set()


class TrainingSession:
    """One training run driven from a worker thread.

    `trainer` needs `events()` (the generator), `request_stop()` and `model`. `post` sends a message to the
    screen (Textual's `post_message` is thread-safe). `cancelled` tells whether Textual cancelled the worker
    (the screen closed); that stops the run like the stop key does. `control` is the screen's RunControl.
    """

    def __init__(self, trainer, samples: Samples, post: Callable[[Message], bool],
                 cancelled: Callable[[], bool] = lambda: False, clock: Callable[[], float] = time.monotonic,
                 control: RunControl | None = None):
        self.trainer, self.samples, self.post, self.cancelled, self.clock = trainer, samples, post, cancelled, clock
        self.control = control if control is not None else RunControl()
        self._stop_passed_on = False
        self.bands = snapshots.BandHistory()
        self.model_copy = None  # the model as of the last snapshot, epoch end or the end, for the draw screen
        self._ema: tuple[float, float] | None = None
        self._pending: list[tuple[float, float, float]] = []
        self._last_post = -1e9
        self._last_snapshot = -1e9
        self._snapshot_cost = 0.0
        self._steps_per_epoch = 1
        self._sizes: tuple[int, int] | None = None  # (train, test) images per snapshot, fixed before the first

    def _pass_on_stop(self) -> None:
        """Where a stop reaches the trainer, just before it is asked for its next step: from the control, or
        from Textual cancelling the worker (the screen closed)."""
        if self.cancelled():
            self.control.request_stop()
        if self.control.stop_requested and not self._stop_passed_on:
            self._stop_passed_on = True
            self.trainer.request_stop()

    # ---------------------------------------------------------------- the loop (worker thread)
    def run(self) -> None:
        try:
            # Numba's thread count is per calling thread: set this worker's, never the whole process's.
            runtime.use_threads(getattr(getattr(self.trainer, "config", None), "threads", None))
            # Served sessions share the machine: queue for a training slot (a no-op in a terminal).
            with training_slot(lambda text: self.post(SlotWaiting(text)),
                               lambda: self.cancelled() or self.control.stop_requested) as may_train:
                if not may_train:
                    self.post(TrainFailed("stopped while waiting for the training slot"))
                    return
                self._run(self.trainer.events())
        except Exception as exc:  # the worker must report, not die silently or crash the app
            self.post(TrainFailed(f"training failed: {type(exc).__name__}: {exc}"))

    def _run(self, stream: Iterator[ev.Event]) -> None:
        while True:
            self._pass_on_stop()
            with kernel_lock:  # the step runs inside next(); the lock is free between steps
                event = next(stream, None)
            if event is None:
                return
            if isinstance(event, ev.Step):
                self._on_step(event)
            else:
                self._flush(force=True)
                if isinstance(event, ev.TrainStart):
                    # The warm-up before TrainStart has started Numba's thread pool: nice it (and this thread).
                    deprioritise_compute_threads()
                    self._steps_per_epoch = max(event.steps_per_epoch, 1)
                    self._last_x = float(event.start_epoch)
                    self.post(TrainEvent(event))
                    self._snapshot(0.0 + event.start_epoch)
                    continue
                if isinstance(event, ev.EpochEnd):
                    self.model_copy = self.trainer.model.inference_copy()
                    self.post(TrainEvent(event))
                    self._snapshot(event.epoch + 1.0)
                    continue
                if isinstance(event, ev.Done):
                    self.model_copy = self.trainer.model.inference_copy()
                    if self._sizes is not None and self._last_snapshot_x != self._last_x:
                        self._snapshot(self._last_x)  # a stopped run's panels show the weights it saved
                self.post(TrainEvent(event))
            # Pausing between events holds the generator still: the trainer does no work meanwhile.
            while not self.control.unpaused.wait(0.1):
                if self.cancelled():
                    self.control.request_stop()
                if self.control.snapshot_now.is_set():
                    self._snapshot(self._last_x)

    _last_x = 0.0
    _last_snapshot_x = -1.0

    def _on_step(self, step: ev.Step) -> None:
        x = step.epoch + step.step / self._steps_per_epoch
        self._last_x = x
        if self._ema is None:
            self._ema = (step.loss, step.accuracy)
        else:
            loss, accuracy = self._ema
            self._ema = (loss + EMA_ALPHA * (step.loss - loss), accuracy + EMA_ALPHA * (step.accuracy - accuracy))
        self._pending.append((x, *self._ema))
        self._latest_step = step
        self._flush(force=step.step == self._steps_per_epoch)
        now = self.clock()
        interval = max(SNAPSHOT_MIN_INTERVAL_S, self._snapshot_cost / SNAPSHOT_MAX_SHARE)
        if self.control.snapshot_now.is_set() or now - self._last_snapshot >= interval:
            self._snapshot(x)

    def _flush(self, force: bool) -> None:
        if not self._pending:
            return
        now = self.clock()
        if force or now - self._last_post >= STEP_INTERVAL_S:
            self.post(StepUpdate(self._latest_step, self._pending))
            self._pending = []
            self._last_post = now

    def _snapshot(self, x: float) -> None:
        self.control.snapshot_now.clear()
        if self._sizes is None:
            self._sizes = self.choose_sizes()
        start = self.clock()
        s, (n_train, n_test) = self.samples, self._sizes
        with kernel_lock:
            snapshot = snapshots.take_snapshot(
                self.trainer.model, int(round(x * self._steps_per_epoch)), s.train_images[:n_train],
                s.train_labels[:n_train], s.test_images[:n_test], s.test_labels[:n_test],
                feature_digit=self.feature_digit())
        self.model_copy = self.trainer.model.inference_copy()
        self.bands.add(snapshot.step, snapshot.bands)
        # The UI gets its own copy of the history: the worker keeps appending to this one.
        bands = snapshots.BandHistory(self.bands.percentiles, list(self.bands.steps),
                                    {k: list(v) for k, v in self.bands.series.items()})
        self.post(SnapshotReady(snapshot, bands, x, self.where(x)))
        end = self.clock()
        self._snapshot_cost, self._last_snapshot, self._last_snapshot_x = end - start, end, x

    def where(self, x: float) -> str:
        """A point of the run as the status line words it: the end of epoch 1 is "epoch 1 step 600"."""
        step = int(round(x * self._steps_per_epoch))
        if step == 0:
            return "the start"
        epoch, within = divmod(step - 1, self._steps_per_epoch)
        return f"epoch {epoch + 1} step {within + 1}"

    def feature_digit(self) -> tuple[np.ndarray, int]:
        """The test digit the feature-map view follows (the index wraps around the whole test sample)."""
        index = self.control.feature_index % len(self.samples.test_labels)
        return self.samples.test_images[index], int(self.samples.test_labels[index])

    def choose_sizes(self) -> tuple[int, int]:
        """(train, test) images per snapshot for the whole run, from the model's prediction speed (a cnn on our
        kernels predicts a few hundred images a second, softmax tens of thousands). The kernels are warmed on
        two images first, so a first-run compile is not mistaken for a slow model."""
        s = self.samples
        probe = s.test_images[:CALIBRATION_IMAGES]
        with kernel_lock:
            snapshots.predict(self.trainer.model, probe[:2])
            start = self.clock()
            snapshots.predict(self.trainer.model, probe)
            seconds = self.clock() - start
        affordable = len(probe) / max(seconds, 1e-6) * SNAPSHOT_BUDGET_S / (1 + TRAIN_SHARE)
        n_test = next((n for n in SAMPLE_SIZES if n <= affordable), SAMPLE_SIZES[-1])
        n_test = min(n_test, len(s.test_labels))
        return min(len(s.train_labels), max(1, round(n_test * TRAIN_SHARE))), n_test
