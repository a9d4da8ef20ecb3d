"""Every screen reads without colour, nothing is cut off at 120x40, and nothing is dropped at 80x24 while rows
stay blank (issue 11, "Readable without colour, at 120x40 and at 80x24").

The checks read the screen as the terminal shows it: the compositor's lines as plain text, with the app's
colours off (NO_COLOR) where it matters, so a highlight that is only a colour fails.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from convtui.toy.formatting import format_value
from convtui.tui.app import ConvTuiApp
from convtui.tui.lessons import LESSONS
from convtui.tui.screens.index import CURSOR_MARK
from convtui.tui.screens.lesson_base import LessonBody
from convtui.tui.widgets.grid import CURSOR_MARKS, NumberGrid
from convtui.tui.widgets.mech_grid import IndexedGrid, PixelMap

# A few keys per lesson that change what is drawn (another image, filter, layer, page, stack, mode).
KEYS: dict[str, list[list[str]]] = {
    "filter-example": [[], ["t"]],
    "padding": [[], ["l"], ["l", "l"], ["f", "f", "s", "m", "down", "right"], ["m", "m", "p", "p"]],
    "receptive-fields": [[], ["left_square_bracket"] * 3, ["m"], ["m", "m"], ["m", "m", "m"],
                         ["m", "m", "m", "left_square_bracket"]],
    "pixels": [[], ["m"], ["e", "up", "space"], ["n", "n", "n"]],
    "filters": [[], ["f", "space", "space"], ["c"], ["n", "f", "f"]],
    "relu": [[], ["f"], ["n", "n"]],
    "pooling": [[], ["t"], ["down", "down", "down", "right", "right", "right"], ["n", "f"]],
    "stacking": [[], ["right"] * 5, ["d", "right", "right"], ["t", "right", "right", "right"]],
    "vote": [[], ["n"], ["p"]],
    "channels": [[], ["n", "f"], ["down", "down", "right", "right"], ["r"]],
    "backprop": [[], ["2"], ["3"], ["4", "u"], ["4", "t"], ["4", "plus", "plus", "plus", "plus", "t"]],
    "train": [[]],
    "draw": [[]],
    "runs": [[]],
    "progression": [[]],
    "invariance": [[], ["right", "right"], ["r", "right", "right", "right"], ["z", "left"]],
}
# Screens owned by other work in flight: strict xfail, so each flips to a failure the day it is fixed.
KNOWN_CUT_OFF: dict[str, str] = {}  # case id -> reason
KNOWN_DROPPED: dict[str, str] = {}  # lesson -> reason, for a known case still being fixed (strict xfail)
# Text that ends in "…" on purpose (a status that is still working), not a label cut by Textual.
DELIBERATE_ELLIPSES = ("kernels…",)
BORDER_RIGHT = "│╮╯┤┐┘"


@pytest.fixture(autouse=True)
def no_user_images(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))  # the learner's own images would change the lists
    monkeypatch.setenv("CONVTUI_RUNS_DIR", str(tmp_path))


def screen_lines(app) -> list[str]:
    """The whole screen as the terminal shows it, one string per row, without styles."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def cut_off(lines: list[str]) -> list[str]:
    """Lines where text was cut: Textual's "…" on a label or title, a word running into a panel's right border,
    or a word reaching the terminal's last column (how a Footer or an unwrapped Static loses its end)."""
    found = []
    for y, line in enumerate(lines):
        text = line
        for phrase in DELIBERATE_ELLIPSES:
            text = text.replace(phrase, "")
        if "…" in text or (line.rstrip() and line[-1:].isalnum()) or re.search(rf"\w[{BORDER_RIGHT}]", line):
            found.append(f"row {y}: {line.rstrip()!r}")
    return found


def cases(lessons=None):
    for lesson in LESSONS:
        if lessons is None or lesson.name in lessons:
            for keys in KEYS[lesson.name]:
                case = f"{lesson.name}-{'-'.join(keys) or 'start'}"
                marks = [pytest.mark.xfail(strict=True, reason=KNOWN_CUT_OFF[case])] if case in KNOWN_CUT_OFF else []
                yield pytest.param(lesson.name, keys, id=case, marks=marks)


def test_every_lesson_has_keys_to_try():
    assert set(KEYS) == {lesson.name for lesson in LESSONS}


def test_the_truncation_check_catches_what_the_issue_saw():
    # Lines as the committed version drew them (issue 11): the check must flag each, and pass a clean line.
    assert cut_off([" ╭─ curve detector filter ─╮ ╭─ non-matching receptive … ─╮"])
    assert cut_off([" │▀▀▀│  layer 1: conv 5x5x32 s1 SAM".ljust(40, "x")[:34]])
    assert cut_off(["t clear  ? Help  q Quit  esc Bac"])
    assert not cut_off([" ╭─ field ─╮  sum = 1 ", " │[ 0.77] 0.11 │ "])


@pytest.mark.parametrize(("lesson", "keys"), list(cases()))
async def test_nothing_is_cut_off_at_120x40(lesson, keys):
    app = ConvTuiApp(initial_screen=lesson)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await pilot.pause()
        lines = screen_lines(app)
        assert len(lines) == 40
        assert not cut_off(lines), "\n".join(cut_off(lines))
        # A widget reaching past the right edge loses its end without a mark, its padding still blank
        # (the receptive-field legend's "conv 5x5x32 s1 SAM").
        past = [f"{w.id or type(w).__name__}: {w.region}" for w in app.screen.walk_children()
                if w.display and w.region.width and w.region.right > 120]
        assert not past, past


async def test_the_index_at_120x40_is_not_cut_off():
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not cut_off(screen_lines(app))


# ---------------------------------------------------------------- monochrome
def check_grid_marks(grid: NumberGrid, lines: list[str]) -> int:
    """Each marked cell of `grid` shows its two mark characters on screen, every other cell two spaces, and two
    groups on one grid that look different in colour never share marks. Returns the number of marked cells."""
    groups = {}
    for cells, style, marks in grid._highlights.values():
        if cells:
            groups.setdefault(marks, set()).add(style)
    assert all(len(styles) == 1 for styles in groups.values()), f"{grid.id}: one mark, two meanings: {groups}"
    assert CURSOR_MARKS not in groups, f"{grid.id}: a highlight looks like the cursor"
    region = grid.content_region
    label = grid._label_width() + 1 if isinstance(grid, IndexedGrid) else 0
    top = region.y + (1 if isinstance(grid, IndexedGrid) else 0)
    width = grid._cell_width() + 2
    expected = grid.marks()
    rows, cols = grid.values.shape
    for r in range(rows):
        line = lines[top + r]
        for c in range(cols):
            left = region.x + label + c * width
            shown = line[left] + line[left + width - 1]
            assert shown == expected.get((r, c), "  "), f"{grid.id} cell ({r}, {c}) shows {shown!r}: {line!r}"
    return len(expected)


@pytest.mark.parametrize(("lesson", "keys"), list(cases(
    {"filter-example", "padding", "pixels", "filters", "relu", "pooling", "stacking", "channels"})))
async def test_every_highlighted_cell_is_marked_without_colour(monkeypatch, lesson, keys):
    monkeypatch.setenv("NO_COLOR", "1")
    app = ConvTuiApp(initial_screen=lesson)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.no_color
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await pilot.pause()
        lines = screen_lines(app)
        grids = [g for g in app.screen.query(NumberGrid) if g.display and g.content_region.bottom <= 40
                 and g.content_region.area]
        assert grids
        marked = sum(check_grid_marks(grid, lines) for grid in grids)
        # Stacking's maps carry no highlight; the pixels lesson has none until it compares or edits.
        if lesson != "stacking" and (lesson != "pixels" or {"m", "e"} & set(keys)):
            assert marked


async def test_padding_neuron_and_its_field_read_without_colour(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = ConvTuiApp(initial_screen="padding")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("down", "right")
        screen = app.screen
        text = "\n".join(screen_lines(app))
        x = screen.query_one("#pad-input", IndexedGrid).values
        expected = int(x[1:4, 1:4].sum())  # n 7, f 3, s 1, VALID: neuron (1, 1) reads rows and columns 1..3
        assert re.search(rf">\s*{expected}<", text)
        assert text.count(">") - text.count("->") == 1  # one neuron marked
        assert text.count("[") - text.count("[bracketed]") == 9  # its 3x3 field


async def test_pooling_marks_each_meaning_differently(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = ConvTuiApp(initial_screen="pooling")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "down", "right")  # cell (3, 1): a partial window, 2 cells
        screen = app.screen
        source = screen.query_one("#pooling-input", NumberGrid)
        pooled = screen.query_one("#pooling-output", NumberGrid)
        src_text, out_text = source.plain_text(), pooled.plain_text()
        winner = source.values[6, 2:4].max()
        assert f"*{format_value(winner):>5}*" in src_text
        assert src_text.count("[") == 1 and src_text.count("*") == 2  # the window's other cell, the winner
        assert src_text.count("(") == 13 - 2  # 7 + 6 partial cells, less the 2 of the window
        assert out_text.count(">") == 1 and out_text.count("(") == 7 - 1
        status = str(screen.query_one("#pooling-status").render())
        assert "[ ] the window" in status and "( ) partial" in status and "* * the value kept" in status


async def test_index_cursor_reads_without_colour(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        marked = [line for line in screen_lines(app) if line.lstrip().startswith(CURSOR_MARK.strip())]
        assert len(marked) == 1 and LESSONS[0].title in marked[0]
        await pilot.press("down", "down")
        marked = [line for line in screen_lines(app) if line.lstrip().startswith(CURSOR_MARK.strip())]
        assert len(marked) == 1 and LESSONS[2].title in marked[0]


async def test_receptive_field_regions_read_without_colour(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = ConvTuiApp(initial_screen="receptive-fields")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        lines = screen_lines(app)
        screen = app.screen
        footprint = screen.footprints[-1]
        for selector, mark, (rows, cols) in (
                ("#rf-input", "░", (footprint.rows, footprint.cols)),
                ("#rf-layer", "▓", ((screen.cell[0],) * 2, (screen.cell[1],) * 2))):
            pixel_map = screen.query_one(selector, PixelMap)
            region, zoom = pixel_map.content_region, pixel_map.zoom
            drawn = [lines[region.y + y][region.x:region.right] for y in range(region.height)]
            expected_lines = {y // 2 for r in range(rows[0], rows[1] + 1) for y in range(r * zoom, (r + 1) * zoom)}
            for y, line in enumerate(drawn):
                columns = [x for x, char in enumerate(line) if char == mark]
                if y in expected_lines:
                    assert columns == list(range(cols[0] * zoom, (cols[1] + 1) * zoom)), (selector, y, line)
                else:
                    assert not columns, (selector, y, line)


# ---------------------------------------------------------------- 80x24
async def shown_panels(lesson: str, size: tuple[int, int]):
    """The lesson's grids and maps as displayed at `size`: {id: widget} of those shown, the body's blank rows."""
    app = ConvTuiApp(initial_screen=lesson)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        body = app.screen.query_one(LessonBody)
        panels = {w.id: w for w in body.query("NumberGrid, PixelMap") if w.display}
        shown = [w for w in body.children if w.display and w.region.height]
        blank = body.content_region.bottom - max(w.region.bottom for w in shown) if body.max_scroll_y == 0 else 0
        return panels, blank


def same_content(a, b) -> bool:
    return type(a) is type(b) and getattr(a, "values", None) is not None and np.array_equal(a.values, b.values)


@pytest.mark.parametrize("lesson", [
    pytest.param(lesson.name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_DROPPED[lesson.name])]
                 if lesson.name in KNOWN_DROPPED else [])
    for lesson in LESSONS if lesson.name not in ("train", "draw", "runs")])
async def test_no_panel_is_dropped_while_rows_stay_blank_at_80x24(lesson):
    # A panel shown at 120x40 may be hidden at 80x24 only when the body is full, or when another panel shows
    # the same numbers (the channels lesson's compact slices stand in for its full ones).
    wide, _ = await shown_panels(lesson, (120, 40))
    small, blank = await shown_panels(lesson, (80, 24))
    dropped = [name for name, panel in wide.items()
               if name not in small and not any(same_content(panel, other) for other in small.values())]
    assert not (dropped and blank > 0), f"{dropped} hidden at 80x24 while {blank} rows of the body stay blank"
