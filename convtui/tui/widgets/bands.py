"""Weight and bias distributions over time: per parameter, percentile bands drawn with shade characters.

For each time sample (a column) the 5-95th percentile range is shaded light, the 25-75th dark, and the median
is a bar, so a learner sees the weights spread out as the network learns. Each parameter has its own y range.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widget import Widget

from convtui.core.training.snapshots import BandHistory
from convtui.tui.widgets.plots import thin_indices

COLOURS = ("cyan", "magenta", "yellow", "green", "blue", "red")
OUTER, INNER, MEDIAN = "░", "▓", "█"


def stretch_indices(n: int, width: int) -> np.ndarray:
    """`width` indices into range(n) from oldest to newest: thinned when n > width, repeated when n < width."""
    if n >= width:
        return thin_indices(n, width)
    return np.floor(np.linspace(0, n - 1e-9, width)).astype(int)


def band_chart(series: np.ndarray, width: int, height: int, colour: str) -> list[Text]:
    """series (time, 5 percentiles) -> `height` lines of `width` cells spanning the whole run, newest right."""
    series = series[stretch_indices(len(series), width)]
    low, high = float(series[:, 0].min()), float(series[:, -1].max())
    if high - low < 1e-12:
        low, high = low - 1e-6, high + 1e-6
    # Row r covers [edges[r + 1], edges[r]]: the top row holds the largest values.
    edges = np.linspace(high, low, height + 1)
    lines = []
    for r in range(height):
        top, bottom = edges[r], edges[r + 1]
        line = Text(style=colour)
        for p5, p25, p50, p75, p95 in series:
            if bottom <= p50 <= top:
                char = MEDIAN
            elif p25 <= top and p75 >= bottom:
                char = INNER
            elif p5 <= top and p95 >= bottom:
                char = OUTER
            else:
                char = " "
            line.append(char)
        lines.append(line)
    return lines


class BandsView(Widget):
    """Percentile bands of every parameter over time; fills its height, one small chart per parameter."""

    DEFAULT_CSS = """
    BandsView { height: 1fr; width: 1fr; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.history: BandHistory | None = None

    def set_history(self, history: BandHistory) -> None:
        self.history = history
        self.refresh()

    def render(self) -> Text:
        history = self.history
        if history is None or not history.steps:
            return Text("weights and biases appear after the first snapshot", style="italic")
        names = list(history.series)
        width, height = max(self.size.width, 10), max(self.size.height - 1, 2)
        # One title line per chart plus at least 2 chart rows; show as many parameters as fit.
        chart_height = max(2, height // len(names) - 1)
        fit = max(1, height // (chart_height + 1))
        lines: list[Text] = [Text(f"{OUTER} 5-95%  {INNER} 25-75%  {MEDIAN} median, over time", style="italic")]
        for i, name in enumerate(names[:fit]):
            series = history.array(name)
            p5, p50, p95 = series[-1, 0], series[-1, 2], series[-1, -1]
            lines.append(Text(f"{name} {p50:+.3f} [{p5:+.3f}, {p95:+.3f}]", style="bold"))
            lines.extend(band_chart(series, width, chart_height, COLOURS[i % len(COLOURS)]))
        if fit < len(names):
            lines[-1] = Text(f"... {len(names) - fit} more parameters: press 4 to zoom", style="italic")
        text = Text("\n").join(lines[:height + 1])
        text.no_wrap, text.overflow = True, "crop"
        return text
