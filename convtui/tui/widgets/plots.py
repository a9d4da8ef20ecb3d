"""Live metric curves on textual-plotext, thinned so a redraw costs the same after 10 or 10,000 steps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from textual_plotext import PlotextPlot

MAX_POINTS = 150  # per series drawn; plotext's cost grows with points, the terminal has ~100 columns anyway


def thin_indices(n: int, keep: int) -> np.ndarray:
    """At most `keep` evenly spaced indices of range(n), always including the first and the last (newest) one.
    The one thinning of a series in the app: the metric plots and the weight bands both use it."""
    if n <= keep:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, keep).round().astype(int))


@dataclass
class Series:
    label: str
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    marker: str = "braille"


class MetricPlot(PlotextPlot):
    """A plot of named series. `add_point` stores data; `replot` (on the UI thread) redraws, thinned."""

    def __init__(self, title: str, xlabel: str = "epoch", ylim: tuple[float, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.title, self.xlabel, self.ylim = title, xlabel, ylim
        self.series: dict[str, Series] = {}

    def clear_series(self) -> None:
        self.series.clear()
        self.replot()

    def add_point(self, key: str, label: str, x: float, y: float, marker: str = "braille") -> None:
        series = self.series.setdefault(key, Series(label, marker=marker))
        series.xs.append(float(x))
        series.ys.append(float(y))

    def set_series(self, key: str, label: str, xs, ys, marker: str = "braille") -> None:
        self.series[key] = Series(label, [float(x) for x in xs], [float(y) for y in ys], marker)

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        shown = []
        for series in self.series.values():
            kept = thin_indices(len(series.xs), MAX_POINTS).tolist()
            xs, ys = [series.xs[i] for i in kept], [series.ys[i] for i in kept]
            finite = [(x, y) for x, y in zip(xs, ys) if y == y and abs(y) != float("inf")]
            if finite:
                plt.plot([x for x, _ in finite], [y for _, y in finite], label=series.label, marker=series.marker)
                shown.extend(y for _, y in finite)
        if self.ylim is not None:
            plt.ylim(*self.ylim)
        elif shown and max(shown) - min(shown) < 1e-9:
            # One value (a run of one epoch): plotext would stretch the axis far past it, e.g. to 128%.
            middle = shown[0]
            plt.ylim(middle - max(abs(middle) * 0.05, 0.01), middle + max(abs(middle) * 0.05, 0.01))
        self.refresh()
