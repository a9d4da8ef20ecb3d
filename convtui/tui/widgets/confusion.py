"""A confusion matrix (rows: the true digit, columns: the model's guess) with per-class accuracy.

All ten columns must fit: a learner who cannot see columns 8 and 9 cannot find the 4-9 confusion. When the
counts do not fit the widget's width (10,000 test digits give 4-digit diagonal counts), the compact layout
shows the diagonal as ✓ (its share is the row's "right" column) and sizes the columns by the mistakes only.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widget import Widget

from convtui.toy.formatting import format_value


def cell_style(count: int, row_total: int, diagonal: bool) -> str:
    """Right answers in green; mistakes shaded from dim to bright red by their share of the row."""
    if count == 0:
        return "grey42"
    if diagonal:
        return "bold green"
    share = count / max(row_total, 1)
    return "bold red" if share >= 0.05 else "red" if share >= 0.01 else "yellow"


def column_width(confusion: np.ndarray, compact: bool) -> int:
    """Digits of the largest count shown, plus one space between columns."""
    shown = confusion[~np.eye(confusion.shape[0], dtype=bool)] if compact else confusion
    return max(2 if compact else 3, len(str(int(shown.max(initial=0)))) + 1)


def matrix_width(confusion: np.ndarray, compact: bool) -> int:
    """Columns one matrix row takes: the row label and its share ("0 100%│" is 7), then one cell per class."""
    return 7 + confusion.shape[0] * column_width(confusion, compact)


def confusion_lines(confusion: np.ndarray, accuracy: np.ndarray, compact: bool = False) -> list[Text]:
    """Rows: the true digit, then the share of that row the model got right, then what it guessed per column."""
    classes = confusion.shape[0]
    width = column_width(confusion, compact)
    note = "rows: true, columns: guess; ✓ right" if compact else "rows: true digit, columns: guess"
    lines = [Text(note, style="italic"),
             Text(" right│" + "".join(str(c).rjust(width) for c in range(classes)), style="bold")]
    for true in range(classes):
        value = accuracy[true]
        line = Text(f"{true}", style="bold")
        # Truncated like every number a learner reads (98.85% shows as 98%, never a rounded-up 99%).
        line.append("  n/a" if np.isnan(value) else f"{format_value(value * 100, 0):>4}%")
        line.append("│")
        row_total = int(confusion[true].sum())
        for guess in range(classes):
            count = int(confusion[true, guess])
            text = "✓" if compact and true == guess else str(count)
            line.append(text.rjust(width), style=cell_style(count, row_total, true == guess))
        lines.append(line)
    total = int(confusion.sum())
    overall = np.trace(confusion) / total * 100 if total else float("nan")
    lines.append(Text(f"{format_value(overall, 1)}% right on {total:,} test digits"))
    return lines


class ConfusionMatrix(Widget):
    """Shows `set_matrix(confusion, accuracy)`; empty until the first snapshot. Picks the compact layout when
    the full one is wider than the widget; `narrow_hint` (e.g. "6 zooms") is said when even that is too wide."""

    DEFAULT_CSS = """
    ConfusionMatrix { height: auto; width: 1fr; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, narrow_hint: str = "", **kwargs):
        super().__init__(**kwargs)
        self.narrow_hint = narrow_hint
        self.matrix: tuple[np.ndarray, np.ndarray] | None = None

    def set_matrix(self, confusion: np.ndarray, accuracy: np.ndarray) -> None:
        self.matrix = (confusion, accuracy)
        self.refresh(layout=True)

    def full_width(self) -> int:
        """Columns the full layout needs (0 before the first matrix)."""
        return matrix_width(self.matrix[0], compact=False) if self.matrix is not None else 0

    def lines(self, width: int) -> list[Text]:
        if self.matrix is None:
            return [Text("no predictions yet", style="italic")]
        confusion, accuracy = self.matrix
        compact = matrix_width(confusion, compact=False) > width
        lines = confusion_lines(confusion, accuracy, compact)
        if compact and matrix_width(confusion, compact=True) > width and self.narrow_hint:
            lines[0] = Text(f"too narrow for 10 columns: {self.narrow_hint}", style="italic")
        return lines

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Text:
        text = Text("\n").join(self.lines(self.size.width))
        text.no_wrap, text.overflow = True, "crop"  # a wrapped row would misalign the columns
        return text
