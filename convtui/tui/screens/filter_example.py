"""Lesson: receptive field and filter. The lecture's 7x7 curve detector on a matching and a non-matching field."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from convtui.toy.curve import CURVE_FILTER, FIELDS, filter_response, products, sum_formula
from convtui.tui.screens.lesson_base import LessonScreen, lesson_state
from convtui.tui.widgets.grid import NumberGrid

PATH_STYLE = "bold color(226)"
FIELD_NAMES = list(FIELDS)


class FilterExampleScreen(LessonScreen):
    """t switches between the receptive field that matches the filter and one that does not."""

    TITLE = "Receptive field and filter"
    INTRO = ("A filter is a feature detector. Multiply it with the receptive field it shines on and "
             "add up: a large number means the feature is there.")
    HELP = ("A filter is a set of weights: this one is 30 along a curve and 0 elsewhere. Shine it on a receptive "
            "field, multiply cell by cell and add up. Where the image has the same curve the sum is large "
            "(6600); elsewhere it is small (here 0). t switches the receptive field.")
    BINDINGS = [Binding("t", "toggle_field", "Other field")]

    field_index = lesson_state(0)

    def compose_lesson(self) -> ComposeResult:
        with Horizontal(classes="panel-row"):
            yield NumberGrid(CURVE_FILTER, decimals=0, title="curve detector filter", id="example-filter",
                             classes="panel")
            yield NumberGrid(decimals=0, title="receptive field", id="example-field", classes="panel")
        with Horizontal(classes="panel-row"):
            yield NumberGrid(decimals=0, title="field x filter", id="example-products", classes="panel")
        yield Static(id="example-sum", classes="status")

    def refresh_lesson(self) -> None:
        name = FIELD_NAMES[self.field_index]
        field = FIELDS[name]
        path = list(zip(*np.nonzero(CURVE_FILTER)))
        self.query_one("#example-filter", NumberGrid).highlight("path", path, PATH_STYLE)
        field_grid = self.query_one("#example-field", NumberGrid)
        field_grid.set_values(field)
        field_grid.border_title = f"{name} receptive field"
        field_grid.highlight("path", path, PATH_STYLE)
        products_grid = self.query_one("#example-products", NumberGrid)
        products_grid.set_values(products(field))
        products_grid.highlight("path", path, PATH_STYLE)
        total = filter_response(field)
        verdict = "a large number: the curve is there" if total > 1000 else "nothing: no such curve here"
        self.query_one("#example-sum", Static).update(
            f"multiplication and summation = {sum_formula(field)}\n[b]{int(total)}[/b]: {verdict}. "
            "Yellow brackets: where the filter is not 0.")

    def action_toggle_field(self) -> None:
        self.field_index = (self.field_index + 1) % len(FIELD_NAMES)
