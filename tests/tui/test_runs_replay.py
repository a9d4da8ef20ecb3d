"""The Runs screen's replay: ←/→ (and home/end) scrub through a run's recorded snapshots; every panel shows the
stored numbers of that moment. Runs without a replay (old ones, damaged files) open as before."""

from __future__ import annotations

import numpy as np
import pytest

from convtui.core.storage.datasets import load_split
from convtui.core.storage.replay_store import read_replay
from convtui.core.storage.run_folder import REPLAY_FILE
from convtui.core.training.config import TrainConfig
from convtui.core.training.trainer import Trainer
from convtui.tui.screens.help import active_bindings, help_rows
from convtui.tui.screens.runs import QUICK_EVAL_IMAGES
from tests.tui.test_runs import RunsApp, wait_until


def train(folder, model="softmax", epochs=2):
    """A real run: 30 steps per epoch, so the replay has 0, 1, 3, 9, then the epoch ends."""
    config = TrainConfig.for_model(model, epochs=epochs, limit=300, batch_size=10)
    events = list(Trainer(config, out_dir=folder, val_data=load_split("test").head(500)).events())
    assert events[-1].reason == "completed"
    return folder


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    train(root / "a-replayed")
    train(root / "b-old", epochs=1)
    (root / "b-old" / REPLAY_FILE).unlink()  # as runs were written before replay
    train(root / "c-damaged", epochs=1)
    (root / "c-damaged" / REPLAY_FILE).write_bytes(b"PK\x03\x04 not really")
    return root


def replay_line(screen) -> str:
    return str(screen.query_one("#runs-replay").render())


def shown_matrix(screen) -> np.ndarray:
    return screen.query_one("#runs-confusion").matrix[0]


async def open_run(pilot, screen, name):
    screen.query_one("#runs-list").index = [p.name for p in screen.found].index(name)
    await pilot.press("enter")
    await pilot.pause()


async def test_arrows_scrub_through_the_stored_snapshots(runs_root):
    stored = read_replay(runs_root / "a-replayed" / REPLAY_FILE)
    n = len(stored)
    assert n == 6
    app = RunsApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await open_run(pilot, screen, "a-replayed")
        # The latest snapshot by default: the checkpoint, so no evaluation is started.
        assert replay_line(screen).startswith(f"replay: step 30 of epoch 2 ({n} of {n}) | ")
        assert screen.evaluated_on == 0
        visits = [("left", n - 1), ("left", n - 2), ("home", 1), ("left", 1), ("right", 2), ("end", n),
                  ("right", n)]
        for key, position in visits:
            await pilot.press(key)
            await pilot.pause()
            snapshot = stored.snapshots[position - 1]
            assert f"step {snapshot.step} of epoch {snapshot.epoch + 1} ({position} of {n})" in replay_line(screen)
            assert (shown_matrix(screen) == snapshot.confusion).all()
            right = np.trace(snapshot.confusion) / 500 * 100
            assert f"| {right:.2f}% right on 500 test digits" in replay_line(screen)
            digits = screen.query_one("#runs-digits")
            wrong = int((snapshot.predicted != stored.digit_labels).sum())
            assert digits.title == f"{wrong}/40 wrong"
            captions = [caption.plain for caption in digits._captions]
            for label, guess, caption in zip(stored.digit_labels, snapshot.predicted, captions):
                assert caption.startswith(f"{guess} ✓" if guess == label else f"✗ {guess} not {label}")
            bands = screen.query_one("#runs-bands").history
            assert bands.steps == [s.trained_steps for s in stored.snapshots[:position]]
            np.testing.assert_array_equal(bands.array(stored.param_names[0])[-1], snapshot.bands[0])


async def test_v_switches_the_view_and_a_dense_model_starts_on_its_digits(runs_root):
    app = RunsApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await open_run(pilot, screen, "a-replayed")
        views = screen.query_one("#runs-views")
        seen = [views.current]
        for _ in range(2):
            await pilot.press("v")
            await pilot.pause()
            seen.append(views.current)
        assert seen == ["runs-digits-box", "runs-bands", "runs-digits-box"]  # softmax has no filters to show


async def test_the_footer_and_help_name_the_replay_keys(runs_root):
    app = RunsApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await open_run(pilot, screen, "a-replayed")
        rows = {row.display: row.description for row in help_rows(active_bindings(screen))}
        assert rows["←→"] == "Replay: ← earlier, → later, home first, end last"
        assert "v" in rows
        shown = screen.active_bindings["left"]  # what the footer draws: "←→ Replay"
        assert shown.enabled and shown.binding.key_display == "←→" and shown.binding.show


async def test_typing_a_path_keeps_the_arrows_for_the_input(runs_root):
    app = RunsApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await open_run(pilot, screen, "a-replayed")
        before = replay_line(screen)
        await pilot.press("o", "a", "b", "left", "c", "home")
        await pilot.pause()
        assert screen.query_one("#runs-path").value == "acb"
        assert replay_line(screen) == before


async def test_a_run_without_replay_says_so_and_is_evaluated_as_before(runs_root):
    app = RunsApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await open_run(pilot, screen, "b-old")
        await wait_until(pilot, lambda: screen.evaluated_on == QUICK_EVAL_IMAGES)
        assert replay_line(screen) == "no replay recorded for this run"
        assert screen.replay is None
        assert "right on 1,000 test digits (e: all 10,000)" in str(screen.query_one("#runs-message").render())
        assert not screen.check_action("replay_move", (-1,))  # the footer does not offer ←→ here
        index = screen.query_one("#runs-list").index
        await pilot.press("left", "home", "end", "right")  # no replay to move in: nothing happens, no error
        await pilot.pause()
        assert screen.query_one("#runs-list").index == index
        assert replay_line(screen) == "no replay recorded for this run"
        await pilot.press("down")
        assert screen.query_one("#runs-list").index == index + 1


async def test_a_damaged_replay_is_one_line_and_the_run_still_opens(runs_root):
    app = RunsApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await open_run(pilot, screen, "c-damaged")
        await wait_until(pilot, lambda: screen.evaluated_on == QUICK_EVAL_IMAGES)
        line = replay_line(screen)
        assert line == f"{runs_root / 'c-damaged' / REPLAY_FILE}: damaged replay file (not an .npz archive); " \
                       "the run opens without replay"
        assert screen.replay is None and app.is_running
