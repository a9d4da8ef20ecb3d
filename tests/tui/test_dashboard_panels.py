"""The dashboard's and Runs' reading aids, checked on values: the accuracy axis zooms to where the data is with
the legend off the curves, the confusion matrix keeps all ten columns, a stopped run says how far it got, and
the training form keeps what the learner typed."""

import math

import numpy as np
import pytest
from textual.app import App

from convtui.core.storage.run_folder import Run
from convtui.core.training import events as ev
from convtui.tui.screens.dashboard import done_status
from convtui.tui.screens.dashboard_form import TrainForm, parse_duration, FORM_FIELDS
from convtui.tui.widgets.confusion import ConfusionMatrix, matrix_width
from convtui.tui.widgets.plots import MetricPlot, zoomed_range


def test_accuracy_axis_zooms_to_the_newest_three_quarters_of_the_run():
    # A climb from 10% in the first quarter epoch, then 90-99%: x >= 0.25 holds 90 to 98.7, a span of 8.7, so
    # the axis moves in steps of 2 from 90 to 100 (not 10 to 100). Without the climb, x >= 0.625 holds 97 and
    # 98.7: steps of 0.5, 97 to 99.
    points = [(0.0, 10.0), (0.1, 60.0), (0.25, 90.0), (0.5, 95.2), (0.75, 97.0), (1.0, 98.7)]
    assert zoomed_range(points, (0.0, 100.0)) == (90.0, 100.0)
    assert zoomed_range(points[3:], (0.0, 100.0)) == (97.0, 99.0)
    # Never past what the metric can take, and one value is a band around it, not a point.
    assert zoomed_range([(1.0, 99.9)], (0.0, 100.0)) == (99.8, 100.0)
    assert zoomed_range([(1.0, 0.5)], (0.0, None)) == (0.49, 0.51)  # one value: a round band around it
    assert zoomed_range([], (0.0, 100.0)) is None


class PlotApp(App):
    def compose(self):
        yield MetricPlot("accuracy (%)", bounds=(0.0, 100.0), id="plot")


async def test_the_legend_is_on_the_border_with_each_series_marker():
    app = PlotApp()
    async with app.run_test(size=(60, 20)) as pilot:
        plot = app.query_one(MetricPlot)
        plot.add_point("train", "train", 0.5, 96.0)
        plot.add_point("test", "sample", 0.5, 97.0, "dot")
        plot.add_point("val", "test", 1.0, 98.0, "o")
        plot.replot()
        await pilot.pause()
        legend = plot.legend_markup().replace("\u00a0", " ")  # no-break spaces within an entry
        assert legend == "[cyan]⣿ train[/]  [magenta]• sample[/]  [green]o test[/]"
        assert plot.border_subtitle.replace("\u00a0", " ") == \
            "[cyan]⣿ train[/cyan]  [magenta]• sample[/magenta]  [green]o test[/green]"
        assert plot.shown_range == (97.8, 98.2)  # x from 0.5 to 1: only the newest 3/4 (x >= 0.625) counts
        drawn = "\n".join(str(line) for line in plot.render_lines(plot.region.reset_offset))
        assert "sample" not in drawn  # plotext's own legend (inside the plot) is not drawn


class MatrixApp(App):
    def __init__(self, width):
        super().__init__()
        self.width = width

    def compose(self):
        yield ConfusionMatrix(id="m", narrow_hint="6 zooms")

    def on_mount(self):
        self.query_one(ConfusionMatrix).styles.width = self.width


@pytest.mark.parametrize("width", [58, 37])
async def test_all_ten_columns_fit_a_full_test_set_matrix(width):
    confusion = np.diag([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    confusion[4, 9], confusion[9, 4] = 12, 7
    assert matrix_width(confusion, compact=False) == 57 and matrix_width(confusion, compact=True) == 37
    app = MatrixApp(width)
    async with app.run_test(size=(80, 24)) as pilot:
        matrix = app.query_one(ConfusionMatrix)
        matrix.set_matrix(confusion, np.diag(confusion) / confusion.sum(axis=1))
        await pilot.pause()
        lines = [str(line) for line in matrix.lines(matrix.size.width)]
        assert lines[1].split()[-3:] == ["7", "8", "9"]  # the header reaches column 9
        row4 = lines[6].rstrip()
        assert row4.startswith("4  98%│") and row4.endswith("12") and len(row4) <= width  # 982/994 = 98.8%, truncated
        assert ("982" in row4) == (width >= 57)  # the compact layout shows the diagonal as ✓


def run_of(epochs, steps, val, config=None):
    return Run(path=None, name="r", config=config or {"model": "cnn", "batch_size": 100},
               metrics={"epoch": epochs, "steps": steps, "val_accuracy": val})


def test_a_cut_short_epoch_is_counted_and_plotted_at_its_fraction():
    stopped = run_of([1.0, 2.0], [600.0, 297.0], [0.98, math.nan])
    assert stopped.steps_per_epoch == 600
    assert stopped.epoch_positions() == [1.0, 1.0 + 297 / 600]
    assert stopped.trained() == "1 epoch + 297 steps"
    assert stopped.summary() == "r | cnn | 1 epoch + 297 steps | test 98.00% | no checkpoint"
    whole = run_of([1.0, 2.0], [600.0, 600.0], [0.98, 0.99])
    assert whole.epoch_positions() == [1.0, 2.0] and whole.trained() == "2 epochs"
    # Only one, cut-short, row: steps per epoch from the config (5,000 images / 50 = 100 steps).
    first = run_of([1.0], [40.0], [math.nan], {"model": "mlp", "batch_size": 50, "limit": 5000})
    assert first.epoch_positions() == [0.4] and first.trained() == "40 steps of epoch 1"


def test_a_stopped_run_status_says_stopped_with_no_eta():
    step = ev.Step(1, 297, 897, 6000, 0.1, 0.9, 0.05, 0.985, 0.0006, 700.0, 1485.0, 80.0)
    text = done_status(ev.Done("stopped", "stopped in epoch 2 after step 297", 1, None), step, 10)
    assert text == "stopped | epoch 2/10 step 297 | loss 0.050 | acc 98.5% | lr 0.0006"


class FormApp(App):
    def compose(self):
        yield TrainForm(id="form")


async def test_changing_the_preset_keeps_typed_values_and_fills_the_rest():
    app = FormApp()
    async with app.run_test(size=(60, 40)) as pilot:
        form = app.query_one(TrainForm)
        form.query_one("#form-epochs").value = "3"
        form.query_one("#form-model").value = "mlp"
        await pilot.pause()
        config = form.config()
        assert config.epochs == 3  # typed: kept
        assert (config.lr, config.dropout) == (0.01, 0.2)  # untouched: the mlp preset's
        form.query_one("#form-model").value = "softmax"
        await pilot.pause()
        assert form.config().lr == 0.1 and form.config().epochs == 3


def test_the_time_budget_is_a_form_field_read_as_a_duration():
    assert "time_budget" in FORM_FIELDS
    assert parse_duration("5 min") == 300 and parse_duration("90 s") == 90 and parse_duration("120") == 120
    with pytest.raises(ValueError, match="budget must be a duration"):
        parse_duration("soon")


# ------------------------------------------------------------------------------------ panel 4: weight bands
def trained_history():
    """A real mlp nudged between snapshots, with the weights kept per step to recompute the percentiles from."""
    from convtui.core.nn.architectures import build_model
    from convtui.core.training import snapshots

    model, history, kept = build_model("mlp", 0), snapshots.BandHistory(), {}
    rng = np.random.default_rng(1)
    for step in (0, 30, 60, 100):
        history.add(step, snapshots.weight_bands(model))
        kept[step] = {p.name: p.value.copy() for p in model.params()}
        for p in model.params():
            p.value += rng.normal(0, 0.02, p.value.shape).astype(p.value.dtype)
    return history, kept


def test_band_data_are_numpys_percentiles_of_each_layer_at_each_snapshot():
    from convtui.tui.widgets.bands import layer_series

    history, kept = trained_history()
    assert history.steps == [0, 30, 60, 100]
    weights, biases = layer_series(history, ".w"), layer_series(history, ".b")
    assert [name for name, _ in weights] == ["dense1", "output"] == [name for name, _ in biases]
    for suffix, series in ((".w", weights), (".b", biases)):
        for name, array in series:
            assert array.shape == (4, 5)
            for i, step in enumerate(history.steps):
                expected = np.percentile(kept[step][name + suffix], [5, 25, 50, 75, 95])
                np.testing.assert_allclose(array[i], expected, rtol=1e-6)
    assert np.all(biases[0][1][0] == 0.0)  # biases start at exactly zero, then spread


def test_the_median_row_lies_between_the_band_rows():
    from convtui.tui.widgets.bands import GLYPHS, chart_lines

    # One layer, constant over time: 5-95% from -1 to 1, 25-75% from -0.4 to 0.4, median 0.1.
    array = np.tile([-1.0, -0.4, 0.1, 0.4, 1.0], (3, 1))
    lines = chart_lines("weights", [(0, array)], [0, 50, 100], 30, 11, 5)
    assert lines[0].plain == "weights"
    column = [line.plain[6] for line in lines[1:]]  # the first plotted column, after "+1.08┤"
    outer, inner, median = GLYPHS[0]
    assert column.count(median) == 1
    m = column.index(median)
    above, below = column[:m], column[m + 1:]
    assert inner in above and inner in below and outer in above and outer in below
    # Light outside dark outside the line, on both sides: the outer band is further from the median.
    assert max(i for i, c in enumerate(above) if c == outer) < min(i for i, c in enumerate(above) if c == inner)
    assert lines[1].plain.startswith("+1.08┤") and lines[-1].plain.startswith("-1.08┤")  # fitted y range


def test_the_legend_sits_above_the_plots_and_names_every_layer():
    from convtui.tui.widgets.bands import GLYPHS, BandsView

    history, _ = trained_history()
    view = BandsView()
    view.history = history
    for width, height in ((118, 37), (38, 18), (24, 8)):
        lines = [line.plain for line in view.chart_layout(width, height)]
        assert len(lines) <= height and all(len(line) <= width for line in lines)
        weights_at = lines.index("weights")
        legend = " ".join(lines[:weights_at])
        assert f"{''.join(GLYPHS[0])} dense1" in legend and f"{''.join(GLYPHS[1])} output" in legend
        # Every line from the chart title on is a title, an axis row (gutter then plot) or the step axis:
        # no legend text inside the plotted area.
        biases_at = lines.index("biases")
        for line in lines[weights_at + 1:biases_at] + lines[biases_at + 1:]:
            assert ("┤" in line or "│" in line or "step" in line) and "dense1" not in line
        if height >= 14:
            assert "light 5-95%" in legend and lines[-1].rstrip().endswith("step 100")
