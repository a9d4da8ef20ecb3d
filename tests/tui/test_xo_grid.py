"""NumberGrid: lecture formatting, 256-colour styles, highlights, cursor, stable width while a map fills in."""

from __future__ import annotations

import numpy as np
import pytest
from textual.app import App

from convtui.tui.widgets.grid import NEGATIVE_BACKGROUNDS, POSITIVE_BACKGROUNDS, NumberGrid


def test_plain_text_uses_the_lecture_format_and_brackets():
    grid = NumberGrid(np.array([[7 / 9, -1 / 9], [1.0, np.nan]]))
    assert grid.plain_text() == "  0.77  -0.11 \n  1.00      . "
    grid.highlight("window", [(0, 1)])
    assert grid.plain_text().splitlines()[0] == "  0.77 [-0.11]"
    grid.highlight_rect("window", -3, -3, 0, 0)  # clipped to the grid, replaces the group
    assert grid.highlighted("window") == {(0, 0)}
    grid.clear_highlights()
    assert "[" not in grid.plain_text()


def test_colours_are_xterm_256_indices_by_sign_and_magnitude():
    grid = NumberGrid(np.array([[1.0, 0.1, 0.0, -0.1, -1.0]]))
    spans = [str(span.style) for span in grid.render().spans]
    assert all("#" not in style for style in spans), "truecolor hex would depend on the terminal"
    cells = [style for style in spans if " on color(" in style]  # one per cell, left to right
    assert len(cells) == 5
    assert cells[0].endswith(f"on color({POSITIVE_BACKGROUNDS[-1]})")  # +1.0: brightest blue
    assert cells[1].endswith(f"on color({POSITIVE_BACKGROUNDS[0]})")  # +0.1: darkest blue
    assert cells[3].endswith(f"on color({NEGATIVE_BACKGROUNDS[0]})")  # -0.1: darkest red
    assert cells[4].endswith(f"on color({NEGATIVE_BACKGROUNDS[-1]})")  # -1.0: brightest red
    pixels = NumberGrid(np.array([[1.0, -1.0]]), decimals=0, palette="pixels")
    assert pixels.plain_text() == "  1  -1 "


def test_cursor_is_reverse_video():
    grid = NumberGrid(np.zeros((2, 2)))
    grid.cursor = (1, 0)
    styles = [(span.start, str(span.style)) for span in grid.render().spans if "reverse" in str(span.style)]
    assert len(styles) == 1


def test_width_is_stable_while_cells_fill_in():
    grid = NumberGrid(np.full((7, 7), np.nan))
    empty_width = grid.get_content_width(None, None)
    values = grid.values.copy()
    values[0, 0] = -1 / 9
    grid.set_values(values)
    assert grid.get_content_width(None, None) == empty_width == 7 * 7
    with pytest.raises(ValueError):
        grid.set_values(np.zeros(3))


async def test_grid_sizes_itself_in_an_app():
    class GridApp(App):
        def compose(self):
            yield NumberGrid(np.ones((4, 4)), title="t", id="g")

    app = GridApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        region = app.query_one("#g", NumberGrid).region
        assert (region.width, region.height) == (4 * 7 + 2, 4 + 2)
