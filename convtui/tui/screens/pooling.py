"""Lesson: pooling. 2x2 windows, stride 2, over each rectified map: 7x7 -> 4x4, partial edge windows kept."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Static

from convtui.core.training.text import plural
from convtui.toy.formatting import format_value
from convtui.toy.xo import FILTER_SIZE, POOL, POOL_STRIDE, convolve, is_partial_window, pool, pool_window, relu
from convtui.tui.screens.lesson_base import cursor_bindings, lesson_state
from convtui.tui.screens.xo_base import XOLessonScreen
from convtui.tui.widgets.grid import NumberGrid

# Each meaning has its own marks as well as its colour, so the lesson reads without colour (NO_COLOR).
WINDOW_STYLE, WINDOW_MARKS = "bold color(226)", "[]"  # yellow: the window feeding the cursor's cell
PARTIAL_STYLE, PARTIAL_MARKS = "color(141)", "()"  # violet: cells of windows cut off by the edge
WINNER_STYLE, WINNER_MARKS = "bold color(46)", "**"  # green: the value max pooling keeps


class PoolingScreen(XOLessonScreen):
    """Arrows move the cursor over the pooled map; the window that feeds it lights up on the left."""

    TITLE = "Pooling"
    INTRO = ("Pick a window size (2) and a stride (2), walk the window over the map and keep the largest value "
             "of each window. At the right and bottom edge the window hangs off the map: it is kept, partial.")
    HELP = ("Yellow [brackets]: the window feeding the pooled cell under the cursor, which is marked >like<. "
            "Green *stars*: the value max pooling keeps. Violet (parentheses): cells in partial windows at the "
            "edge (2 or 1 cells instead of 4). t switches between max and mean pooling.")
    BINDINGS = XOLessonScreen.IMAGE_BINDINGS + XOLessonScreen.FILTER_BINDINGS + [
        Binding("t", "toggle_mode", "Max/mean"),
    ] + cursor_bindings("Move cursor")

    mode = lesson_state("max")
    cursor = lesson_state((0, 0))  # a cell of the pooled map

    MEAN_INTRO = ("Pick a window size (2) and a stride (2), walk the window over the map and keep the mean of each "
                  "window. At the right and bottom edge the window hangs off the map: it is kept, partial, and "
                  "its mean is over the cells it covers.")

    def intro(self) -> str:
        return self.MEAN_INTRO if self.mode == "mean" else self.INTRO

    def validate_cursor(self, cursor: tuple[int, int]) -> tuple[int, int]:
        last = self.pooled_size() - 1
        return min(max(cursor[0], 0), last), min(max(cursor[1], 0), last)

    def pooled_size(self) -> int:
        # Partial windows at the edge are kept, so a 7x7 map pools to 4x4.
        return -(-(self.image.pixels.shape[0] - FILTER_SIZE + 1) // POOL_STRIDE)

    def compose_lesson(self) -> ComposeResult:
        yield Static(id="pooling-caption", classes="status")
        with Container(classes="pair"):
            yield NumberGrid(title="after ReLU", id="pooling-input", classes="panel")
            yield NumberGrid(title="pooled", id="pooling-output", classes="panel")
        yield Static(id="pooling-status", classes="status")

    def refresh_lesson(self) -> None:
        rectified = relu(convolve(self.image.pixels, self.toy_filter.weights))
        pooled = pool(rectified, self.mode)
        size, out = rectified.shape[0], pooled.shape[0]
        i, j = self.cursor
        top, left, bottom, right = pool_window(i, j, size)
        window = rectified[top:bottom + 1, left:right + 1]
        symbol = self.toy_filter.symbol
        self.show_intro()
        self.query_one("#pooling-caption", Static).update(self.image_caption())

        source = self.query_one("#pooling-input", NumberGrid)
        source.set_values(rectified)
        source.border_title = f"after ReLU, {symbol} ({size}x{size})"
        partial_cells = [(r, c) for a in range(out) for b in range(out) if is_partial_window(a, b, size)
                         for r in range(pool_window(a, b, size)[0], pool_window(a, b, size)[2] + 1)
                         for c in range(pool_window(a, b, size)[1], pool_window(a, b, size)[3] + 1)]
        source.clear_highlights()
        source.highlight("partial", partial_cells, PARTIAL_STYLE, PARTIAL_MARKS)
        source.highlight_rect("window", top, left, bottom, right, WINDOW_STYLE, WINDOW_MARKS)
        if self.mode == "max":
            r, c = np.unravel_index(int(np.argmax(window)), window.shape)
            source.highlight("winner", [(top + r, left + c)], WINNER_STYLE, WINNER_MARKS)

        result = self.query_one("#pooling-output", NumberGrid)
        result.set_values(pooled)
        result.border_title = f"{self.mode} pooled ({out}x{out})"
        result.highlight("partial", [(a, b) for a in range(out) for b in range(out)
                                     if is_partial_window(a, b, size)], PARTIAL_STYLE, PARTIAL_MARKS)
        result.cursor = (i, j)

        cells = " ".join(format_value(v) for v in window.reshape(-1))
        kind = f"partial window, {plural(window.size, 'cell')}" if is_partial_window(i, j, size) else "full window"
        self.query_one("#pooling-status", Static).update(
            f"cell ({i}, {j}) <- rows {top}-{bottom}, cols {left}-{right} ({kind}): "
            f"{self.mode}({cells}) = [b]{format_value(pooled[i, j])}[/b]\n"
            f"window {POOL}x{POOL}, stride {POOL_STRIDE}: {size}x{size} -> {out}x{out}\n"
            f"\\[ ] the window   >  < its pooled cell   ( ) partial windows"
            + ("   * * the value kept" if self.mode == "max" else ""))

    def action_move(self, d_row: int, d_col: int) -> None:
        row, col = self.cursor
        self.cursor = (row + d_row, col + d_col)  # validate_cursor keeps it on the pooled map

    def action_toggle_mode(self) -> None:
        self.mode = "mean" if self.mode == "max" else "max"
