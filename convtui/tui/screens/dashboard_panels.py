"""The dashboard's seven panels as one container; the screen feeds it events and snapshots (UI thread only)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Container, VerticalScroll

from convtui.core.training import snapshots
from convtui.tui.widgets.bands import BandsView
from convtui.tui.widgets.confusion import ConfusionMatrix
from convtui.tui.widgets.digits import DigitGrid
from convtui.tui.widgets.heatmap import HeatmapGrid
from convtui.tui.widgets.plots import MetricPlot

PANEL_TITLES = {
    1: "1 accuracy", 2: "2 loss", 3: "3 training digits", 4: "4 weights and biases",
    5: "5 test digits", 6: "6 confusion matrix", 7: "7 cnn filters and feature maps",
}
# Shorter names for narrow panels (80 columns beside the form leave about 8 characters for a title): the longest
# that fits is shown, so a title is never cut mid-word ("1 accur…").
TITLE_CHOICES = {
    1: (PANEL_TITLES[1], "1 acc"), 2: (PANEL_TITLES[2],), 3: (PANEL_TITLES[3], "3 training", "3 train"),
    4: (PANEL_TITLES[4], "4 weights", "4 w & b"), 5: (PANEL_TITLES[5], "5 test"),
    6: (PANEL_TITLES[6], "6 confusion", "6 conf"), 7: (PANEL_TITLES[7], "7 filters", "7 maps"),
}
MAPS_PER_LAYER = 7  # feature maps shown per layer: one row of 15-column tiles at 120 columns; conv2 has 64
FEATURE_LAYERS = 4  # conv1, pool1, conv2, pool2


class Panels(Container):
    """Panels 1-6 in a 3x2 grid; `zoom(n)` shows only panel n (7 = filters and feature maps), `zoom(0)` all."""

    DEFAULT_CSS = """
    Panels { layout: grid; grid-size: 3 2; height: 1fr; }
    Panels.zoomed { grid-size: 1 1; }
    Panels .dash-panel { border: round $primary-darken-2; border-title-color: $text; height: 1fr; }
    Panels .dash-panel.hidden { display: none; }
    Panels #panel-7 { display: none; }
    /* A one-column scrollbar leaves the 37 columns the compact confusion matrix needs at 120 wide. */
    Panels #panel-6 { scrollbar-size-vertical: 1; }
    Panels.zoomed #panel-7.shown { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield MetricPlot("accuracy (%)", id="plot-accuracy", classes="dash-panel", bounds=(0.0, 100.0))
        yield MetricPlot("loss (cross-entropy)", id="plot-loss", classes="dash-panel", bounds=(0.0, None))
        with VerticalScroll(id="panel-3", classes="dash-panel"):
            yield DigitGrid(id="train-digits")
        yield BandsView(id="panel-4", classes="dash-panel")
        with VerticalScroll(id="panel-5", classes="dash-panel"):
            yield DigitGrid(id="test-digits")
        with VerticalScroll(id="panel-6", classes="dash-panel"):
            yield ConfusionMatrix(id="confusion", narrow_hint="6 zooms")
        with VerticalScroll(id="panel-7", classes="dash-panel"):
            yield HeatmapGrid(signed=True, id="filters", title="conv1 filters (red +, blue -)")
            for i in range(FEATURE_LAYERS):
                yield HeatmapGrid(signed=False, id=f"maps-{i}")

    def on_mount(self) -> None:
        self.fit_titles()
        self.query_one("#plot-accuracy", MetricPlot).replot()
        self.query_one("#plot-loss", MetricPlot).replot()

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_titles)  # after the layout, when the panels know their new widths

    def fit_titles(self) -> None:
        """Each panel's longest title that fits its border (the corners and padding take six columns)."""
        for number, widget in enumerate(self.panel_widgets(), start=1):
            room = widget.outer_size.width - 6
            choices = TITLE_CHOICES[number]
            widget.border_title = next((title for title in choices if len(title) <= room), choices[-1])

    def panel_widgets(self):
        return [self.query_one(f"#{name}") for name in
                ("plot-accuracy", "plot-loss", "panel-3", "panel-4", "panel-5", "panel-6", "panel-7")]

    def zoom(self, number: int) -> None:
        self.set_class(number != 0, "zoomed")
        for i, widget in enumerate(self.panel_widgets(), start=1):
            widget.set_class(number != 0 and i != number, "hidden")
            widget.set_class(i == number, "shown")
        if number == 4:
            self.query_one(BandsView).refresh()
        self.call_after_refresh(self.fit_titles)  # a zoomed panel has room for its full title

    def clear(self) -> None:
        for plot in self.query(MetricPlot):
            plot.clear_series()

    # ---------------------------------------------------------------- data in
    def add_train_points(self, points: list[tuple[float, float, float]]) -> None:
        accuracy, loss = self.query_one("#plot-accuracy", MetricPlot), self.query_one("#plot-loss", MetricPlot)
        for x, batch_loss, batch_accuracy in points:
            accuracy.add_point("train", "train", x, batch_accuracy * 100)
            loss.add_point("train", "train", x, batch_loss)

    def add_test_point(self, x: float, loss_value: float, accuracy_value: float, key: str, label: str) -> None:
        # Three shapes for three series (train is braille), so they stay apart on a monochrome terminal too.
        marker = "dot" if key == "test" else "o"
        self.query_one("#plot-accuracy", MetricPlot).add_point(key, label, x, accuracy_value * 100, marker)
        self.query_one("#plot-loss", MetricPlot).add_point(key, label, x, loss_value, marker)

    def replot(self) -> None:
        for plot in self.query(MetricPlot):
            if plot.display:
                plot.replot()

    def show_snapshot(self, snapshot: snapshots.Snapshot, bands: snapshots.BandHistory, where: str = "") -> None:
        """`where` ("epoch 2 step 297") says when it was taken, so the digits never pass for newer than they are."""
        at = f" at {where}" if where else ""
        self.query_one("#train-digits", DigitGrid).set_predictions(snapshot.train, at.strip())
        self.query_one("#test-digits", DigitGrid).set_predictions(snapshot.test, at.strip())
        self.query_one(ConfusionMatrix).set_matrix(snapshot.confusion, snapshot.class_accuracy)
        self.query_one(BandsView).set_history(bands)
        filters = self.query_one("#filters", HeatmapGrid)
        grids = [self.query_one(f"#maps-{i}", HeatmapGrid) for i in range(FEATURE_LAYERS)]
        if snapshot.filters is None:
            filters.set_images([], title="filters and feature maps exist for the cnn preset only")
            for grid in grids:
                grid.set_images([], title="")
            return
        filters.set_images(list(snapshot.filters), [str(k) for k in range(len(snapshot.filters))],
                           title="conv1 filters (red +, blue -)")
        for i, grid in enumerate(grids):
            if i >= len(snapshot.feature_maps):
                grid.set_images([], title="")
                continue
            name, activation = snapshot.feature_maps[i]
            shown = activation[:MAPS_PER_LAYER]
            # Keep every tile at most 14 cells wide: a 28x28 map is averaged over 2x2 blocks.
            grid.scale = max(1, activation.shape[-1] // 14)
            title = f"{name} {activation.shape[0]}x{activation.shape[1]}x{activation.shape[2]}"
            if i == 0:
                title = (f"test digit {snapshot.feature_label} through the layers ([ and ] choose the digit)\n"
                         + title)
            grid.set_images(list(shown), [f"{name}.{c}" for c in range(len(shown))], title=title)
