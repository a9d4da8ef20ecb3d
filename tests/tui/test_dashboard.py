"""The dashboard trains for real (our Numba kernels, real MNIST, a small subset) and shows it live."""

import time

import numpy as np
import pytest
from textual.app import App

from convtui.core.storage.checkpoint import load_model
from convtui.core.training.config import TrainConfig
from convtui.core.nn.architectures import build_model
from convtui.tui import train_worker
from convtui.tui.run_state import RunState
from convtui.tui.screens.dashboard import DashboardScreen
from convtui.tui.screens.dashboard_panels import Panels
from convtui.tui.widgets.plots import MetricPlot


class DashboardApp(App):
    def __init__(self, screen):
        super().__init__()
        self.dashboard = screen

    def on_mount(self):
        self.push_screen(self.dashboard)


async def wait_until(pilot, condition, timeout=120.0):
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out waiting for the dashboard"
        await pilot.pause(0.05)


def plot(screen, name) -> MetricPlot:
    return screen.query_one(f"#plot-{name}", MetricPlot)


async def test_short_softmax_run_fills_the_plots_and_panels(tmp_path):
    config = TrainConfig.for_model("softmax", limit=600, epochs=2, batch_size=20, lr=0.1)
    screen = DashboardScreen(runs_root=tmp_path, initial=config)
    async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen.set_focus(None)
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.state in ("done", "failed"))
        assert screen.state == "done" and screen.last_done.reason == "completed"
        assert any(line.startswith(("compiling kernels", "loading kernels")) for line in screen.log_lines)
        assert any(line.startswith("epoch 2 done") for line in screen.log_lines)
        assert "epoch 2: measuring loss and accuracy on 10,000 test images ..." in screen.log_lines
        train_accuracy = plot(screen, "accuracy").series["train"].ys
        train_loss = plot(screen, "loss").series["train"].ys
        assert len(train_accuracy) == 60  # 2 epochs x 30 steps, one smoothed point each
        assert train_loss[-1] < train_loss[0] and train_accuracy[-1] > train_accuracy[0]
        assert len(plot(screen, "accuracy").series["val"].xs) == 2  # the full test set after each epoch
        assert screen.snapshots_shown >= 3  # at the start and after each epoch
        test_sample = plot(screen, "accuracy").series["test"].ys
        assert test_sample[-1] > test_sample[0] + 20  # a softmax at lr 0.1 learns within 2 epochs
        status = str(screen.query_one("#status").render())
        assert "epoch 2/2 step 30" in status and "lr 0.1" in status
        # Panels 3-6 hold the latest snapshot: digits with captions, the confusion matrix, weight bands.
        matrix = screen.query_one("#confusion")
        confusion = matrix.lines(matrix.size.width)
        assert "right on" in str(confusion[-1])
        assert screen.query_one("#test-digits")._images and screen.query_one("#panel-4").history.steps
        run = next(tmp_path.iterdir())
        assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.csv", "checkpoint.npz"}
        assert train_worker.latest_model.model is not None


async def test_pause_holds_training_and_stop_keeps_a_checkpoint(tmp_path):
    config = TrainConfig.for_model("mlp", limit=20000, epochs=3, batch_size=10)  # 6,000 steps: stopped early
    screen = DashboardScreen(runs_root=tmp_path, initial=config)
    async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen.set_focus(None)
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.last_step is not None and screen.last_step.global_step > 5)
        await pilot.press("space")
        assert screen.state == "paused" and "paused" in str(screen.query_one("#status").render())
        await pilot.pause(0.3)  # let the step in flight finish
        weights = screen.session.trainer.model.params()[0].value.copy()
        await pilot.pause(0.5)
        np.testing.assert_array_equal(screen.session.trainer.model.params()[0].value, weights)
        await pilot.press("space")
        assert screen.state == "running"
        await wait_until(pilot, lambda: not np.array_equal(screen.session.trainer.model.params()[0].value, weights))
        await pilot.press("x")
        await wait_until(pilot, lambda: screen.state == "done")
        done = screen.last_done
        assert done.reason == "stopped" and done.checkpoint is not None
        model, checkpoint = load_model(done.checkpoint)
        np.testing.assert_array_equal(model.params()[0].value, screen.session.trainer.model.params()[0].value)
        assert checkpoint.model_name == "mlp"


async def test_bad_form_value_shows_a_message_and_starts_nothing(tmp_path):
    screen = DashboardScreen(runs_root=tmp_path)
    async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen.query_one("#form-lr").value = "fast"
        screen.query_one("#form-lr").focus()
        await pilot.press("enter")
        assert screen.state == "idle" and screen.session is None
        assert "lr must be a number, not 'fast'" in str(screen.query_one("#form-error").render())
        screen.query_one("#form-lr").value = "-1"
        await pilot.press("enter")
        assert "lr -1.0: must be a number above 0" in str(screen.query_one("#form-error").render())
        assert not list(tmp_path.iterdir())


async def test_choosing_a_preset_fills_in_its_lecture_defaults(tmp_path):
    screen = DashboardScreen(runs_root=tmp_path)
    async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen.query_one("#form-model").value = "mlp"
        await pilot.pause()
        form = screen.query_one("TrainForm").config()
        assert (form.model, form.optimizer, form.lr, form.schedule, form.dropout) == ("mlp", "adam", 0.01, "decay", 0.2)
        screen.query_one("#form-model").value = "softmax"
        await pilot.pause()
        assert screen.query_one("TrainForm").config() == TrainConfig.for_model("softmax")


async def test_number_keys_zoom_one_panel_and_zero_shows_all(tmp_path):
    screen = DashboardScreen(runs_root=tmp_path)
    async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen.set_focus(None)
        panels = screen.query_one(Panels)
        await pilot.press("3")
        shown = [w.id for w in panels.panel_widgets() if w.display and not w.has_class("hidden")]
        assert shown == ["panel-3"] and panels.query_one("#panel-3").size.width > 80
        await pilot.press("7")
        assert panels.query_one("#panel-7").size.width > 80
        await pilot.press("0")
        assert all(not w.has_class("hidden") for w in panels.panel_widgets())
        assert not panels.query_one("#panel-7").display
        await pilot.press("right_square_bracket", "right_square_bracket", "left_square_bracket")
        assert screen.feature_index == 1 and screen.log_lines[-1] == "feature maps follow test digit #1"


async def test_feature_maps_of_a_cnn_follow_the_chosen_digit(tmp_path):
    """Panel 7 from a real (untrained) cnn: filters, then conv1, pool1, conv2 and pool2 of a test digit."""
    from convtui.core.training import snapshots

    rng = np.random.default_rng(0)
    images, labels = rng.random((8, 1, 28, 28), dtype=np.float32), np.arange(8)
    model = build_model("cnn", 0)
    screen = DashboardScreen(runs_root=tmp_path)
    async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        snapshot = snapshots.take_snapshot(model, 0, images[:4], labels[:4], images, labels,
                                         feature_digit=(images[5], 5))
        history = snapshots.BandHistory()
        history.add(0, snapshot.bands)
        screen.query_one(Panels).show_snapshot(snapshot, history)
        screen.set_focus(None)
        await pilot.press("7")
        titles = [screen.query_one(f"#maps-{i}").title for i in range(4)]
        assert titles[0].startswith("test digit 5 through the layers")
        assert [t.splitlines()[-1] for t in titles] == ["conv1 32x28x28", "pool1 32x14x14", "conv2 64x14x14",
                                                       "pool2 64x7x7"]
        assert len(screen.query_one("#filters")._images) == 32


# ------------------------------------------------------------------------------------------------ snapshots
def feed_synthetic_run(screen):
    """Drive the dashboard's handlers with fixed events and a real snapshot of a fixed model: no timings."""
    from convtui.core.training import events as ev
    from convtui.core.training import snapshots
    from convtui.tui.train_worker import SnapshotReady, StepUpdate, TrainEvent

    from convtui.core.storage.datasets import load_split, to_float

    test = load_split("test", limit=200)
    images, labels = to_float(test.images), test.labels.astype(np.int64)
    model = build_model("mlp", 0)
    screen.epochs = 2
    screen.state = RunState.COMPILING  # then the TrainStart below moves it to RUNNING
    screen.set_class(True, "running")
    screen.on_train_event(TrainEvent(ev.TrainStart("mlp", 2, 100, 10000, 10000, 0, 0.4)))
    history = snapshots.BandHistory()
    points = [(s / 100, 2.3 * 0.97 ** s, 1 - 0.9 * 0.97 ** s) for s in range(1, 151)]
    for chunk in range(0, 150, 30):
        step = ev.Step(epoch=chunk // 100, step=chunk % 100 + 30, global_step=chunk + 30, total_steps=200,
                       loss=0.3, accuracy=0.9, running_loss=0.31, running_accuracy=0.91, lr=0.01,
                       images_per_s=1234.0, eta_s=42.0, elapsed_s=10.0)
        screen.on_step_update(StepUpdate(step, points[chunk:chunk + 30]))
        for p in model.params():
            p.value *= 1.05
        snapshot = snapshots.take_snapshot(model, chunk, images[:50], labels[:50], images, labels)
        history.add(chunk, snapshot.bands)
        screen.on_snapshot_ready(SnapshotReady(snapshot, history, (chunk + 30) / 100))
    screen.on_train_event(TrainEvent(ev.EpochEnd(0, 0.4, 0.88, 0.35, 0.9, 0.01, 12.0)))
    screen.query_one(Panels).replot()


def dashboard_app(tmp_path):
    return DashboardApp(DashboardScreen(runs_root=tmp_path))


def test_snapshot_dashboard_ready(snap_compare, tmp_path):
    assert snap_compare(dashboard_app(tmp_path), terminal_size=(120, 40))


def test_snapshot_dashboard_during_training(snap_compare, tmp_path):
    async def run_before(pilot):
        feed_synthetic_run(pilot.app.screen)
        await pilot.pause()

    assert snap_compare(dashboard_app(tmp_path), terminal_size=(120, 40), run_before=run_before)


def test_snapshot_dashboard_zoomed_digits_at_80x24(snap_compare, tmp_path):
    async def run_before(pilot):
        feed_synthetic_run(pilot.app.screen)
        pilot.app.screen.set_focus(None)
        await pilot.press("5")
        await pilot.pause()

    assert snap_compare(dashboard_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


async def test_plots_redraw_at_most_once_a_second_while_running_and_at_once_when_paused(tmp_path, monkeypatch):
    """plotext draws on the UI thread, which the training threads then wait for: while a run goes, the step
    updates (up to 10 a second) add points, and the curves are redrawn at most every REPLOT_INTERVAL_S."""
    from convtui.core.training import events as ev
    from convtui.tui.screens import dashboard
    from convtui.tui.train_worker import StepUpdate

    now = [1000.0]
    monkeypatch.setattr(dashboard, "clock", lambda: now[0])
    screen = DashboardScreen(runs_root=tmp_path)
    async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        redraws = []
        monkeypatch.setattr(Panels, "replot", lambda panels: redraws.append(now[0]))
        screen.state = RunState.COMPILING
        screen.state = RunState.RUNNING

        def update(i):
            step = ev.Step(epoch=0, step=i, global_step=i, total_steps=1000, loss=0.3, accuracy=0.9,
                           running_loss=0.31, running_accuracy=0.91, lr=0.01, images_per_s=1234.0, eta_s=42.0,
                           elapsed_s=10.0)
            screen.on_step_update(StepUpdate(step, [(i / 100, 0.3, 0.9)]))

        for i in range(1, 31):  # 3 s of updates, 10 a second
            update(i)
            now[0] += 0.1
        assert dashboard.REPLOT_INTERVAL_S == 1.0
        assert len(redraws) == 3, redraws  # at 1000.0, 1001.0 and 1002.0 (within float rounding)
        assert all(later - earlier >= 0.99 for earlier, later in zip(redraws, redraws[1:]))
        assert len(plot(screen, "accuracy").series["train"].xs) == 30  # no point is dropped, only redraws
        screen.state = RunState.PAUSED
        update(31)
        update(32)
        assert len(redraws) == 5  # paused: the learner sees the last points at once


async def test_a_missing_data_folder_is_one_message_not_a_crash(tmp_path):
    config = TrainConfig.for_model("softmax", data=str(tmp_path / "no-such-folder"))
    screen = DashboardScreen(runs_root=tmp_path / "runs", initial=config)
    async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen.set_focus(None)
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.state == "failed")
        assert screen.log_lines[-1] == f"cannot start: {tmp_path / 'no-such-folder'}: no such data folder"
        assert not screen.has_class("running")


def test_confusion_lines_put_the_share_right_before_the_counts():
    from convtui.core.training.evaluate import per_class_accuracy
    from convtui.tui.widgets.confusion import confusion_lines

    confusion = np.diag([100, 5, 0]) + np.array([[0, 20, 0], [0, 0, 5], [0, 0, 0]])
    lines = [str(line) for line in confusion_lines(confusion, per_class_accuracy(confusion))]
    assert lines[1] == " right│   0   1   2"
    assert lines[2] == "0  83%│ 100  20   0"
    assert lines[3] == "1  50%│   0   5   5"
    assert lines[4] == "2  n/a│   0   0   0"
    assert lines[5] == "80.7% right on 130 test digits"  # 105/130 = 80.77%, truncated as the slides do
    compact = [str(line) for line in confusion_lines(confusion, per_class_accuracy(confusion), compact=True)]
    assert compact[2] == "0  83%│  ✓ 20  0"  # the diagonal's count is the row's share; mistakes keep their count


@pytest.mark.parametrize("right, total, shown", [(86, 87, " 98%"), (87, 89, " 97%"), (1, 107, "  0%"),
                                                 (89, 89, "100%"), (0, 5, "  0%")])
def test_confusion_shares_are_truncated_never_rounded_up(right, total, shown):
    from convtui.core.training.evaluate import per_class_accuracy
    from convtui.tui.widgets.confusion import confusion_lines

    confusion = np.array([[right, total - right], [0, 1]])
    lines = [str(line) for line in confusion_lines(confusion, per_class_accuracy(confusion))]
    assert lines[2].startswith(f"0 {shown}│")
    assert int(shown.strip("% ")) == (100 * right) // total


@pytest.mark.parametrize("key", ["escape", "backspace"])
async def test_escape_during_a_run_stops_it_and_goes_back_only_when_it_has_stopped(tmp_path, key):
    from textual.screen import Screen

    config = TrainConfig.for_model("mlp", limit=20000, epochs=3, batch_size=10)
    screen = DashboardScreen(runs_root=tmp_path, initial=config)

    class Lessons(App):  # a screen underneath, like the lesson index
        def on_mount(self):
            self.push_screen(Screen())
            self.push_screen(screen)

        def action_back(self):
            self.pop_screen()

    app = Lessons()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen.set_focus(None)
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.last_step is not None)
        await pilot.press(key)
        await wait_until(pilot, lambda: app.screen is not screen)
        assert screen.last_done.reason == "stopped" and screen.last_done.checkpoint is not None


@pytest.mark.parametrize(("path", "space", "x"), [
    ([], "nothing is running to pause: ctrl+s starts a run", "nothing is running to stop: ctrl+s starts a run"),
    ([RunState.COMPILING, RunState.DONE], "nothing is running to pause: ctrl+s starts a run",
     "nothing is running to stop: ctrl+s starts a run"),
    ([RunState.COMPILING, RunState.STOPPING], "stopping: the current step finishes and is saved",
     "already stopping: the current step finishes and is saved"),
], ids=["idle", "done", "stopping"])
async def test_space_and_x_that_cannot_act_say_why(tmp_path, path, space, x):
    """The pause and stop keys never do nothing silently: each state they cannot act in has its own answer (the
    states are stepped to directly, with no trainer; a real pause and stop are tested above)."""
    screen = DashboardScreen(runs_root=tmp_path)
    async with DashboardApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for state in path:
            screen.state = state
        screen.set_focus(None)  # idle, the settings form has the focus, and its fields take space and x as text
        await pilot.press("space", "x")
        await pilot.pause()
        assert [notification.message for notification in pilot.app._notifications][-2:] == [space, x]
