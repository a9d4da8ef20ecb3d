"""NumberGrid: a 2-D array shown the lecture's way, in colour, with highlights and an optional cursor.

Values are formatted by `convtui.toy.formatting.format_value` (truncated toward zero at two decimals, the same
text `convtui xo` prints). The background colour follows sign and magnitude using only xterm-256 palette
indices, so it looks the same in tmux with TERM=xterm-256color as in a truecolor terminal. Highlights draw
`[` `]` around cells (readable even without colour), the cursor is reverse video.

Use from a screen:

    grid = NumberGrid(values, decimals=2, title="feature map", id="map")
    grid.set_values(new_values)                       # NaN cells show as "." (not computed yet)
    grid.highlight("window", cells, style="bold color(226)")
    grid.highlight_rect("window", top, left, bottom, right)   # inclusive corners, clipped to the grid
    grid.cursor = (row, col)                          # or None
    grid.plain_text()                                 # what is shown, without colours (handy in tests)
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

    def __init__(self, values=None, decimals: int = 2, palette: str = "signed", scale: float | None = None,
                 title: str | None = None, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.decimals = decimals
        self.palette = palette
        self.fixed_scale = scale
        self._highlights: dict[str, tuple[set[tuple[int, int]], str]] = {}
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

    def highlight(self, name: str, cells: Iterable[tuple[int, int]], style: str = DEFAULT_HIGHLIGHT) -> None:
        """Mark cells with brackets in `style`; a later group wins where groups overlap."""
        self._highlights.pop(name, None)
        self._highlights[name] = ({(int(r), int(c)) for r, c in cells}, style)
        self.refresh()

    def highlight_rect(self, name: str, top: int, left: int, bottom: int, right: int,
                       style: str = DEFAULT_HIGHLIGHT) -> None:
        """Highlight the rectangle of cells from (top, left) to (bottom, right) inclusive, clipped to the grid."""
        rows, cols = self.values.shape
        cells = [(r, c) for r in range(max(0, top), min(rows, bottom + 1))
                 for c in range(max(0, left), min(cols, right + 1))]
        self.highlight(name, cells, style)

    def clear_highlights(self, name: str | None = None) -> None:
        if name is None:
            self._highlights.clear()
        else:
            self._highlights.pop(name, None)
        self.refresh()

    def highlighted(self, name: str) -> set[tuple[int, int]]:
        return set(self._highlights.get(name, (set(), ""))[0])

    def watch_cursor(self) -> None:
        self.refresh()

    # ---------------------------------------------------------------- drawing
    def _cell_width(self, cells=None) -> int:
        # Room for "-0.11" from the start, so a map filling in cell by cell never changes width.
        minimum = self.decimals + 3 if self.decimals else 2
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

    def _marker_styles(self) -> dict[tuple[int, int], str]:
        marked: dict[tuple[int, int], str] = {}
        for cells, style in self._highlights.values():
            for cell in cells:
                marked[cell] = style
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
                marker = marked.get((r, c))
                style = self._cell_style(self.values[r, c], scale)
                if self.cursor == (r, c):
                    style += " reverse"
                text.append("[" if marker else " ", style=marker or "")
                text.append(f"{cell:>{width}}", style=style)
                text.append("]" if marker else " ", style=marker or "")
        return text

    def plain_text(self) -> str:
        """The grid as shown, without colours: the strings a learner reads (brackets mark highlights)."""
        return self.render().plain

    def get_content_width(self, container, viewport) -> int:
        cols = self.values.shape[1]
        return cols * (self._cell_width() + 2)

    def get_content_height(self, container, viewport, width: int) -> int:
        return self.values.shape[0]
