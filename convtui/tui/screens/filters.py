"""Lesson: filters match pieces. Slide a 3x3 filter over the image and build the 7x7 map cell by cell."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Static

from convtui.toy.formatting import format_value
from convtui.toy.xo import FILTER_SIZE, FILTERS, window_step
from convtui.tui.screens.lesson_base import cursor_bindings, lesson_state
from convtui.tui.screens.xo_base import XOLessonScreen
from convtui.tui.widgets.grid import NumberGrid

WINDOW_STYLE = "bold color(226)"  # yellow brackets: the 3x3 window on the image
MISMATCH_STYLE = "bold color(203)"  # red brackets: pixel and filter disagree
AUTOPLAY_SECONDS = 0.3


class FiltersScreen(XOLessonScreen):
    """Step the window with the arrows or space, or let it play; every visited cell fills in the map."""

    TITLE = "Filters match pieces"
    INTRO = ("Line the filter up with a 3x3 patch, multiply pixel by pixel (1 where they agree, -1 where not), "
             "add up, divide by 9. Three filters here, so three images out.")
    HELP = ("The yellow brackets on the image are the window. The products grid shows 1 where pixel and filter "
            "agree and -1 (red) where not; the sum divided by 9 is the output cell, lit in the map. "
            "Visited cells stay filled in: press space to walk every position, a to autoplay, c to finish.")
    BINDINGS = XOLessonScreen.IMAGE_BINDINGS + XOLessonScreen.FILTER_BINDINGS + [
        Binding("space", "step", "Step"),
        Binding("a", "autoplay", "Play"),
        Binding("c", "complete", "Complete"),
        Binding("r", "reset", "Reset"),
    ] + cursor_bindings("Move window")

    window = lesson_state((0, 0))  # top-left of the 3x3 window = the map cell it fills in
    maps: dict[str, np.ndarray] = lesson_state(dict)  # per filter, NaN where not computed yet
    timer: Timer | None = lesson_state(None)  # set while autoplay walks the window

    def __init__(self) -> None:
        super().__init__()
        self.image_changed()

    @property
    def out_size(self) -> int:
        return self.image.pixels.shape[0] - FILTER_SIZE + 1

    def compose_lesson(self) -> ComposeResult:
        yield Static(id="filters-image-caption", classes="status")
        with Horizontal(classes="panel-row"):
            yield NumberGrid(decimals=0, palette="pixels", title="image", id="filters-image", classes="panel")
            yield NumberGrid(decimals=0, title="filter", id="filters-filter", classes="panel")
            yield NumberGrid(decimals=0, palette="pixels", title="patch", id="filters-patch", classes="panel")
        with Horizontal(classes="panel-row"):
            with Vertical(classes="panel"):
                yield NumberGrid(decimals=0, title="products", id="filters-products")
                yield Static(id="filters-sum", classes="caption")
            yield NumberGrid(title="map", id="filters-map", classes="panel")
        yield Static(id="filters-status", classes="status")

    # ---------------------------------------------------------------- state
    def image_changed(self) -> None:
        self.window = (0, 0)
        self.maps = {f.name: np.full((self.out_size, self.out_size), np.nan) for f in FILTERS}
        self.stop_autoplay()

    def current_map(self) -> np.ndarray:
        return self.maps[self.toy_filter.name]

    def visit(self) -> None:
        """Compute the output cell under the window for the current filter and keep it. The drawing calls it, so
        whatever brings a window into view (a key, another filter, another image) fills in its cell."""
        row, col = self.window
        self.current_map()[row, col] = window_step(self.image.pixels, self.toy_filter.weights, row, col).value

    # ---------------------------------------------------------------- drawing
    def refresh_lesson(self) -> None:
        self.visit()
        row, col = self.window
        step = window_step(self.image.pixels, self.toy_filter.weights, row, col)
        symbol = self.toy_filter.symbol
        self.query_one("#filters-image-caption", Static).update(self.image_caption())

        image_grid = self.query_one("#filters-image", NumberGrid)
        image_grid.set_values(self.image.pixels)
        image_grid.highlight_rect("window", row, col, row + FILTER_SIZE - 1, col + FILTER_SIZE - 1, WINDOW_STYLE)

        filter_grid = self.query_one("#filters-filter", NumberGrid)
        filter_grid.set_values(self.toy_filter.weights)
        filter_grid.border_title = f"filter {symbol}"
        self.query_one("#filters-patch", NumberGrid).set_values(step.patch)

        products = self.query_one("#filters-products", NumberGrid)
        products.set_values(step.products)
        products.highlight("mismatch", zip(*np.nonzero(step.products < 0)), MISMATCH_STYLE)

        matches = int((step.products > 0).sum())
        self.query_one("#filters-sum", Static).update(
            f"{matches} agree, {FILTER_SIZE * FILTER_SIZE - matches} not\n"
            f"sum = {format_value(step.total, 0)}\n"
            f"{format_value(step.total, 0)} / 9 = [b]{format_value(step.value)}[/b]")

        feature_map = self.query_one("#filters-map", NumberGrid)
        feature_map.set_values(self.current_map())
        feature_map.border_title = f"map for {symbol}"
        feature_map.cursor = (row, col)
        done = int(np.isfinite(self.current_map()).sum())
        built = ", ".join(f"{f.symbol} {int(np.isfinite(self.maps[f.name]).sum())}/{self.out_size ** 2}"
                          for f in FILTERS)
        playing = "  [b]playing[/b]" if self.timer is not None else ""
        self.query_one("#filters-status", Static).update(
            f"window at row {row}, col {col} -> map cell ({row}, {col}); "
            f"{done} of {self.out_size ** 2} cells built (maps: {built}){playing}")

    # ---------------------------------------------------------------- keys
    def action_move(self, d_row: int, d_col: int) -> None:
        last = self.out_size - 1
        row, col = self.window
        self.window = (min(last, max(0, row + d_row)), min(last, max(0, col + d_col)))

    def action_step(self) -> None:
        """Next window position in reading order, wrapping to the top-left after the last."""
        row, col = self.window
        index = (row * self.out_size + col + 1) % (self.out_size ** 2)
        self.window = divmod(index, self.out_size)

    def action_complete(self) -> None:
        for row in range(self.out_size):
            for col in range(self.out_size):
                self.current_map()[row, col] = window_step(self.image.pixels, self.toy_filter.weights,
                                                           row, col).value
        self.mutate_reactive(FiltersScreen.maps)

    def action_reset(self) -> None:
        self.stop_autoplay()
        self.maps[self.toy_filter.name][:] = np.nan
        self.window = (0, 0)

    def action_autoplay(self) -> None:
        if self.timer is not None:
            self.stop_autoplay()
        else:
            self.timer = self.set_interval(AUTOPLAY_SECONDS, self.autoplay_tick)

    def autoplay_tick(self) -> None:
        last = (self.out_size - 1, self.out_size - 1)
        if self.window == last:
            self.stop_autoplay()
        else:
            self.action_step()

    def stop_autoplay(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None

    def on_screen_suspend(self) -> None:
        self.stop_autoplay()
