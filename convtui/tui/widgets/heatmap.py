"""Small images in the terminal with half-block characters: one cell shows two pixels, top and bottom.

`half_block_lines` turns a 2-D array into Rich text lines (the upper half `▀` takes the top pixel as its
foreground colour, the cell background is the bottom pixel). `HeatmapGrid` lays out many such images with
captions: conv filters, feature maps and (through `DigitGrid`) MNIST digits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

Colormap = Callable[[float], Color]

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


def half_block_lines(array: np.ndarray, colormap: Colormap = grey) -> list[Text]:
    """(H, W) values already in the colormap's range -> ceil(H / 2) lines of W cells."""
    a = np.asarray(array, dtype=np.float64)
    if a.shape[0] % 2:
        a = np.vstack([a, np.full((1, a.shape[1]), np.nan)])
    lines = []
    for row in range(0, a.shape[0], 2):
        line = Text()
        for top, bottom in zip(a[row], a[row + 1]):
            bgcolor = None if np.isnan(bottom) else colormap(bottom)
            line.append(UPPER_HALF, Style(color=colormap(top), bgcolor=bgcolor))
        lines.append(line)
    return lines


class HeatmapGrid(Widget):
    """Many small images side by side, wrapping into rows, each with a caption line under it.

    `set_images` replaces the content (call it on the UI thread); the images are normalised one by one.
    """

    DEFAULT_CSS = """
    HeatmapGrid { height: auto; width: 1fr; }
    """

    def __init__(self, *, signed: bool = False, scale: int = 1, gap: int = 1, title: str = "", **kwargs):
        super().__init__(**kwargs)
        self.signed, self.scale, self.gap, self.title = signed, scale, gap, title
        self._images: list[np.ndarray] = []
        self._captions: list[Text] = []

    def set_images(self, images: Sequence[np.ndarray], captions: Sequence[str | Text] | None = None,
                   title: str | None = None) -> None:
        self._images = [np.asarray(image) for image in images]
        captions = captions if captions is not None else [""] * len(self._images)
        self._captions = [c if isinstance(c, Text) else Text(str(c)) for c in captions]
        if title is not None:
            self.title = title
        self.refresh(layout=True)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return normalise(downsample(image, self.scale), self.signed)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._build(width))

    def _build(self, width: int) -> list[Text]:
        lines: list[Text] = [Text(t, style="bold") for t in self.title.split("\n")] if self.title else []
        if not self._images:
            return lines
        tiles = [half_block_lines(self.prepare(image), diverging if self.signed else grey) for image in self._images]
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
        text = Text("\n").join(self._build(self.size.width))
        text.no_wrap, text.overflow = True, "crop"
        return text
