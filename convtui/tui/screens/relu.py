"""Lesson: ReLU. Each feature map before and after; the negatives that became 0 are marked."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static

from convtui.toy.xo import convolve, relu
from convtui.tui.screens.xo_base import XOLessonScreen
from convtui.tui.widgets.grid import NumberGrid

ZEROED_STYLE = "bold color(203)"


class ReluScreen(XOLessonScreen):
    """f picks the filter's map, n/p the image."""

    TITLE = "ReLU"
    INTRO = ("Rectified linear unit: wherever a number is negative, swap it for 0. "
             "A stack of images becomes a stack of images with no negative values.")
    HELP = "Left: the filtered map. Right: after ReLU. Red brackets mark the negatives that became 0."
    BINDINGS = XOLessonScreen.IMAGE_BINDINGS + XOLessonScreen.FILTER_BINDINGS

    def compose_lesson(self) -> ComposeResult:
        yield Static(id="relu-caption", classes="status")
        with Container(classes="pair"):
            yield NumberGrid(title="before", id="relu-before", classes="panel")
            yield NumberGrid(title="after ReLU", id="relu-after", classes="panel")
        yield Static(id="relu-status", classes="status")

    def refresh_lesson(self) -> None:
        before = convolve(self.image.pixels, self.toy_filter.weights)
        after = relu(before)
        negatives = list(zip(*np.nonzero(before < 0)))
        symbol = self.toy_filter.symbol
        self.query_one("#relu-caption", Static).update(self.image_caption())
        before_grid = self.query_one("#relu-before", NumberGrid)
        before_grid.set_values(before)
        before_grid.border_title = f"map for {symbol}"
        before_grid.highlight("negative", negatives, ZEROED_STYLE)
        after_grid = self.query_one("#relu-after", NumberGrid)
        after_grid.set_values(after)
        after_grid.border_title = f"after ReLU, {symbol}"
        after_grid.highlight("zeroed", negatives, ZEROED_STYLE)
        self.query_one("#relu-status", Static).update(
            f"{len(negatives)} of {before.size} values were negative and became 0; "
            f"the other {before.size - len(negatives)} pass through unchanged")
