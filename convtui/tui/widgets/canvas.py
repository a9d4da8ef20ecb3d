"""A 28x28 drawing canvas for the keyboard: the cursor keys move a pen that draws, erases or just moves.

Large terminals show each pixel as two full cells (square, 56x28 cells); smaller ones use half blocks
(28x14 cells, still square). The pen is a soft 3x3 dab, so strokes come out about as thick as MNIST's.
"""

from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from convtui.tui.widgets.heatmap import grey, paint_half_blocks

SIZE = 28
PEN_MODES = ("draw", "erase", "move")
# Soft brush: full ink in the middle, less at the sides and corners (MNIST's strokes are 2-3 pixels wide).
DAB = np.array([[0.25, 0.6, 0.25], [0.6, 1.0, 0.6], [0.25, 0.6, 0.25]])
CURSOR = {"draw": Color.parse("yellow"), "erase": Color.parse("red"), "move": Color.parse("cyan")}


def apply_dab(pixels: np.ndarray, row: int, col: int, erase: bool) -> None:
    """Ink (or erase) the 3x3 dab centred on (row, col), clipped at the edges, in place."""
    top, left = row - 1, col - 1
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + 3, pixels.shape[0]), min(left + 3, pixels.shape[1])
    dab = DAB[r0 - top:r1 - top, c0 - left:c1 - left]
    region = pixels[r0:r1, c0:c1]
    region[...] = region * (1 - dab) if erase else np.maximum(region, dab)


class DrawingCanvas(Widget, can_focus=True):
    """The canvas. Posts `Changed` after every stroke so the screen can predict the new drawing."""

    DEFAULT_CSS = """
    DrawingCanvas { width: 58; height: 30; border: round $primary; }
    DrawingCanvas:focus { border: round $accent; }
    DrawingCanvas.small { width: 30; height: 16; }
    """

    BINDINGS = [
        Binding("up", "move(-1, 0)", "Pen", key_display="arrows", tooltip="Up"),
        Binding("down", "move(1, 0)", "Down", show=False),
        Binding("left", "move(0, -1)", "Left", show=False),
        Binding("right", "move(0, 1)", "Right", show=False),
        # Short labels, and enter only in help: the Draw footer must fit 80 columns.
        Binding("space", "cycle_mode", "Mode", tooltip="Draw / erase / move"),
        Binding("enter", "dab", "Dab", show=False),
        Binding("c", "clear", "Clear"),
    ]

    class Changed(Message):
        def __init__(self, pixels: np.ndarray) -> None:
            super().__init__()
            self.pixels = pixels

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pixels = np.zeros((SIZE, SIZE))
        self.row, self.col = SIZE // 2, SIZE // 2
        self.mode = "draw"

    # ---------------------------------------------------------------- actions
    def action_move(self, d_row: int, d_col: int) -> None:
        self.row = int(np.clip(self.row + d_row, 0, SIZE - 1))
        self.col = int(np.clip(self.col + d_col, 0, SIZE - 1))
        if self.mode == "move":
            self.refresh()
        else:
            self.action_dab()

    def action_dab(self) -> None:
        if self.mode == "move":
            return
        apply_dab(self.pixels, self.row, self.col, erase=self.mode == "erase")
        self.changed()

    def action_cycle_mode(self) -> None:
        self.mode = PEN_MODES[(PEN_MODES.index(self.mode) + 1) % len(PEN_MODES)]
        self.border_title = f"pen: {self.mode}"
        self.refresh()

    def action_clear(self) -> None:
        self.pixels[...] = 0
        self.changed()

    def set_pixels(self, pixels: np.ndarray) -> None:
        self.pixels = np.clip(np.asarray(pixels, dtype=np.float64).reshape(SIZE, SIZE), 0, 1)
        self.changed()

    def changed(self) -> None:
        self.refresh()
        self.post_message(self.Changed(self.pixels.copy()))

    def on_mount(self) -> None:
        self.border_title = f"pen: {self.mode}"

    # ---------------------------------------------------------------- drawing
    def render(self) -> Text:
        large = self.size.height >= SIZE and self.size.width >= 2 * SIZE
        return self._render_large() if large else self._render_small()

    def _render_large(self) -> Text:
        cursor = CURSOR[self.mode]
        lines = []
        for r in range(SIZE):
            line = Text()
            for c in range(SIZE):
                colour = cursor if (r, c) == (self.row, self.col) else grey(self.pixels[r, c])
                line.append("  ", Style(bgcolor=colour))
            lines.append(line)
        return Text("\n").join(lines)

    def _render_small(self) -> Text:
        cursor = CURSOR[self.mode]
        colours = [[cursor if (r, c) == (self.row, self.col) else grey(self.pixels[r, c]) for c in range(SIZE)]
                   for r in range(SIZE)]
        return Text("\n").join(paint_half_blocks(colours))
