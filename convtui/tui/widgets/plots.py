"""Live metric curves on textual-plotext, thinned so a redraw costs the same after 10 or 10,000 steps."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual_plotext import PlotextPlot

MAX_POINTS = 150  # per series drawn; plotext's cost grows with points, the terminal has ~100 columns anyway


def thin(xs: list[float], ys: list[float], keep: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """Every k-th point so at most `keep` remain, always keeping the newest one."""
    n = len(xs)
    if n <= keep:
        return list(xs), list(ys)
    stride = -(-n // keep)
    idx = list(range(n - 1, -1, -stride))[::-1]
    return [xs[i] for i in idx], [ys[i] for i in idx]


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

    def point_count(self) -> int:
        return sum(len(s.xs) for s in self.series.values())

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        shown = []
        for series in self.series.values():
            xs, ys = thin(series.xs, series.ys)
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
