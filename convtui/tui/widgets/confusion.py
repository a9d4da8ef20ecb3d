"""A confusion matrix (rows: the true digit, columns: the model's guess) with per-class accuracy."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widget import Widget


def cell_style(count: int, row_total: int, diagonal: bool) -> str:
    """Right answers in green; mistakes shaded from dim to bright red by their share of the row."""
    if count == 0:
        return "grey42"
    if diagonal:
        return "bold green"
    share = count / max(row_total, 1)
    return "bold red" if share >= 0.05 else "red" if share >= 0.01 else "yellow"


def confusion_lines(confusion: np.ndarray, accuracy: np.ndarray) -> list[Text]:
    """Rows: the true digit, then the share of that row the model got right, then what it guessed per column.
    The share comes first so a narrow panel still shows it when the wider count columns are cut off."""
    classes = confusion.shape[0]
    width = max(3, len(str(int(confusion.max()))) + 1)
    lines = [Text("rows: true digit, columns: guess", style="italic"),
             Text(" │right│" + "".join(str(c).rjust(width) for c in range(classes)), style="bold")]
    for true in range(classes):
        value = accuracy[true]
        line = Text(f"{true}│", style="bold")
        line.append("  n/a" if np.isnan(value) else f"{value * 100:4.0f}%")
        line.append("│")
        row_total = int(confusion[true].sum())
        for guess in range(classes):
            count = int(confusion[true, guess])
            line.append(str(count).rjust(width), style=cell_style(count, row_total, true == guess))
        lines.append(line)
    total = int(confusion.sum())
    overall = np.trace(confusion) / total * 100 if total else float("nan")
    lines.append(Text(f"{overall:.1f}% right on {total:,} test digits"))
    return lines


class ConfusionMatrix(Widget):
    """Shows `set_matrix(confusion, accuracy)`; empty until the first snapshot."""

    DEFAULT_CSS = """
    ConfusionMatrix { height: auto; width: 1fr; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._lines: list[Text] = [Text("no predictions yet", style="italic")]

    def set_matrix(self, confusion: np.ndarray, accuracy: np.ndarray) -> None:
        self._lines = confusion_lines(confusion, accuracy)
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines)

    def render(self) -> Text:
        text = Text("\n").join(self._lines)
        text.no_wrap, text.overflow = True, "crop"  # a wrapped row would misalign the columns
        return text
