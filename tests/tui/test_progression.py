"""The progression screen trains the five steps for real (a tiny plan on real MNIST) and shows what they reached."""

import threading
import time
from dataclasses import dataclass, field, replace

import pytest
from textual.app import App

from convtui.core.storage.datasets import load_split
from convtui.core.storage.run_folder import find_runs, read_run
from convtui.core.training.progression import CLASS_PLAN, MARKER_FILE, read_marker, write_marker
from convtui.core.training.trainer import Trainer
from convtui.tui.run_state import RunState
from convtui.tui.train_worker import RunControl
from convtui.tui.screens import progression as progression_screen
from convtui.tui.screens.progression import ProgressionScreen
from convtui.tui.screens.progression_view import MARKERS, Row, format_accuracy, time_left
from convtui.tui.widgets.plots import MetricPlot

TINY = CLASS_PLAN.scaled(images=300, epochs=1, test_images=200)


def with_long_cnn(plan, images=3000, epochs=2):
    """The tiny plan with a cnn step long enough (seconds) to press keys while it trains."""
    return replace(plan, steps=plan.steps[:-1] + (replace(plan.steps[-1], images=images, epochs=epochs),))


class ProgressionApp(App):
    def __init__(self, screen):
        super().__init__()
        self.progression = screen

    def on_mount(self):
        self.push_screen(self.progression)


async def wait_until(pilot, condition, timeout=180.0):
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out waiting for the progression"
        await pilot.pause(0.05)


class CountingEvent(threading.Event):
    """An Event that counts the waits made while it is clear: the worker parked by a pause waits on it."""

    def __init__(self):
        super().__init__()
        self.paused_waits = 0

    def wait(self, timeout=None):
        if not self.is_set():
            self.paused_waits += 1
        return super().wait(timeout)


@dataclass
class WatchedControl(RunControl):
    unpaused: threading.Event = field(default_factory=CountingEvent)


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def progression_folders(root):
    return sorted(path for path in find_runs(root) if "-progression-" in path.name)


@pytest.mark.slow
async def test_a_tiny_plan_runs_all_five_steps_and_the_table_shows_their_run_folders(tmp_path):
    screen = ProgressionScreen(runs_root=tmp_path, plan=TINY)
    async with ProgressionApp(screen).run_test(size=(120, 50)) as pilot:
        await pilot.pause()
        assert "ready: s trains all five steps" in screen_text(pilot.app)
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.state in (RunState.DONE, RunState.FAILED))
        assert screen.state is RunState.DONE
        assert [row.status for row in screen.rows] == ["done"] * 5
        folders = progression_folders(tmp_path)
        assert sorted(read_run(f).model_name for f in folders) == sorted(s.model for s in TINY.steps)
        text = screen_text(pilot.app)
        plot = screen.query_one("#prog-plot", MetricPlot)
        for index, (step, row) in enumerate(zip(TINY.steps, screen.rows)):
            run = read_run(tmp_path / row.folder)
            assert run.model_name == step.model and run.trained() == "1 epoch"
            assert run.config["limit"] == 300 and read_marker(run.path) == {"step": step.model, "test_images": 200}
            assert row.accuracy == run.final("val_accuracy")  # the table's figure is the run folder's
            # One table line per step: its marker, name, the lecture's words and this run's accuracy.
            line = next(line for line in text.split("\n") if f"{index + 1} {step.model} " in line)
            assert format_accuracy(run.final("val_accuracy")) in line and step.changed[:20] in line
            series = plot.series[step.model]
            assert series.marker == MARKERS[index] and series.label == f"{index + 1} {step.model}"
            assert (1.0, 100 * run.final("val_accuracy")) in zip(series.xs, series.ys)  # the epoch's end
        start_x, start_accuracy = screen.rows[0].curve[0]  # the untrained softmax, before its first step
        assert start_x == 0.0 and screen.rows[0].accuracy > start_accuracy + 0.1  # 3 steps teach it something
        assert "finished in" in screen.message and "reused none" in screen.message


@pytest.mark.slow
async def test_stop_keeps_the_finished_runs(tmp_path):
    plan = with_long_cnn(TINY)
    screen = ProgressionScreen(runs_root=tmp_path, plan=plan)
    async with ProgressionApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.current == 4 and screen.last_step is not None)
        await pilot.press("x")
        await wait_until(pilot, lambda: screen.state in (RunState.DONE, RunState.FAILED))
        assert [row.status for row in screen.rows] == ["done"] * 4 + ["stopped"]
        for step, row in zip(plan.steps[:4], screen.rows):
            run = read_run(tmp_path / row.folder)  # each finished step's folder is kept, whole
            assert run.model_name == step.model and run.trained() == "1 epoch" and run.checkpoint is not None
        cnn = read_run(tmp_path / screen.rows[4].folder)
        assert cnn.checkpoint is not None and cnn.final("val_accuracy") is None  # saved where it stopped
        assert len(progression_folders(tmp_path)) == 5
        assert screen.message.startswith("stopped in")
        assert "stopped" in str(screen.query_one("#prog-status").render())


def train_into(folder, config, step):
    """Train `config` into `folder` as a progression step of TINY would (its marker included)."""
    folder.mkdir()
    write_marker(folder, TINY, step)
    for _ in Trainer(config, out_dir=folder, val_data=load_split("test").head(TINY.test_images)).events():
        pass
    return read_run(folder)


@pytest.mark.slow
async def test_reuse_fills_matching_steps_from_runs_and_trains_only_the_rest(tmp_path):
    # softmax and mlp trained earlier exactly as the plan would; a softmax at another learning rate is not the
    # plan's softmax, so it is not reused.
    reused = {step.model: train_into(tmp_path / f"earlier-{step.model}", TINY.config(step), step).final("val_accuracy")
              for step in (TINY.steps[0], TINY.steps[3])}
    train_into(tmp_path / "other-softmax", replace(TINY.config(TINY.steps[0]), lr=0.01), TINY.steps[0])
    screen = ProgressionScreen(runs_root=tmp_path, plan=TINY)
    async with ProgressionApp(screen).run_test(size=(120, 50)) as pilot:
        await wait_until(pilot, lambda: set(screen.available) == {"softmax", "mlp"})
        assert "u reuses the runs under" in str(screen.query_one("#prog-status").render())
        await pilot.press("u")
        await wait_until(pilot, lambda: screen.state in (RunState.DONE, RunState.FAILED))
        assert [row.status for row in screen.rows] == ["reused", "done", "done", "reused", "done"]
        assert screen.rows[0].folder == "earlier-softmax" and screen.rows[3].folder == "earlier-mlp"
        assert screen.rows[0].accuracy == reused["softmax"] and screen.rows[3].accuracy == reused["mlp"]
        trained = progression_folders(tmp_path)
        assert sorted(read_run(f).model_name for f in trained) == ["cnn", "mlp-relu", "mlp-sigmoid"]
        text = screen_text(pilot.app)
        assert f"{format_accuracy(reused['mlp'])} reused" in text
        assert "reused softmax, mlp" in screen.message
        assert any("softmax: reused earlier-softmax" in line for line in screen.log_lines)


@pytest.mark.slow
async def test_pause_stops_progress_and_space_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(progression_screen, "RunControl", WatchedControl)
    screen = ProgressionScreen(runs_root=tmp_path, plan=with_long_cnn(TINY, images=4000))
    async with ProgressionApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.current == 4 and screen.last_step is not None)
        await pilot.press("space")
        assert screen.state is RunState.PAUSED
        assert "paused" in str(screen.query_one("#prog-status").render())
        # The step in flight (seconds on a busy machine) ends, then the worker waits for space.
        await wait_until(pilot, lambda: screen.control.unpaused.paused_waits >= 3, timeout=60)
        await pilot.pause(0.3)  # its last update reaches the screen
        held = screen.last_step.global_step
        await pilot.pause(2.0)
        assert screen.last_step.global_step == held and screen.state is RunState.PAUSED
        await pilot.press("space")
        assert screen.state is RunState.RUNNING
        await wait_until(pilot, lambda: screen.last_step.global_step > held, timeout=60)
        await pilot.press("x")
        await wait_until(pilot, lambda: screen.state in (RunState.DONE, RunState.FAILED))
        assert screen.rows[4].status == "stopped"


async def test_the_screen_offers_reuse_and_leaves_with_escape_when_idle(tmp_path):
    screen = ProgressionScreen(runs_root=tmp_path, plan=TINY)
    async with ProgressionApp(screen).run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        text = screen_text(pilot.app)
        assert f"no run under {tmp_path}/ matches a step yet" in str(screen.query_one("#prog-status").render())
        assert "estimated" in text and "300 images x 1 epoch" in text and "tested on 200 test images" in text
        assert not (tmp_path / MARKER_FILE).exists() and not list(tmp_path.iterdir())  # nothing trained


def test_time_left_scales_the_plan_by_the_speed_measured_so_far():
    plan = CLASS_PLAN
    estimates = [plan.step_estimate_s(step) for step in plan.steps]
    rows = [Row() for _ in plan.steps]
    assert time_left(plan, rows, -1, None, set()) == pytest.approx(sum(estimates))
    assert time_left(plan, rows, -1, None, {"cnn"}) == pytest.approx(sum(estimates[:4]))
    # The first step took twice its estimate: the rest is expected to as well.
    rows[0] = Row(status="done", seconds=2 * estimates[0])
    rows[1] = Row(status="training", started=100.0)
    assert time_left(plan, rows, 1, None, set(), now=101.0) == pytest.approx(
        2 * estimates[1] - 1.0 + 2 * sum(estimates[2:]))


async def test_space_and_x_with_nothing_running_say_so(tmp_path):
    """Idle, the progression's pause and stop keys answer with what to press instead of doing nothing silently."""
    screen = ProgressionScreen(runs_root=tmp_path, plan=TINY)
    async with ProgressionApp(screen).run_test(size=(120, 40)) as pilot:
        app = pilot.app
        await pilot.pause()
        await pilot.press("space")
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        said = [notification.message for notification in app._notifications]
        assert said == ["nothing is running to pause: s runs all five, u reuses earlier runs",
                        "nothing is running to stop: s runs all five, u reuses earlier runs"]
