"""Pilot tests: the four mechanics lessons, reached from the lesson index and driven by keys only."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import OptionList, Static

from convtui.toy.backprop import DEFAULT_SEED, forward, gradients, make_state
from convtui.toy.channels import make_example
from convtui.toy.padding import PaddingSetup, padded_input, sample_input, window_sums
from convtui.toy.receptive import MNIST_CNN, PRESETS, trace
from convtui.tui.app import ConvTuiApp
from convtui.tui.screens.backprop import BackpropScreen
from convtui.tui.screens.channels import ChannelsScreen
from convtui.tui.screens.padding import PaddingScreen
from convtui.tui.screens.receptive_fields import ReceptiveFieldsScreen
from convtui.tui.widgets.grid import NumberGrid
from convtui.tui.widgets.mech_grid import IndexedGrid, PixelMap


def shown(screen, selector: str) -> str:
    """The plain text a Static shows."""
    return str(screen.query_one(selector, Static).render())


async def open_from_index(pilot, lesson: str) -> None:
    """Walk the index with the down key until `lesson` is highlighted, then press enter."""
    options = pilot.app.screen.query_one("#lessons", OptionList)
    for _ in range(len(options.options)):
        if options.get_option_at_index(options.highlighted).id == lesson:
            break
        await pilot.press("down")
    assert options.get_option_at_index(options.highlighted).id == lesson
    await pilot.press("enter")
    await pilot.pause()


async def test_padding_explorer_by_keys():
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await open_from_index(pilot, "padding")
        screen = app.screen
        assert isinstance(screen, PaddingScreen)
        assert "n = 7   f = 3   s = 1   padding VALID" in shown(screen, "#pad-settings")

        # Asymmetric SAME: n 7, f 4, s 2 -> total 3, 1 before and 2 after.
        await pilot.press("f", "f", "F", "s", "m")
        assert (screen.setup.n, screen.setup.f, screen.setup.s, screen.setup.mode) == (7, 4, 2, "same")
        text = shown(screen, "#pad-explain")
        assert "pad_total = max((out-1)*s + f - n, 0) = max(3*2 + 4 - 7, 0) = 3" in text
        assert "(7 + 1 + 2 - 4) // 2 + 1 = 4" in text
        grid = screen.query_one("#pad-input", IndexedGrid)
        assert grid.values.shape == (10, 10)
        assert np.all(grid.values[0, :] == 0) and np.all(grid.values[-2:, :] == 0)  # 1 row before, 2 after

        # Explicit p, then walk the neuron: its window is highlighted and the kernel's sum is shown.
        await pilot.press("m", "P", "p")  # SAME -> explicit, p 1 -> 0 -> 1
        assert screen.setup.mode == "explicit" and screen.setup.p == 1
        await pilot.press("down", "right", "right")
        assert screen.neuron == (1, 2)
        text = shown(screen, "#pad-explain")
        assert "rows i*s .. i*s+f-1 = 2..5, columns 4..7" in text
        x = sample_input(7)
        sums = window_sums(x, PaddingSetup(7, 4, 2, "explicit", 1))
        assert f"all-ones filter: {int(sums[1, 2])} = sum of the [bracketed] cells" in text
        padded = padded_input(x, 1, 1)
        assert int(padded[2:6, 4:8].sum()) == int(sums[1, 2])
        assert grid.highlighted("field") == {(r, c) for r in range(2, 6) for c in range(4, 8)}
        assert screen.query_one("#pad-output", IndexedGrid).cursor == (1, 2)

        await pilot.press("l")  # the lecture's 5x5 filter on 32x32, VALID
        assert "(32 + 2*0 - 5) // 1 + 1 = 28" in shown(screen, "#pad-explain")
        # 28 columns of 3-digit sums do not fit beside the input at 120 columns: the title says which are shown.
        assert screen.query_one("#pad-output", IndexedGrid).border_title == "output 28x28, 0..26 x 0..6"
        await pilot.press("l")  # again: SAME
        text = shown(screen, "#pad-explain")
        assert "(32 + 2*2 - 5) // 1 + 1 = 32" in text and "before = total // 2 = 2" in text
        assert "SAME (2 before, 2 after)" in shown(screen, "#pad-settings")


async def test_padding_large_input_scrolls_at_80x24():
    app = ConvTuiApp(initial_screen="padding")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("l", *["n"] * 10)
        assert screen.setup.n == 42
        await pilot.press(*["down"] * 30, *["right"] * 30)
        assert screen.neuron == (30, 30)
        grid = screen.query_one("#pad-input", IndexedGrid)
        rows, cols = grid.values.shape
        assert rows < 42 and cols < 42  # a window, not the whole input
        assert grid.row_offset <= 30 and 34 < grid.row_offset + rows  # the 5x5 field (rows 30..34) is in view
        assert grid.col_offset <= 30 and 34 < grid.col_offset + cols
        assert len(grid.highlighted("field")) == 25
        explain = screen.query_one("#pad-explain", Static)
        assert explain.region.bottom <= 23 and grid.region.right <= 80
        # The cut grids say which rows x columns they show where the title fits their width (the labels beside
        # them always do), and the panels still fit the screen.
        output = screen.query_one("#pad-output", IndexedGrid)
        for widget, size in ((grid, 42), (output, 38)):
            (n_rows, n_cols), r0, c0 = widget.values.shape, widget.row_offset, widget.col_offset
            part = f"{r0}..{r0 + n_rows - 1} x {c0}..{c0 + n_cols - 1}"
            assert widget.border_title.endswith(part) or widget.border_title.endswith(f"{size}x{size}")
            assert widget.region.right <= 80
        assert grid.border_title == f"padded input 42x42, {grid.row_offset}..{grid.row_offset + rows - 1} x " \
                                    f"{grid.col_offset}..{grid.col_offset + cols - 1}"


def test_a_window_title_names_what_it_shows_as_far_as_its_width_allows():
    from convtui.tui.widgets.mech_grid import IndexedGrid

    grid = IndexedGrid()
    grid.set_window(np.arange(100).reshape(10, 10), 0, 0)
    assert grid.window_title(("padded input", "input"), 10, 10) == "padded input 10x10"  # whole: no range
    # Cells of 2 characters: a title of t characters fits beside the corners from (t + 4) / 4 columns.
    grid.set_window(np.zeros((8, 10)), 23, 27)
    assert grid.window_title(("padded input", "input"), 42, 42) == "padded input 42x42, 23..30 x 27..36"
    grid.set_window(np.zeros((8, 8)), 23, 27)  # the short name
    assert grid.window_title(("padded input", "input"), 42, 42) == "input 42x42, 23..30 x 27..34"
    grid.set_window(np.zeros((8, 7)), 23, 27)  # the range alone
    assert grid.window_title(("padded input", "input"), 42, 42) == "42x42, 23..30 x 27..33"
    grid.set_window(np.zeros((8, 2)), 23, 27)  # no room for a range: the title as it always was
    assert grid.window_title(("padded input", "input"), 42, 42) == "input 42x42"


async def test_receptive_fields_by_keys():
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await open_from_index(pilot, "receptive-fields")
        screen = app.screen
        assert isinstance(screen, ReceptiveFieldsScreen)
        # Starts on the deepest layer of the MNIST CNN, centre cell: a 16x16 footprint.
        assert (screen.depth, screen.cell) == (4, (3, 3))
        table = shown(screen, "#rf-table")
        assert "pool 2x2 s2" in table and "6..21" in table and "16x16" in table
        assert screen.query_one("#rf-input", PixelMap).rect("footprint") == (6, 6, 21, 21)

        await pilot.press("left", "left", "left", "up", "up", "up")  # the corner: padding clips the field
        assert screen.cell == (0, 0)
        assert screen.query_one("#rf-input", PixelMap).rect("footprint") == (0, 0, 9, 9)
        assert "10x10" in shown(screen, "#rf-table")

        await pilot.press("left_square_bracket", "left_square_bracket", "left_square_bracket")  # layer 1
        assert screen.depth == 1
        await pilot.press("c")
        assert screen.cell == (13, 13)
        expected = trace(MNIST_CNN, 1, 13, 13)[-1]
        assert expected.size == (5, 5)
        assert screen.query_one("#rf-input", PixelMap).rect("footprint") == (11, 11, 15, 15)
        assert screen.query_one("#rf-layer", PixelMap).rect("cursor") == (13, 13, 13, 13)

        await pilot.press("right_square_bracket")
        assert screen.depth == 2 and screen.cell == (6, 6)
        await pilot.press("m")
        assert screen.model_stack is PRESETS[1]
        assert "MNIST CNN, VALID" in shown(screen, "#rf-legend")


async def test_channels_steps_cells_and_totals_match_the_kernel():
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await open_from_index(pilot, "channels")
        screen = app.screen
        assert isinstance(screen, ChannelsScreen)
        example = make_example(0)
        await pilot.press("n", "n", "down")  # (filter 0, row 1, column 2)
        assert screen.position == (0, 1, 2)
        status = shown(screen, "#ch-status")
        total = int(example.y[0, 1, 2])
        assert "o[1,2,0]" in status and "padded rows 2..4, columns 4..6" in status
        assert status.rstrip().endswith(f"= conv2d_forward {total}")
        patch = screen.query_one("#ch-patch-1", NumberGrid).values
        np.testing.assert_array_equal(patch, example.x_padded[1, 2:5, 4:7])
        products = screen.query_one("#ch-products-2", NumberGrid).values
        np.testing.assert_array_equal(products, example.x_padded[2, 2:5, 4:7] * example.w[0, 2])
        channel_sums = [int(products.sum()) for products in
                        (example.x_padded[c, 2:5, 4:7] * example.w[0, c] for c in range(3))]
        assert f"sum = {channel_sums[2]}" in shown(screen, "#ch-sum-2")
        assert sum(channel_sums) + int(example.b[0]) == total
        assert screen.query_one("#ch-output-0", NumberGrid).cursor == (1, 2)

        await pilot.press("f")
        assert screen.position == (1, 1, 2)
        assert shown(screen, "#ch-status").rstrip().endswith(f"= conv2d_forward {int(example.y[1, 1, 2])}")
        await pilot.press("r")
        rolled = make_example(1)
        assert screen.seed == 1
        np.testing.assert_array_equal(screen.query_one("#ch-output-1", NumberGrid).values, rolled.y[1])
        await pilot.press("0")
        assert screen.seed == 0


async def test_channels_fit_at_80x24():
    app = ConvTuiApp(initial_screen="channels")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert not screen.query_one("#ch-input-0", IndexedGrid).display  # compact: patches only
        assert screen.query_one("#ch-sum-2", Static).region.bottom <= 23
        assert screen.query_one("#ch-output-1", NumberGrid).region.right <= 80


async def test_backprop_pages_and_updates_by_keys():
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await open_from_index(pilot, "backprop")
        screen = app.screen
        assert isinstance(screen, BackpropScreen)
        state = make_state()
        page = shown(screen, "#bp-page")
        assert "h11 = W11X11 + W12X12 + W21X21 + W22X22" in page
        assert "h22 = W11X22 + W12X23 + W21X32 + W22X33" in page
        h = forward(state.x, state.w)
        assert f"= {h[0, 0]:.2f}" in page  # -0.44 (truncation and rounding agree here)

        await pilot.press("2")
        page = shown(screen, "#bp-page")
        grads = gradients(state)
        assert "dE/dW11 = (h11-t11)X11 + (h12-t12)X12 + (h21-t21)X21 + (h22-t22)X22" in page
        assert f"= {grads.dE_dW[0, 0]:.2f}" in page

        await pilot.press("3")
        page = shown(screen, "#bp-page")
        assert f"dE/dW12{grads.dE_dW[0, 1]:>16.4f}{grads.dE_dW[0, 1]:>17.4f}" in page
        gap = float(page.split("over W and X: ")[1].split()[0])
        assert gap < 1e-6

        await pilot.press("4", "u")
        after = screen.state
        np.testing.assert_allclose(after.w, state.w - 0.02 * grads.dE_dW)
        assert after.history[1] < after.history[0]
        assert "updates 1" in shown(screen, "#bp-status")
        await pilot.press("t")
        assert len(screen.state.history) == 12
        assert screen.state.history[-1] < 0.1 * state.history[0]
        assert f"E = {screen.state.history[-1]:.4f}"[:8] in shown(screen, "#bp-status")

        await pilot.press("plus", "plus", "plus", "plus")  # eta 0.2: too big, E grows
        assert screen.state.eta == 0.2
        before = screen.state.history[-1]
        await pilot.press("t")
        assert screen.state.history[-1] > 100 * before

        await pilot.press("0")
        assert len(screen.state.history) == 1 and screen.state.eta == 0.2
        np.testing.assert_array_equal(screen.state.w, state.w)
        await pilot.press("r")
        assert screen.seed == DEFAULT_SEED + 1
        assert not np.array_equal(screen.state.x, state.x)


@pytest.mark.parametrize("lesson", ["padding", "receptive-fields", "channels", "backprop"])
async def test_every_mechanics_screen_fits_80x24(lesson):
    app = ConvTuiApp(initial_screen=lesson)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        statics = [w for w in screen.query(Static) if w.display and w.id]
        assert statics
        for widget in statics:
            assert widget.region.bottom <= 23, f"{widget.id} ends at row {widget.region.bottom}"
        for page in "1234" if lesson == "backprop" else "":
            await pilot.press(page)
            assert screen.query_one("#bp-page", Static).region.bottom <= 22


def test_indexed_grid_labels_the_window_it_shows():
    grid = IndexedGrid(np.array([[0, 5], [7, 0]]), row_offset=9, col_offset=3)
    lines = grid.plain_text().split("\n")
    assert lines[0].split() == ["3", "4"]
    assert lines[1].split() == ["9", "0", "5"] and lines[2].split() == ["10", "7", "0"]
    grid.highlight_rect("field", 0, 1, 1, 1)
    assert "[ 5]" in grid.plain_text() and "[ 0]" in grid.plain_text().split("\n")[2]


def test_pixel_map_paints_two_rows_per_line_later_rectangles_on_top():
    pixels = PixelMap((3, 4))
    pixels.paint("footprint", 0, 0, 2, 1)
    pixels.paint("cursor", 1, 1, 1, 1)
    assert pixels.colour_at(0, 0) == pixels.colour_at(2, 1) != pixels.colour_at(0, 3)
    assert pixels.colour_at(1, 1) != pixels.colour_at(1, 0)
    text = pixels.render()
    # 3 rows -> 2 lines of half blocks; painted areas keep their own characters, so they read without colour
    # (░ the footprint, ▓ the cell under the cursor).
    assert text.plain == "░▓▀▀\n░░▀▀"
    pixels.zoom = 2
    assert pixels.render().plain.split("\n") == ["░░░░▀▀▀▀", "░░▓▓▀▀▀▀", "░░░░▀▀▀▀"]
    # An image underneath shows through: ink and paper get different shades of the same highlight.
    plain_paper = pixels.colour_at(0, 3)
    pixels.set_image(np.array([[1, -1, -1, 1], [-1, -1, -1, -1], [-1, -1, -1, -1]]))
    assert pixels.colour_at(0, 0) != pixels.colour_at(1, 0)  # footprint on ink vs on paper
    assert pixels.colour_at(0, 3) != plain_paper and pixels.colour_at(0, 2) == plain_paper


@pytest.mark.parametrize("lesson,phrase", [("padding", "is shown in [brackets]"),
                                           ("receptive-fields", "] (deeper) and [ (shallower)"),
                                           ("channels", "[3, 3, 2]"), ("backprop", "E_hij = 1/2 (hij - tij)^2")])
async def test_help_shows_the_lesson_text_and_keys(lesson, phrase):
    from convtui.tui.screens.help import HelpScreen

    app = ConvTuiApp(initial_screen=lesson)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert phrase in shown(app.screen, "#help-text")  # brackets survive markup
        keys = [key for key, _ in app.screen.key_rows]
        assert "?" in keys and all("_" not in key for key in keys)  # ←, [, + rather than key names
