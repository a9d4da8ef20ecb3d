"""Live metric curves on textual-plotext, thinned so a redraw costs the same after 10 or 10,000 steps.

Two choices make the curves read like the tensorflow-without-a-phd dashboard's: the y axis zooms to where the
data is (the early climb from 10% may leave the bottom of the axis; the 95-99% band where the progress happens
fills the panel), and the legend sits on the panel's border, never on top of a curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from textual_plotext import PlotextPlot

MAX_POINTS = 150  # per series drawn; plotext's cost grows with points, the terminal has ~100 columns anyway
COLOURS = ("cyan", "magenta", "green", "yellow", "red", "blue")  # names both plotext and Rich know
# What each plotext marker looks like in the legend: the shape tells the series apart without colour too.
MARKER_GLYPHS = {"braille": "⣿", "dot": "•", "o": "o", "hd": "▞", "sd": "█"}
ZOOM_TAIL = 0.75  # the y axis spans the newest 3/4 of the x range: the start's steep climb may leave the bottom
NICE_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)


def thin_indices(n: int, keep: int) -> np.ndarray:
    """At most `keep` evenly spaced indices of range(n), always including the first and the last (newest) one.
    The one thinning of a series in the app: the metric plots and the weight bands both use it."""
    if n <= keep:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, keep).round().astype(int))


def nice_step(span: float) -> float:
    """The smallest round step of which about five cover `span` (so axis ends move in round numbers)."""
    return next((step for step in NICE_STEPS if step * 5 >= span), NICE_STEPS[-1])


def zoomed_range(points: list[tuple[float, float]], bounds: tuple[float | None, float | None] = (None, None),
                 tail: float = ZOOM_TAIL) -> tuple[float, float] | None:
    """The y range to show: the values of the newest `tail` of the x range, widened to round numbers and kept
    inside `bounds` (an accuracy never goes past 100%). None when there is nothing to show."""
    if not points:
        return None
    x_low, x_high = min(x for x, _ in points), max(x for x, _ in points)
    cut = x_high - tail * (x_high - x_low)
    ys = [y for x, y in points if x >= cut]
    low, high = min(ys), max(ys)
    step = nice_step(max(high - low, abs(high) * 0.01, 1e-3))
    # Rounded, so 0.2 steps give 99.8, not 99.80000000000001 (and the comparison below is not fooled).
    low, high = round(math.floor(low / step) * step, 6), round(math.ceil(high / step) * step, 6)
    if high - low < step - 1e-9:  # one value (a run of one epoch): a band around it, not plotext's far stretch
        low, high = low - step, high + step
    floor, ceiling = bounds
    if floor is not None:
        low = max(low, floor)
    if ceiling is not None:
        high = min(high, ceiling)
    return low, high


@dataclass
class Series:
    label: str
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    marker: str = "braille"


class MetricPlot(PlotextPlot):
    """A plot of named series. `add_point` stores data; `replot` (on the UI thread) redraws, thinned.

    `bounds` are the values the metric can take (0-100 for a percentage); `zoom` fits the y axis to the newest
    part of the data instead of all of it. The legend (coloured, with each series' marker) is the widget's
    border subtitle, so a border must be styled on it to show it; a screen with a long legend (Runs) shows
    `legend_markup()` where it has room instead.
    """

    def __init__(self, title: str, xlabel: str = "epoch", ylim: tuple[float, float] | None = None,
                 bounds: tuple[float | None, float | None] = (None, None), zoom: bool = True,
                 legend_on_border: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.title, self.xlabel, self.ylim, self.bounds, self.zoom = title, xlabel, ylim, bounds, zoom
        self.legend_on_border = legend_on_border  # False: the screen shows `legend_markup()` elsewhere
        self.series: dict[str, Series] = {}
        self.shown_range: tuple[float, float] | None = None  # the y range of the last replot

    def clear_series(self) -> None:
        self.series.clear()
        self.replot()

    def add_point(self, key: str, label: str, x: float, y: float, marker: str = "braille") -> None:
        series = self.series.setdefault(key, Series(label, marker=marker))
        series.xs.append(float(x))
        series.ys.append(float(y))

    def set_series(self, key: str, label: str, xs, ys, marker: str = "braille") -> None:
        self.series[key] = Series(label, [float(x) for x in xs], [float(y) for y in ys], marker)

    def legend_markup(self) -> str:
        """The legend as Rich markup: each series' marker glyph and label in its colour."""
        entries = []
        for i, series in enumerate(self.series.values()):
            colour = COLOURS[i % len(COLOURS)]
            label = series.label.replace("[", r"\[")  # run names are text, not markup
            # No-break spaces inside an entry: a wrapped legend breaks between entries, never within one.
            entry = f"{MARKER_GLYPHS.get(series.marker, '*')} {label}".replace(" ", "\u00a0")
            entries.append(f"[{colour}]{entry}[/]")
        return "  ".join(entries)

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        shown: list[tuple[float, float]] = []
        for i, series in enumerate(self.series.values()):
            kept = thin_indices(len(series.xs), MAX_POINTS).tolist()
            finite = [(series.xs[k], series.ys[k]) for k in kept if math.isfinite(series.ys[k])]
            if finite:
                # No `label`: plotext would draw its legend inside the plot, over the curves.
                plt.plot([x for x, _ in finite], [y for _, y in finite], marker=series.marker,
                         color=COLOURS[i % len(COLOURS)])
                shown.extend(finite)
        if self.ylim is not None:
            self.shown_range = self.ylim
        else:
            self.shown_range = zoomed_range(shown, self.bounds, ZOOM_TAIL if self.zoom else 1.0)
        if self.shown_range is not None:
            plt.ylim(*self.shown_range)
        if self.legend_on_border:
            self.border_subtitle = self.legend_markup()
        self.refresh()
