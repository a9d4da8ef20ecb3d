"""NumberGrid: a 2-D array shown the lecture's way, in colour, with highlights and an optional cursor.

Values are formatted by `convtui.toy.formatting.format_value` (truncated toward zero at two decimals, the same
text `convtui xo` prints). The background colour follows sign and magnitude using only xterm-256 palette
indices, so it looks the same in tmux with TERM=xterm-256color as in a truecolor terminal. Every mark also reads
without colour (NO_COLOR, a monochrome projector, a copied capture): highlights draw `[` `]` around cells (or the
marks a screen picks, so two meanings never share one mark), and the cursor is `>` `<` as well as reverse video.

Use from a screen:

    grid = NumberGrid(values, decimals=2, title="feature map", id="map")
    grid.set_values(new_values)                       # NaN cells show as "." (not computed yet)
    grid.highlight("window", cells, style="bold color(226)")
    grid.highlight("partial", cells, style="color(141)", marks="()")   # a second meaning, a second mark
    grid.highlight_rect("window", top, left, bottom, right)   # inclusive corners, clipped to the grid
    grid.cursor = (row, col)                          # or None
    grid.plain_text()                                 # what is shown, without colours (handy in tests)

The grid is never narrower than its border title and subtitle, so a title is never cut to "…".
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from convtui.toy.formatting import cell_strings, cell_width

# xterm-256 indices, dark to bright. Reds for negatives, blues for positives, a grey for zero.
NEGATIVE_BACKGROUNDS = (52, 88, 124, 160, 196)
POSITIVE_BACKGROUNDS = (17, 18, 19, 20, 21)
ZERO_BACKGROUND = 237
# Pixel images (+1 ink, -1 paper) read better as light/dark than as blue/red.
PIXEL_ON, PIXEL_OFF = 255, 236

DEFAULT_HIGHLIGHT = "bold color(226)"  # bright yellow brackets
DEFAULT_MARKS = "[]"
CURSOR_MARKS = "><"  # distinct from every highlight's marks: the cursor is one cell, not a group


class _SizingTitle:
    """Widget's border title or subtitle, re-measured when set: the grid widens to show a longer title whole."""

    def __set_name__(self, owner, name: str) -> None:
        self.inner = Widget.__dict__[name]

    def __get__(self, obj, objtype=None):
        return self if obj is None else self.inner.__get__(obj, objtype)

    def __set__(self, obj, title) -> None:
        self.inner.__set__(obj, title)
        obj.refresh(layout=True)


class NumberGrid(Widget):
    """A read-only grid of numbers; `palette` is "signed" (diverging colours) or "pixels" (+1 light, -1 dark)."""

    DEFAULT_CSS = """
    NumberGrid {
        width: auto;
        height: auto;
        border: round $primary 50%;
        border-title-align: left;
        padding: 0 0;
    }
    """

    cursor: reactive[tuple[int, int] | None] = reactive(None)
    border_title = _SizingTitle()
    border_subtitle = _SizingTitle()

    def __init__(self, values=None, decimals: int = 2, palette: str = "signed", scale: float | None = None,
                 title: str | None = None, min_cell_width: int | None = None, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.decimals = decimals
        self.palette = palette
        self.fixed_scale = scale
        self.min_cell_width = min_cell_width
        self._highlights: dict[str, tuple[set[tuple[int, int]], str, str]] = {}
        self.values = np.zeros((1, 1)) if values is None else np.asarray(values, dtype=np.float64)
        if title:
            self.border_title = title

    # ---------------------------------------------------------------- state
    def set_values(self, values, decimals: int | None = None) -> None:
        """Replace the numbers (a 2-D array; NaN shows as not computed yet)."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"NumberGrid wants a 2-D array, got shape {values.shape}")
        old_size = (self.values.shape, self._cell_width())
        self.values = values
        if decimals is not None:
            self.decimals = decimals
        self.refresh(layout=(self.values.shape, self._cell_width()) != old_size)

    def highlight(self, name: str, cells: Iterable[tuple[int, int]], style: str = DEFAULT_HIGHLIGHT,
                  marks: str = DEFAULT_MARKS) -> None:
        """Mark cells with `marks` (a left and a right character, brackets by default) in `style`; a later group
        wins where groups overlap. Give each meaning on one grid its own marks: colour alone does not print."""
        if len(marks) != 2:
            raise ValueError(f"marks are a left and a right character, got {marks!r}")
        self._highlights.pop(name, None)
        self._highlights[name] = ({(int(r), int(c)) for r, c in cells}, style, marks)
        self.refresh()

    def highlight_rect(self, name: str, top: int, left: int, bottom: int, right: int,
                       style: str = DEFAULT_HIGHLIGHT, marks: str = DEFAULT_MARKS) -> None:
        """Highlight the rectangle of cells from (top, left) to (bottom, right) inclusive, clipped to the grid."""
        rows, cols = self.values.shape
        cells = [(r, c) for r in range(max(0, top), min(rows, bottom + 1))
                 for c in range(max(0, left), min(cols, right + 1))]
        self.highlight(name, cells, style, marks)

    def clear_highlights(self, name: str | None = None) -> None:
        if name is None:
            self._highlights.clear()
        else:
            self._highlights.pop(name, None)
        self.refresh()

    def highlighted(self, name: str) -> set[tuple[int, int]]:
        return set(self._highlights.get(name, (set(), "", ""))[0])

    def marks(self) -> dict[tuple[int, int], str]:
        """Every marked cell and its two characters as drawn (later highlights on top, the cursor over all)."""
        marked = {cell: marks for cell, (_, marks) in self._marker_styles().items()}
        if self.cursor is not None:
            marked[self.cursor] = CURSOR_MARKS
        return marked

    def watch_cursor(self) -> None:
        self.refresh()

    # ---------------------------------------------------------------- drawing
    def _cell_width(self, cells=None) -> int:
        # Room for "-0.11" from the start, so a map filling in cell by cell never changes width (a grid of
        # fixed one-digit numbers may ask for less with `min_cell_width`).
        minimum = self.decimals + 3 if self.decimals else 2
        if self.min_cell_width is not None:
            minimum = self.min_cell_width
        return cell_width(cell_strings(self.values, self.decimals) if cells is None else cells, minimum)

    def _scale(self) -> float:
        if self.fixed_scale:
            return self.fixed_scale
        finite = self.values[np.isfinite(self.values)]
        top = float(np.abs(finite).max()) if finite.size else 0.0
        return top if top > 0 else 1.0

    def _cell_style(self, value: float, scale: float) -> str:
        if not np.isfinite(value):
            return "color(244)"
        if self.palette == "pixels":
            return f"color(16) on color({PIXEL_ON})" if value > 0 else f"color(245) on color({PIXEL_OFF})"
        if abs(value) < 1e-9:
            return f"color(250) on color({ZERO_BACKGROUND})"
        level = min(4, int(abs(value) / scale * 5 - 1e-9))
        background = (POSITIVE_BACKGROUNDS if value > 0 else NEGATIVE_BACKGROUNDS)[level]
        return f"bold color(231) on color({background})"

    def _marker_styles(self) -> dict[tuple[int, int], tuple[str, str]]:
        marked: dict[tuple[int, int], tuple[str, str]] = {}
        for cells, style, marks in self._highlights.values():
            for cell in cells:
                marked[cell] = (style, marks)
        return marked

    def render(self) -> Text:
        cells = cell_strings(self.values, self.decimals)
        width = self._cell_width(cells)
        scale = self._scale()
        marked = self._marker_styles()
        text = Text(no_wrap=True, overflow="crop")
        for r, row in enumerate(cells):
            if r:
                text.append("\n")
            for c, cell in enumerate(row):
                marker_style, marks = marked.get((r, c), ("", "  "))
                style = self._cell_style(self.values[r, c], scale)
                if self.cursor == (r, c):
                    style += " reverse"
                    marker_style, marks = f"bold {marker_style}".strip(), CURSOR_MARKS
                text.append(marks[0], style=marker_style)
                text.append(f"{cell:>{width}}", style=style)
                text.append(marks[1], style=marker_style)
        return text

    def plain_text(self) -> str:
        """The grid as shown, without colours: the strings a learner reads (marks show highlights and cursor)."""
        return self.render().plain

    def get_content_width(self, container, viewport) -> int:
        cols = self.values.shape[1]
        return max(cols * (self._cell_width() + 2), self.title_width())

    def title_width(self) -> int:
        """Content width the border title and subtitle need to show whole: Textual cuts a longer one to "…".
        Each takes its text plus a space either side, after a line and a corner on each side."""
        # Measured on the titles as Textual stores them (after markup), not on their markup: "filter \\".
        titles = [getattr(self, "_border_title", None), getattr(self, "_border_subtitle", None)]
        return max((title.cell_length + 4 for title in titles if title), default=0)

    def get_content_height(self, container, viewport, width: int) -> int:
        return self.values.shape[0]
