"""What training yields. Both faces (the headless CLI and the app's dashboard) consume these events and
format them with one shared formatter (`convtui.core.training.text`), so they show the same text.

Events are small frozen dataclasses of plain numbers: cheap to post across threads and to compare in tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Compiling:
    """The kernels are being JIT-compiled (`cold`: Numba's cache did not have them) or loaded from the cache.
    A cold start is worth a message (it takes many seconds); a warm one is not."""

    message: str
    cold: bool = True


@dataclass(frozen=True)
class TrainStart:
    model: str
    epochs: int
    steps_per_epoch: int
    n_train: int
    n_val: int
    start_epoch: int  # > 0 when resuming from a checkpoint
    compile_s: float


@dataclass(frozen=True)
class Step:
    epoch: int  # 0-based
    step: int  # 1-based within the epoch
    global_step: int
    total_steps: int
    loss: float  # of this batch
    accuracy: float  # of this batch, 0..1
    running_loss: float  # mean over the epoch so far
    running_accuracy: float
    lr: float
    images_per_s: float
    eta_s: float
    elapsed_s: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # 0-based
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float
    elapsed_s: float


@dataclass(frozen=True)
class Done:
    reason: str  # "completed" (all epochs, or the time budget used up), "stopped" (a signal or the app's key), "diverged"
    message: str
    epochs_completed: int
    checkpoint: str | None  # path of the last good checkpoint, if one was written


Event = Compiling | TrainStart | Step | EpochEnd | Done
