"""The Runs screen's right-hand box: a run's conv1 filters, its sample digits or its weight percentiles, one at a
time (a terminal has no room for all three beside the confusion matrix). `v` cycles them; a replayed moment
updates all three, so switching never shows an older moment than the confusion matrix beside it."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import ContentSwitcher

from convtui.core.training.replay import Replay
from convtui.tui.widgets.bands import BandsView
from convtui.tui.widgets.digits import DigitGrid
from convtui.tui.widgets.heatmap import HeatmapGrid

VIEWS = (("runs-filters-box", "filters"), ("runs-digits-box", "digits"), ("runs-bands", "weights and biases"))


class ReplayViews(ContentSwitcher):
    """Filters (as the Runs screen always showed), and for a run with a replay its digits and weight bands."""

    DEFAULT_CSS = """
    ReplayViews { width: 1fr; }
    ReplayViews > * { border: round $primary-darken-2; }
    """

    def __init__(self, **kwargs):
        super().__init__(initial=VIEWS[0][0], **kwargs)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="runs-filters-box"):
            yield HeatmapGrid(signed=True, id="runs-filters", title="conv1 filters")
        with VerticalScroll(id="runs-digits-box"):
            yield DigitGrid(id="runs-digits")
        yield BandsView(id="runs-bands")

    def on_mount(self) -> None:
        for box, title in VIEWS:
            self.query_one(f"#{box}").border_title = title

    def show_filters(self, filters: np.ndarray | None, model_name: str) -> None:
        """conv1's filters (K, FH, FW), or why there are none."""
        grid = self.query_one("#runs-filters", HeatmapGrid)
        if filters is None:
            grid.set_images([], title=f"{model_name} has no convolution filters (the cnn preset has)")
        else:
            grid.set_images([np.asarray(f, dtype=np.float32) for f in filters], [str(k) for k in range(len(filters))],
                            title="conv1 filters (red +, blue -)")

    def show_moment(self, replay: Replay, index: int, model_name: str) -> None:
        """Every view at snapshot `index` of `replay`."""
        # Which moment is said once, by the screen's replay line: the boxes are too narrow to repeat it.
        self.show_filters(replay.snapshots[index].filters, model_name)
        self.query_one("#runs-digits", DigitGrid).set_predictions(replay.digit_predictions(index), "")
        self.query_one("#runs-bands", BandsView).set_history(replay.band_history(index))

    def cycle(self, has_filters: bool) -> str:
        """Show the next view (skipping filters for a model without any); returns its title."""
        names = [box for box, _ in VIEWS if has_filters or box != "runs-filters-box"]
        following = names[(names.index(self.current) + 1) % len(names)] if self.current in names else names[0]
        self.current = following
        return dict(VIEWS)[following]
