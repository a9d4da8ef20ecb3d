"""The terminal face of `convtui train`: a rich live progress bar with ETA, loss, accuracy and images/s.

Lines above the bar (compiling, start, each epoch's summary) use the shared formatter, so they read the same
as the plain output and the app's log.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from convtui.core.training.events import Compiling, Done, EpochEnd, Step, TrainStart
from convtui.core.training.text import format_duration, format_event, format_percent


def show_live(events, config, console: Console | None = None) -> Done:
    """Consume the events, drawing one bar for the whole run; return the Done event."""
    console = console or Console(highlight=False)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), console=console, transient=False,
    )
    task = None
    with progress:
        for event in events:
            if isinstance(event, Done):
                return event
            if isinstance(event, TrainStart):
                progress.console.print(format_event(event))
                total = event.steps_per_epoch * max(event.epochs - event.start_epoch, 0)
                task = progress.add_task(f"epoch {event.start_epoch + 1}/{event.epochs}", total=total,
                                         stats="")
            elif isinstance(event, Step):
                stats = (f"loss {event.running_loss:.3f} | acc {format_percent(event.running_accuracy)} | "
                         f"{event.images_per_s:,.0f} img/s | eta {format_duration(event.eta_s)}")
                progress.update(task, completed=event.global_step, stats=stats,
                                description=f"epoch {event.epoch + 1}/{config.epochs}")
            elif isinstance(event, EpochEnd):
                progress.console.print(format_event(event))
            elif isinstance(event, Compiling) and event.cold:  # a warm cache loads in well under a second
                progress.console.print(format_event(event))
    raise RuntimeError("training ended without a Done event")
