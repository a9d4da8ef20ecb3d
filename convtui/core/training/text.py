"""The one formatter of training events into text, shared by the headless CLI and the app's log, so both say
the same thing. Plain strings only: colour and layout belong to each face.

    epoch 1 step 200/600 | loss 0.312 | acc 91.2% | 1430 img/s | eta 0:42
"""

from __future__ import annotations

import numpy as np

from convtui.core.training.events import Compiling, Done, EpochEnd, Event, Step, TrainStart


def format_duration(seconds: float) -> str:
    """0:42, 12:05 or 1:02:03."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def plural(count: int, noun: str) -> str:
    """1 epoch, 2 epochs."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_loss(loss: float) -> str:
    """0.312; a loss blowing up (finite, but huge) as 1.2e+30 rather than 31 digits."""
    return f"{loss:.3f}" if abs(loss) < 1e5 else f"{loss:.3g}"


def format_percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def format_compiling(event: Compiling) -> str:
    return f"{event.message} ..."


def format_start(event: TrainStart) -> str:
    val = f", validating on {event.n_val:,}" if event.n_val else ", no validation"
    resumed = f", resuming after epoch {event.start_epoch}" if event.start_epoch else ""
    return (f"training {event.model} for {plural(event.epochs, 'epoch')} on {event.n_train:,} images "
            f"({plural(event.steps_per_epoch, 'step')} per epoch{val}{resumed}); kernels ready in "
            f"{event.compile_s:.1f}s")


def format_step(event: Step, epochs: int | None = None) -> str:
    """The nanoGPT-style progress line; loss and accuracy are the running means over the epoch so far."""
    epoch = f"epoch {event.epoch + 1}" + (f"/{epochs}" if epochs else "")
    return (f"{epoch} step {event.step} | loss {format_loss(event.running_loss)} | acc "
            f"{format_percent(event.running_accuracy)} | {event.images_per_s:,.0f} img/s | eta "
            f"{format_duration(event.eta_s)}")


def format_epoch(event: EpochEnd) -> str:
    val = ""
    if event.val_accuracy is not None:
        val = f" | val_loss {format_loss(event.val_loss)} | val_acc {format_percent(event.val_accuracy)}"
    return (f"epoch {event.epoch + 1} done | loss {format_loss(event.loss)} | acc {format_percent(event.accuracy)}"
            f"{val} | lr {event.lr:.3g} | {format_duration(event.elapsed_s)}")


def format_done(event: Done) -> str:
    """"completed: trained 2 epochs", "diverged: loss became nan ..."; a message that already starts with its
    reason ("stopped in epoch 2 after step 297 ...") is not prefixed twice."""
    return event.message if event.message.startswith(event.reason) else f"{event.reason}: {event.message}"


def format_event(event: Event, epochs: int | None = None) -> str:
    """Any event as one line."""
    if isinstance(event, Compiling):
        return format_compiling(event)
    if isinstance(event, TrainStart):
        return format_start(event)
    if isinstance(event, Step):
        return format_step(event, epochs)
    if isinstance(event, EpochEnd):
        return format_epoch(event)
    if isinstance(event, Done):
        return format_done(event)
    raise TypeError(f"not a training event: {event!r}")


def format_confusion_matrix(confusion: np.ndarray) -> str:
    """Rows are the true digits, columns the predictions, with each row's accuracy at the end."""
    n = confusion.shape[0]
    width = max(5, len(str(int(confusion.max()))) + 1)
    lines = ["true\\pred " + "".join(f"{k:>{width}}" for k in range(n)) + "  accuracy"]
    for true in range(n):
        total = confusion[true].sum()
        acc = f"{100 * confusion[true, true] / total:7.1f}%" if total else "      -"
        lines.append(f"{true:>9} " + "".join(f"{int(c):>{width}}" for c in confusion[true]) + f"  {acc}")
    return "\n".join(lines)
