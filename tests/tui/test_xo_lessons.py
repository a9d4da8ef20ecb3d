"""Pilot tests: reach every X/O lesson from the index by keys and check the numbers on screen."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import OptionList, Static

from convtui.toy.images import find_image
from convtui.tui.app import ConvTuiApp
from convtui.tui.lessons import LESSONS
from convtui.tui.screens import filters as filters_module
from convtui.tui.widgets.grid import NumberGrid

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def private_image_dir(monkeypatch, tmp_path):
    # Saved images go to a fresh folder, never the tester's ~/.local/share.
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path / "xo"))


async def open_from_index(pilot, name: str) -> None:
    """Arrow down to the lesson in the index and press Enter, as a learner would."""
    await pilot.pause()
    options = pilot.app.screen.query_one("#lessons", OptionList)
    names = [lesson.name for lesson in LESSONS]
    moves = names.index(name) - names.index(options.get_option_at_index(options.highlighted).id)
    await pilot.press(*(["down"] * moves if moves > 0 else ["up"] * -moves), "enter")
    await pilot.pause()
    assert type(pilot.app.screen).__name__ != "IndexScreen"


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def grid(app, selector: str) -> NumberGrid:
    return app.screen.query_one(selector, NumberGrid)


def first_row(app, selector: str) -> str:
    marks = str.maketrans("[]<>()", "      ")  # highlight and cursor marks drawn around cells
    return " ".join(grid(app, selector).plain_text().splitlines()[0].translate(marks).split())


async def test_filters_lesson_steps_the_window_and_builds_the_map():
    app = ConvTuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_from_index(pilot, "filters")
        assert type(app.screen).__name__ == "FiltersScreen"
        assert "sum = 7" in text(app, "#filters-sum") and "7 / 9 = 0.77" in text(app, "#filters-sum")
        assert first_row(app, "#filters-map") == "0.77 . . . . . ."
        await pilot.press("space")
        assert "sum = -1" in text(app, "#filters-sum") and "-0.11" in text(app, "#filters-sum")
        assert grid(app, "#filters-map").cursor == (0, 1)
        await pilot.press("down", "right")
        assert grid(app, "#filters-map").cursor == (1, 2)
        assert "window at row 1, col 2" in text(app, "#filters-status")
        assert grid(app, "#filters-image", ).highlighted("window") == {(r, c) for r in (1, 2, 3) for c in (2, 3, 4)}
        await pilot.press("c")
        assert first_row(app, "#filters-map") == "0.77 -0.11 0.11 0.33 0.55 -0.11 0.33"
        await pilot.press("f")  # the X filter: its own map, built separately
        assert grid(app, "#filters-map").border_title == "map for X"
        assert "maps: \\ 49/49, X 1/49, / 0/49" in text(app, "#filters-status")
        await pilot.press("r")
        assert grid(app, "#filters-map").cursor == (0, 0)
        assert first_row(app, "#filters-map") == "0.33 . . . . . ."


async def test_filters_autoplay_walks_on_its_own(monkeypatch):
    monkeypatch.setattr(filters_module, "AUTOPLAY_SECONDS", 0.01)
    app = ConvTuiApp(initial_screen="filters")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause(0.5)
        await pilot.press("a")
        await pilot.pause()
        assert app.screen.timer is None
        assert app.screen.window != (0, 0)
        built = grid(app, "#filters-map").values
        assert (built == built).sum() > 5  # more than five cells no longer NaN


async def test_pixels_lesson_compares_edits_and_saves(tmp_path):
    app = ConvTuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_from_index(pilot, "pixels")
        assert first_row(app, "#pixels-image") == "-1 -1 -1 -1 -1 -1 -1 -1 -1"
        assert not grid(app, "#pixels-other").display
        await pilot.press("m")  # compare x with x-shifted first, the intro's claim
        assert "14 of 81 cells differ from x-shifted" in text(app, "#pixels-status")
        assert grid(app, "#pixels-image").highlighted("mismatch") == {
            (1, 1), (1, 7), (2, 6), (2, 8), (3, 5), (3, 7), (4, 6), (5, 3), (6, 2), (6, 4), (7, 1), (7, 3), (8, 2),
            (8, 8)}
        await pilot.press("b")  # b steps on through the images: x-thick, then o, ...
        thick = find_image("x-thick").pixels != find_image("x").pixels  # counted by NumPy, not by the lesson
        assert f"{thick.sum()} of 81 cells differ from x-thick" in text(app, "#pixels-status")
        assert grid(app, "#pixels-image").highlighted("mismatch") == {tuple(cell) for cell in np.argwhere(thick)}
        await pilot.press("m", "e", "up", "space")  # stop comparing, edit, flip the pixel above the centre
        assert grid(app, "#pixels-image").cursor == (3, 4)
        assert grid(app, "#pixels-image").values[3, 4] == 1.0
        assert "1 pixel flipped (marked on the grid)" in text(app, "#pixels-status")
        assert "votes" in text(app, "#pixels-status")
        await pilot.press("s")
        await pilot.pause()
        saved = tmp_path / "xo" / "x-edit.txt"
        assert saved.exists() and saved.read_text().splitlines()[5] == "...###..."
        assert app.screen.image.name == "x-edit" and app.screen.image.source == "yours"
        await pilot.press("escape")
        await open_from_index(pilot, "vote")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "x-edit" in [image.name for image in app.screen.images]


async def test_relu_lesson_marks_the_zeroed_negatives():
    app = ConvTuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_from_index(pilot, "relu")
        assert "20 of 49 values were negative" in text(app, "#relu-status")
        assert first_row(app, "#relu-after") == "0.77 0.00 0.11 0.33 0.55 0.00 0.33"
        assert (0, 1) in grid(app, "#relu-after").highlighted("zeroed")
        await pilot.press("f")
        assert grid(app, "#relu-before").border_title == "map for X"


async def test_pooling_lesson_cursor_partial_windows_and_mean():
    app = ConvTuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_from_index(pilot, "pooling")
        assert first_row(app, "#pooling-output") == "1.00 0.33 0.55 0.33"
        assert "full window" in text(app, "#pooling-status")
        await pilot.press("right", "right", "right", "down", "down", "down", "down")  # clipped at (3, 3)
        assert grid(app, "#pooling-output").cursor == (3, 3)
        status = text(app, "#pooling-status")
        assert "rows 6-6, cols 6-6 (partial window, 1 cell)" in status and "= 0.77" in status
        assert grid(app, "#pooling-input").highlighted("window") == {(6, 6)}
        assert (6, 0) in grid(app, "#pooling-input").highlighted("partial")
        intros = lambda: [str(w.render()) for w in app.screen.query(".lesson-text")]  # noqa: E731
        assert all("keep the largest value of each window" in intro for intro in intros())
        await pilot.press("up", "t")
        assert grid(app, "#pooling-output").border_title == "mean pooled (4x4)"
        assert "mean(0.11 0.00) = 0.05" in text(app, "#pooling-status")  # 0.0555 truncated
        assert len(intros()) == 2 and all("keep the mean of each window" in intro and "largest" not in intro
                                          for intro in intros())  # both copies (above, and below under 30 rows)
        await pilot.press("t")
        assert all("keep the largest value of each window" in intro for intro in intros())


async def test_stacking_lesson_walks_the_stages():
    app = ConvTuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_from_index(pilot, "stacking")
        assert "conv 1, 3 map(s) of 7x7" in text(app, "#stacking-status")
        await pilot.press(*["right"] * 6)
        assert "pool 2, 3 map(s) of 2x2 = 12 numbers" in text(app, "#stacking-status")
        assert "pool 2 3x2x2" in text(app, "#stacking-pipeline")
        await pilot.press("d")  # depth 3
        assert "pool 3 3x1x1" in text(app, "#stacking-pipeline")


async def test_vote_lesson_scores_and_classifies_every_image():
    app = ConvTuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_from_index(pilot, "vote")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "the network says X" in text(app, "#vote-result")
        assert "trained" in text(app, "#vote-weights") and "100% of the shipped images right" in text(app, "#vote-weights")
        for _ in range(6):
            await pilot.press("n")
        assert app.screen.image.name == "o"
        assert "the network says O" in text(app, "#vote-result")


async def test_filter_example_lesson_shows_6600_then_0():
    app = ConvTuiApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_from_index(pilot, "filter-example")
        assert "= 6600" in text(app, "#example-sum")
        assert grid(app, "#example-products").values.sum() == 6600
        await pilot.press("t")
        assert "the sum = 0" in text(app, "#example-sum")
        assert grid(app, "#example-field").border_title == "non-matching receptive field"


@pytest.mark.parametrize("name, widget_id", [
    ("filters", "#filters-map"), ("pixels", "#pixels-image"), ("relu", "#relu-after"),
    ("pooling", "#pooling-output"), ("stacking", "#stacking-map-0"), ("filter-example", "#example-products"),
])
async def test_lessons_fit_80_columns(name, widget_id):
    app = ConvTuiApp(initial_screen=name)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ not in ("TooSmallScreen", "IndexScreen")
        assert app.screen.has_class("-narrow") and app.screen.has_class("-short")
        for widget in app.screen.query(NumberGrid):
            if widget.display:
                assert widget.region.right <= 80, f"{widget.id} runs off an 80-column terminal"
        assert grid(app, widget_id).region.width > 0


async def test_pixels_claim_is_counted_and_unsaved_edits_are_guarded():
    app = ConvTuiApp(initial_screen="pixels")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        intro = str(app.screen.query_one(".lesson-text", Static).render())
        assert "shift an X by one pixel and 14 of its 81 cells no longer match" in intro
        await pilot.press("m", "e")  # editing while comparing: compare goes off so the flips show at once
        assert app.screen.editing and not app.screen.comparing
        await pilot.press("space")
        assert grid(app, "#pixels-image").highlighted("edited") == {(4, 4)}
        await pilot.press("n")  # would drop the edit: warns, stays
        assert app.screen.image.name == "x"
        await pilot.press("q")  # unsaved: warns instead of quitting
        await pilot.pause()
        assert app.is_running and type(app.screen).__name__ == "PixelsScreen"
        await pilot.press("q")  # the second q quits without saving
        await pilot.pause()
        assert not app.is_running


async def test_stacking_help_describes_filters_spanning_all_maps():
    from convtui.tui.screens.stacking import StackingScreen

    assert "filter k is 3x3x3, one slice per input map" in StackingScreen.HELP
    assert "again with filter k" not in StackingScreen.HELP
