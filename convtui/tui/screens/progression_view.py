"""The progression screen's table and time estimate, as functions of its rows (no widgets, easy to test)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.table import Table
from rich.text import Text

from convtui.core.training import events as ev
from convtui.core.training.measured_accuracy import MEASURED, MEASURED_LABEL
from convtui.core.training.progression import RATES, SNAPSHOT_SHARE, Plan, ProgressionStep, Reuse
from convtui.core.training.text import format_duration
from convtui.tui.widgets.plots import COLOURS, MARKER_GLYPHS

MARKERS = ("braille", "dot", "o", "hd", "sd")  # one plotext marker per step: the curves read without colour


@dataclass
class Row:
    """What the table shows of one step in this run."""

    status: str = "waiting"  # waiting, training, done, stopped, failed, reused
    accuracy: float | None = None  # the last test accuracy on the plan's test images
    epochs_done: int = 0
    folder: str = ""  # the run folder's name (trained here, or reused)
    seconds: float | None = None  # wall time of a trained step
    started: float = 0.0
    curve: list[tuple[float, float]] = field(default_factory=list)  # (epoch, test accuracy 0..1)


def format_accuracy(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}%"


def row_result(step: ProgressionStep, row: Row, offered: bool) -> str:
    """The "this run" cell: the step's accuracy so far and how it got it."""
    if row.status == "waiting":
        return "run found (u)" if offered else "-"
    accuracy = format_accuracy(row.accuracy)
    if row.status == "reused":
        return f"{accuracy} reused"
    if row.status == "training":
        return f"{accuracy} ep {row.epochs_done}/{step.epochs}" if row.accuracy is not None else "training"
    if row.status == "done":
        return f"{accuracy} in {format_duration(row.seconds or 0)}"
    return f"{accuracy} {row.status}"


def results_table(plan: Plan, rows: list[Row], offered: dict[str, Reuse]) -> Table:
    """Each step, what it changed, its accuracy in this run and at full length (measured)."""
    table = Table(box=None, padding=(0, 1), header_style="bold", expand=True, caption_justify="left",
                  caption=f"* full length: 60,000 images, 10 epochs, {MEASURED_LABEL}")
    table.add_column("step", no_wrap=True)
    table.add_column("what it changed (lecture)", ratio=1)
    table.add_column("this run", no_wrap=True)
    table.add_column("full*", no_wrap=True, justify="right")
    for index, (step, row) in enumerate(zip(plan.steps, rows)):
        label = Text(f"{MARKER_GLYPHS[MARKERS[index]]} {index + 1} {step.model}", style=COLOURS[index % len(COLOURS)])
        measured = MEASURED.get(step.model)
        table.add_row(label, Text(step.changed), Text(row_result(step, row, step.model in offered)),
                      format_accuracy(measured.test_accuracy) if measured else "-")
    return table


def time_left(plan: Plan, rows: list[Row], current: int, last_step: ev.Step | None, skipped: set[str],
              now: float | None = None) -> float:
    """Seconds still to go: the plan's estimate for what is left, scaled by how the steps trained so far compared
    with their estimates (the machine's load changes); the current step from its trainer's ETA once it has one.
    `skipped` are the steps a reuse fills in."""
    now = time.monotonic() if now is None else now
    done = [(row.seconds, plan.step_estimate_s(step)) for step, row in zip(plan.steps, rows)
            if row.status == "done" and row.seconds]
    factor = sum(a for a, _ in done) / sum(e for _, e in done) if done else 1.0
    left = 0.0
    for index, (step, row) in enumerate(zip(plan.steps, rows)):
        if index < current or row.status in ("reused", "done") or step.model in skipped:
            continue
        if index == current and last_step is not None:
            test_s = plan.test_images / RATES[step.model].test_images_per_s
            left += last_step.eta_s * (1 + SNAPSHOT_SHARE) + (step.epochs - row.epochs_done) * test_s * factor
        elif index == current:
            left += max(plan.step_estimate_s(step) * factor - (now - row.started), 0.0)
        else:
            left += plan.step_estimate_s(step) * factor
    return left
