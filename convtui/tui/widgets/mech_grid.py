"""Widgets for the mechanics lessons, built on the shared NumberGrid.

IndexedGrid: a NumberGrid with row and column numbers, for showing a window onto a larger array (the padding
explorer scrolls a 64x64 input on an 80x24 terminal), so "rows i*s .. i*s + f - 1" can be read off the labels.

PixelMap: a map of cells drawn two rows per terminal line with half blocks (heatmap's renderer), so a 28x28 image
takes 28x14 characters and its cells look square. Rectangles are painted in xterm-256 colours (no truecolor
needed) and in their own character (`PIXEL_MARKS`), so they still show on a monochrome terminal.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from convtui.tui.widgets.grid import NumberGrid
from convtui.tui.widgets.heatmap import UPPER_HALF, paint_half_blocks


class IndexedGrid(NumberGrid):
    """A NumberGrid showing a window of a larger array, labelled with the rows and columns it covers."""

    def __init__(self, values=None, decimals: int = 0, row_offset: int = 0, col_offset: int = 0, **kwargs) -> None:
        super().__init__(values, decimals=decimals, **kwargs)
        self.row_offset, self.col_offset = row_offset, col_offset

    def set_window(self, values, row_offset: int, col_offset: int) -> None:
        """Show `values`, the part of a larger array whose top-left cell is (row_offset, col_offset)."""
        self.row_offset, self.col_offset = row_offset, col_offset
        self.set_values(values)
        self.refresh(layout=True)

    def window_title(self, names: tuple[str, ...], rows: int, cols: int) -> str:
        """A border title for this window of a rows x cols array: "padded input 42x42", and when the window is cut,
        the rows x columns it shows ("padded input 42x42, 23..30 x 27..34"), with the shorter name, then none,
        when that does not fit the grid's own width (a longer title widens the panel, off a small screen)."""
        size = f"{rows}x{cols}"
        shown_rows, shown_cols = self.values.shape
        if (self.row_offset, self.col_offset, shown_rows, shown_cols) == (0, 0, rows, cols):
            return f"{names[0]} {size}"
        part = (f"{self.row_offset}..{self.row_offset + shown_rows - 1} x "
                f"{self.col_offset}..{self.col_offset + shown_cols - 1}")
        room = self._label_width() + 1 + shown_cols * (self._cell_width() + 2) - 7  # beside the corners and padding
        fitting = [title for title in [f"{name} {size}, {part}" for name in names] + [f"{size}, {part}"]
                   if len(title) <= room]
        return fitting[0] if fitting else f"{names[-1]} {size}"

    def _label_width(self) -> int:
        return len(str(self.row_offset + self.values.shape[0] - 1))

    def render(self) -> Text:
        # Column labels share the cells' width; indices stay under 100, so two characters always suffice.
        body = super().render()
        label_width = self._label_width()
        width = self._cell_width()  # the width NumberGrid gives every cell
        text = Text(" " * (label_width + 1), no_wrap=True, overflow="crop")
        for c in range(self.values.shape[1]):
            text.append(f" {c + self.col_offset:>{width}} ", style="dim")
        for r, line in enumerate(body.split("\n")):
            text.append("\n")
            text.append(f"{r + self.row_offset:>{label_width}} ", style="dim")
            text.append(line)
        return text

    def get_content_width(self, container, viewport) -> int:
        return super().get_content_width(container, viewport) + self._label_width() + 1

    def get_content_height(self, container, viewport, width: int) -> int:
        return self.values.shape[0] + 1


# xterm-256 colours for PixelMap, as (on ink, on paper): an image underneath stays visible through a highlight.
PIXEL_PLAIN = (250, 236)  # light grey ink, dark grey paper
PIXEL_LAYERS = {"footprint": (45, 25), "cursor": (226, 136)}
# The character each layer is drawn in: without colour (NO_COLOR) it is the only thing that marks the region.
PIXEL_MARKS = {"footprint": "░", "cursor": "▓"}


class PixelMap(Widget):
    """An h x w map painted with half blocks; named rectangles are tinted in colour and drawn in their own
    character (PIXEL_MARKS, default `░`), later ones on top.

    An optional image (ink where > 0) shows through: each colour is a pair, (on ink, on paper).
    """

    DEFAULT_CSS = """
    PixelMap {
        width: auto;
        height: auto;
        border: round $primary 50%;
        border-title-align: left;
    }
    """

    shape: reactive[tuple[int, int]] = reactive((1, 1), layout=True)
    zoom: reactive[int] = reactive(1, layout=True)  # each cell drawn zoom columns wide and zoom half-rows high

    def __init__(self, shape: tuple[int, int] = (1, 1), title: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rects: dict[str, tuple[int, int, int, int, tuple[int, int], str]] = {}
        self._ink: np.ndarray | None = None
        self.set_reactive(PixelMap.shape, tuple(shape))
        if title:
            self.border_title = title

    def set_image(self, image: np.ndarray | None) -> None:
        """Show an image under the highlights (cells > 0 are ink), or None for a plain map."""
        self._ink = None if image is None else np.asarray(image) > 0
        self.refresh()

    def paint(self, name: str, top: int, left: int, bottom: int, right: int,
              colours: tuple[int, int] | None = None, mark: str | None = None) -> None:
        """Tint the rectangle (top, left)-(bottom, right), inclusive (colours and mark default from PIXEL_LAYERS
        and PIXEL_MARKS)."""
        self._rects.pop(name, None)
        self._rects[name] = (top, left, bottom, right, colours if colours is not None else PIXEL_LAYERS[name],
                             mark or PIXEL_MARKS.get(name, "░"))
        self.refresh()

    def clear(self) -> None:
        self._rects.clear()
        self.refresh()

    def rect(self, name: str) -> tuple[int, int, int, int] | None:
        """The painted rectangle called `name` as (top, left, bottom, right), or None."""
        found = self._rects.get(name)
        return found[:4] if found else None

    def colour_at(self, r: int, c: int) -> int:
        ink = self._ink is not None and 0 <= r < self._ink.shape[0] and 0 <= c < self._ink.shape[1] \
            and bool(self._ink[r, c])
        colours = PIXEL_PLAIN
        for top, left, bottom, right, fill, _ in self._rects.values():
            if top <= r <= bottom and left <= c <= right:
                colours = fill
        return colours[0] if ink else colours[1]

    def mark_at(self, r: int, c: int) -> tuple[int, str]:
        """(layer, character) of the top rectangle over cell (r, c): layer 1 for the first painted, 0 for none."""
        found = (0, UPPER_HALF)
        for layer, (top, left, bottom, right, _, mark) in enumerate(self._rects.values(), start=1):
            if top <= r <= bottom and left <= c <= right:
                found = (layer, mark)
        return found

    def render(self) -> Text:
        zoom = self.zoom
        cells = [[f"color({self.colour_at(r, c)})" for c in range(self.shape[1])] for r in range(self.shape[0])]
        colours = [[colour for colour in row for _ in range(zoom)] for row in cells for _ in range(zoom)]
        marks = [[self.mark_at(r, c) for c in range(self.shape[1]) for _ in range(zoom)]
                 for r in range(self.shape[0]) for _ in range(zoom)]
        # A line shows two pixel rows: it takes the mark of the upper layer of the two, so at zoom 1 a one-cell
        # cursor under a footprint's row still shows.
        glyphs = ["".join(max(top, bottom)[1]
                          for top, bottom in zip(marks[y], marks[y + 1] if y + 1 < len(marks) else marks[y]))
                  for y in range(0, len(marks), 2)]
        text = Text("\n").join(paint_half_blocks(colours, glyphs))
        text.no_wrap, text.overflow = True, "crop"
        return text

    def get_content_width(self, container, viewport) -> int:
        return self.shape[1] * self.zoom

    def get_content_height(self, container, viewport, width: int) -> int:
        return (self.shape[0] * self.zoom + 1) // 2
