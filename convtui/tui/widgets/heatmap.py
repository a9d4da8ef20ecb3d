"""Small images in the terminal with half-block characters: one cell shows two pixels, top and bottom.

This is the app's one half-block renderer. `paint_half_blocks` turns rows of colours into Rich text lines (the
upper half `▀` takes the top pixel as its foreground colour, the cell background is the bottom pixel);
`half_block_lines` does the same for a 2-D array of values through a colormap. `HeatmapGrid` lays out many such
images with captions: conv filters, feature maps and (through `DigitGrid`) MNIST digits. The receptive-field
maps (`mech_grid.PixelMap`) and the small drawing canvas paint through it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Union

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

Colormap = Callable[[float], Color]
CellColour = Union[Color, str, None]  # a Rich colour: Color.from_rgb(...), "color(45)", or None for none

UPPER_HALF = "▀"


def grey(value: float) -> Color:
    """0 -> black, 1 -> white (ink on paper is inverted later by the caller if wanted)."""
    level = int(round(float(np.clip(value, 0.0, 1.0)) * 255))
    return Color.from_rgb(level, level, level)


def diverging(value: float) -> Color:
    """-1 -> blue, 0 -> black, +1 -> red: the sign of a filter weight or a signed activation."""
    v = float(np.clip(value, -1.0, 1.0))
    if v >= 0:
        return Color.from_rgb(int(255 * v), int(80 * v), int(40 * v))
    return Color.from_rgb(int(40 * -v), int(120 * -v), int(255 * -v))


def normalise(array: np.ndarray, signed: bool) -> np.ndarray:
    """Scale to [0, 1] (or [-1, 1] keeping 0 at 0 when `signed`), so every small image uses its full range."""
    a = np.asarray(array, dtype=np.float64)
    if signed:
        top = np.abs(a).max()
        return a / top if top > 0 else a
    low, high = a.min(), a.max()
    return (a - low) / (high - low) if high > low else np.zeros_like(a)


def downsample(array: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks (the edge padded by repetition), to fit a 28x28 digit in 14x7 cells."""
    if factor <= 1:
        return array
    h, w = array.shape
    ph, pw = -h % factor, -w % factor
    padded = np.pad(array, ((0, ph), (0, pw)), mode="edge")
    return padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).mean(axis=(1, 3))


LEVELS = 32  # colours per image: a 256-colour terminal has 24 greys, so more would not show


@lru_cache(maxsize=8)
def _palette(colormap: Colormap, signed: bool) -> list[Color]:
    """The colormap at LEVELS evenly spaced values over its range, computed once per colormap."""
    low = -1.0 if signed else 0.0
    return [colormap(v) for v in np.linspace(low, 1.0, LEVELS)]


@lru_cache(maxsize=16384)
def _cell_style(top: CellColour, bottom: CellColour) -> Style:
    # Thousands of cells per redraw: a cached Style per pair of colours keeps it to a dict lookup, and equal
    # neighbours get the very same Style object, so runs are found with `is`.
    return Style(color=top, bgcolor=bottom)


def paint_half_blocks(colours: Sequence[Sequence[CellColour]], glyphs: Sequence[str] | None = None) -> list[Text]:
    """H rows of W colours -> ceil(H / 2) lines of W half-block cells (an odd last row has no background).

    `glyphs`, one string of W characters per output line, replaces `▀` where a cell must also read without
    colour (a highlighted region drawn in `░`, say): where its two pixels have one colour it looks the same.
    """
    lines = []
    for line, row in enumerate(range(0, len(colours), 2)):
        upper = colours[row]
        lower = colours[row + 1] if row + 1 < len(colours) else [None] * len(upper)
        chars = glyphs[line] if glyphs is not None else UPPER_HALF * len(upper)
        parts, run, run_style, run_char = [], 0, None, ""
        for top, bottom, char in zip(upper, lower, chars):
            style = _cell_style(top, bottom)
            if style is run_style and char == run_char:
                run += 1
                continue
            if run:
                parts.append((run_char * run, run_style))
            run, run_style, run_char = 1, style, char
        parts.append((run_char * run, run_style))
        lines.append(Text.assemble(*parts))
    return lines


def half_block_lines(array: np.ndarray, colormap: Colormap = grey, signed: bool = False) -> list[Text]:
    """(H, W) values in the colormap's range ([0, 1], or [-1, 1] when `signed`) -> ceil(H / 2) lines of W cells.

    Values are quantised to LEVELS palette colours so styles repeat (cached) and equal neighbours share a span.
    """
    low = -1.0 if signed else 0.0
    a = np.clip(np.asarray(array, dtype=np.float64), low, 1.0)
    index = np.rint((a - low) / (1.0 - low) * (LEVELS - 1)).astype(int)
    palette = _palette(colormap, signed)
    return paint_half_blocks([[palette[i] for i in row] for row in index.tolist()])


class HeatmapGrid(Widget):
    """Many small images side by side, wrapping into rows, each with a caption line under it.

    `set_images` replaces the content (call it on the UI thread); the images are normalised one by one.
    """

    DEFAULT_CSS = """
    HeatmapGrid { height: auto; width: 1fr; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, *, signed: bool = False, scale: int = 1, gap: int = 1, title: str = "", **kwargs):
        super().__init__(**kwargs)
        self.signed, self.scale, self.gap, self.title = signed, scale, gap, title
        self._images: list[np.ndarray] = []
        self._captions: list[Text] = []
        self._built: dict[int, list[Text]] = {}  # width -> lines, so zooming back and forth rebuilds nothing

    def set_images(self, images: Sequence[np.ndarray], captions: Sequence[str | Text] | None = None,
                   title: str | None = None) -> None:
        self._images = [np.asarray(image) for image in images]
        captions = captions if captions is not None else [""] * len(self._images)
        self._captions = [c if isinstance(c, Text) else Text(str(c)) for c in captions]
        if title is not None:
            self.title = title
        self._built = {}
        self.refresh(layout=True)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return normalise(downsample(image, self.scale), self.signed)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.lines(width))

    def lines(self, width: int) -> list[Text]:
        if width not in self._built:
            self._built[width] = self._build(width)
        return self._built[width]

    def _build(self, width: int) -> list[Text]:
        lines: list[Text] = [Text(t, style="bold") for t in self.title.split("\n")] if self.title else []
        if not self._images:
            return lines
        colormap = diverging if self.signed else grey
        tiles = [half_block_lines(self.prepare(image), colormap, self.signed) for image in self._images]
        tile_width = max(len(tile[0]) for tile in tiles)
        tile_width = max(tile_width, max((len(c) for c in self._captions), default=0))
        per_row = max(1, (width + self.gap) // (tile_width + self.gap))
        for start in range(0, len(tiles), per_row):
            group = range(start, min(start + per_row, len(tiles)))
            height = max(len(tiles[i]) for i in group)
            for row in range(height + 1):  # + 1: the caption line
                line = Text()
                for n, i in enumerate(group):
                    if n:
                        line.append(" " * self.gap)
                    cell = tiles[i][row] if row < len(tiles[i]) else (
                        self._captions[i] if row == height else Text())
                    line.append_text(cell)
                    line.append(" " * (tile_width - len(cell)))
                lines.append(line)
        return lines

    def render(self) -> Text:
        text = Text("\n").join(self.lines(self.size.width))
        text.no_wrap, text.overflow = True, "crop"
        return text
