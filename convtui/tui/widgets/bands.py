"""Weight and bias distributions over training, drawn like the tensorflow-without-a-phd dashboard.

Two charts, weights then biases. In each, every layer has its 5-95th percentile range as a light band, its
25-75th as a darker band and its median as a line, plotted against the training step (x) with value labels on
the y axis, so a learner sees the distributions spread and settle.

The y range is fitted per chart to the data (raw values, not values divided by each layer's initial spread):
the axis numbers stay the real weights the lecture talks about, and biases start at exactly 0, so they have no
initial spread to divide by. Fitting the range to the run's own 5-95% envelope already turns the small drift
of He-initialised layers into several rows when the panel is zoomed.

Every layer has its own colour and its own three characters (light band, dark band, line), so the charts read
with NO_COLOR=1 too; the legend is a line of its own above the charts, never drawn over the curves.
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.widget import Widget

from convtui.core.training.snapshots import BandHistory

COLOURS = ("cyan", "magenta", "yellow", "green", "blue", "red")
# Per layer: (5-95% band, 25-75% band, median). Lighter to darker within a layer; different across layers.
GLYPHS = (("░", "▓", "━"), ("·", "▒", "●"), (":", "▚", "◆"), ("'", "▞", "■"), ("˙", "#", "▲"), (",", "%", "★"))
KINDS = (("weights", ".w"), ("biases", ".b"))
MIN_PLOT_ROWS = 2


def layer_series(history: BandHistory, suffix: str) -> list[tuple[str, np.ndarray]]:
    """[(layer name, (time, 5 percentiles))] for the parameters named `<layer><suffix>`, in layer order."""
    return [(name[: -len(suffix)], history.array(name)) for name in history.series if name.endswith(suffix)]


def layer_names(history: BandHistory) -> list[str]:
    """Every layer with a weight or bias, in order: its position gives its colour and characters in both charts."""
    names: list[str] = []
    for name in history.series:
        layer = name.rsplit(".", 1)[0]
        if layer not in names:
            names.append(layer)
    return names


def column_snapshots(steps: list[int], width: int) -> np.ndarray:
    """For each of `width` columns spanning steps[0]..steps[-1] linearly, the newest snapshot taken by then."""
    s = np.asarray(steps, dtype=np.float64)
    at = np.linspace(s[0], s[-1], width) if width > 1 else s[-1:]
    return np.clip(np.searchsorted(s, at + 1e-9, side="right") - 1, 0, len(s) - 1)


def fitted_range(series: list[np.ndarray]) -> tuple[float, float]:
    """The 5-95% envelope of every layer over the run, with a little room so no band sits on the frame."""
    low = min(float(a[:, 0].min()) for a in series)
    high = max(float(a[:, -1].max()) for a in series)
    pad = max((high - low) * 0.04, 0.01 if high - low < 1e-9 else 0.0)  # all zero (biases at the start)
    return low - pad, high + pad


def value_label(value: float, span: float) -> str:
    """Enough decimals to tell the labelled rows (about half the range apart) apart: a 0.5 wide range gets two,
    a 0.02 wide one three, and the gutter stays narrow."""
    decimals = min(5, max(2, 1 - math.floor(math.log10(max(span, 1e-9)))))
    if round(value, decimals) == 0:
        value = 0.0  # "+0.00", never "-0.00"
    return f"{value:+.{decimals}f}"


def plot_cells(series: list[tuple[int, np.ndarray]], steps: list[int], width: int, height: int,
               low: float, high: float) -> list[list[tuple[str, int] | None]]:
    """The plot area as rows of (character, layer index) or None for an empty cell; the top row is `high`.

    In each column the bands are painted widest first, so a layer with a narrow spread stays visible on top of
    one with a wide spread, and every median line is painted last, so none hides under another layer's band.
    """
    edges = np.linspace(high, low, height + 1)  # row r covers [edges[r + 1], edges[r]]
    cells: list[list[tuple[str, int] | None]] = [[None] * width for _ in range(height)]

    def paint(c: int, layer: int, char: str, bottom_value: float, top_value: float) -> None:
        for r in range(height):
            if bottom_value <= edges[r] and top_value >= edges[r + 1]:
                cells[r][c] = (char, layer)

    for c, k in enumerate(column_snapshots(steps, width)):
        bands = []
        for layer, array in series:
            outer, inner, _ = GLYPHS[layer % len(GLYPHS)]
            p5, p25, _, p75, p95 = array[k]
            bands += [(p95 - p5, layer, outer, p5, p95), (p75 - p25, layer, inner, p25, p75)]
        for _, layer, char, bottom_value, top_value in sorted(bands, key=lambda b: -b[0]):
            paint(c, layer, char, bottom_value, top_value)
        for layer, array in series:
            median = array[k][2]
            row = min(int(np.searchsorted(-edges, -median, side="left")) - 1, height - 1)
            cells[max(row, 0)][c] = (GLYPHS[layer % len(GLYPHS)][2], layer)
    return cells


def axis_labels(series: list[tuple[int, np.ndarray]], height: int) -> dict[int, str]:
    """Row -> value label: the top and bottom rows, and the middle one when there is room."""
    low, high = fitted_range([a for _, a in series])
    span = high - low
    labels = {0: value_label(high, span), height - 1: value_label(low, span)}
    if height >= 5:
        middle = (height - 1) // 2
        labels[middle] = value_label(high - span * (middle + 0.5) / height, span)  # the row's centre
    return labels


def chart_lines(title: str, series: list[tuple[int, np.ndarray]], steps: list[int], width: int,
                height: int, gutter: int) -> list[Text]:
    """A title line, then `height` rows: a y-axis gutter `gutter` wide with values, then the plot area."""
    low, high = fitted_range([a for _, a in series])
    labels = axis_labels(series, height)
    cells = plot_cells(series, steps, max(width - gutter - 1, 1), height, low, high)
    lines = [Text(title, style="bold")]
    for r, row in enumerate(cells):
        line = Text(labels.get(r, "").rjust(gutter) + ("┤" if r in labels else "│"), style="dim")
        for cell in row:
            if cell is None:
                line.append(" ")
            else:
                char, layer = cell
                bold = char == GLYPHS[layer % len(GLYPHS)][2]
                line.append(char, style=("bold " if bold else "") + COLOURS[layer % len(COLOURS)])
        lines.append(line)
    return lines


def step_axis(steps: list[int], width: int, gutter: int) -> Text:
    """The x axis under the plot: first step at the left, last at the right."""
    first, last = f"{steps[0]:,}", f"step {steps[-1]:,}"
    room = width - gutter - 1
    line = first + " " * max(room - len(first) - len(last), 1) + last
    return Text(" " * (gutter + 1) + line, style="dim")


def legend_lines(names: list[str], width: int, explain: bool = True) -> list[Text]:
    """Each layer's three characters and name in its colour, then (`explain`) what the bands mean; wrapped
    between entries, never within one."""
    entries = []
    for i, name in enumerate(names):
        glyphs = "".join(GLYPHS[i % len(GLYPHS)])
        entries.append(Text(f"{glyphs} {name}", style=COLOURS[i % len(COLOURS)]))
    if explain:
        entries += [Text(what, style="italic dim") for what in ("light 5-95%", "dark 25-75%", "line median")]
    lines, line = [], Text()
    for entry in entries:
        if line.cell_len and line.cell_len + 2 + entry.cell_len > width:
            lines.append(line)
            line = Text()
        if line.cell_len:
            line.append("  ")
        line.append_text(entry)
    lines.append(line)
    return lines


class BandsView(Widget):
    """Percentile bands of every layer's weights and biases over training steps; fills its size."""

    DEFAULT_CSS = """
    BandsView { height: 1fr; width: 1fr; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.history: BandHistory | None = None

    def set_history(self, history: BandHistory) -> None:
        self.history = history
        self.refresh()

    def chart_layout(self, width: int, height: int) -> list[Text]:
        """The whole panel's lines for a content area of width x height."""
        history = self.history
        if history is None or not history.steps:
            return [Text("weights and biases appear after the first snapshot", style="italic")]
        names = layer_names(history)
        charts = [(title, [(names.index(layer), array) for layer, array in layer_series(history, suffix)])
                  for title, suffix in KINDS]
        charts = [(title, series) for title, series in charts if series]
        # A short panel (80x24) keeps its rows for the curves: the zoomed panel explains the bands.
        lines = legend_lines(names, width, explain=height >= 14)
        axis = height - len(lines) - len(charts) * (1 + MIN_PLOT_ROWS) >= 3  # room for the step axis
        rows = max(MIN_PLOT_ROWS, (height - len(lines) - int(axis)) // len(charts) - 1)
        # One gutter width for both charts, so a column is the same step in each.
        gutter = max(len(label) for _, series in charts for label in axis_labels(series, rows).values())
        for title, series in charts:
            lines.extend(chart_lines(title, series, history.steps, width, rows, gutter))
        if axis:
            lines.append(step_axis(history.steps, width, gutter))
        return lines

    def render(self) -> Text:
        lines = self.chart_layout(max(self.size.width, 10), max(self.size.height, 4))
        text = Text("\n").join(lines[: max(self.size.height, 1)])
        text.no_wrap, text.overflow = True, "crop"
        return text
