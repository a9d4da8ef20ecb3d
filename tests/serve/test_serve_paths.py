"""A served session opens runs only under the server's ./runs (convtui/served_paths.py, the Runs screen)."""

from __future__ import annotations

import asyncio
import os

import pytest

from convtui.core.storage.run_folder import RunError
from convtui.served_paths import SERVED_RUNS_VARIABLE, confine_to_served_runs, outside_served_runs

METRICS = "epoch,loss,accuracy,val_loss,val_accuracy,lr\n1,0.5,0.9,0.4,0.91,0.001\n"


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A served ./runs with one real-looking run, a secret outside it, and the session's environment set."""
    root = tmp_path / "server" / "runs"
    (root / "good").mkdir(parents=True)
    (root / "good" / "metrics.csv").write_text(METRICS)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "metrics.csv").write_text(METRICS)
    (secret / "checkpoint.npz").write_bytes(b"not for you")
    monkeypatch.setenv(SERVED_RUNS_VARIABLE, str(root))
    monkeypatch.chdir(root.parent)
    return root


def refusal(text: str, root) -> str:
    return f"{text}: this served session can only open runs under {root.resolve()}/"


def test_runs_inside_are_allowed(runs):
    for path in ("runs/good", "runs/good/", "./runs/good", str(runs / "good"), "runs/good/checkpoint.npz",
                 "runs", "runs/not-yet-there"):
        assert outside_served_runs(path) is None, path


@pytest.mark.parametrize("path", ["/etc", "/etc/passwd", "~", "~/.ssh", "..", "runs/..", "runs/../..",
                                  "runs/good/../../../secret", "/nonexistent/run", "../secret/checkpoint.npz"])
def test_paths_outside_are_refused_whether_or_not_they_exist(runs, path):
    assert outside_served_runs(path) == refusal(path, runs)


def test_symlinks_out_of_the_runs_folder_are_refused(runs, tmp_path):
    (runs / "linked").symlink_to(tmp_path / "secret")  # a folder that points out
    assert outside_served_runs("runs/linked") == refusal("runs/linked", runs)
    inside = runs / "looks-inside"  # a real folder inside whose files point out
    inside.mkdir()
    (inside / "checkpoint.npz").symlink_to(tmp_path / "secret" / "checkpoint.npz")
    assert outside_served_runs("runs/looks-inside") == refusal("runs/looks-inside", runs)
    (inside / "checkpoint.npz").unlink()
    (inside / "metrics.csv").symlink_to(tmp_path / "secret" / "metrics.csv")
    assert outside_served_runs("runs/looks-inside") == refusal("runs/looks-inside", runs)
    (runs / "loop").symlink_to(runs / "loop")
    assert outside_served_runs("runs/loop") == refusal("runs/loop", runs)


def test_outside_serve_nothing_is_refused(runs, monkeypatch):
    monkeypatch.delenv(SERVED_RUNS_VARIABLE)
    assert outside_served_runs("/etc") is None
    assert outside_served_runs("../secret") is None


def test_the_runs_screen_reader_is_confined(runs):
    from convtui.tui.screens import runs as runs_screen

    with pytest.raises(RunError) as refused:
        runs_screen.read_run("../secret")
    assert str(refused.value) == refusal("../secret", runs)
    assert runs_screen.read_run("runs/good").name == "good"  # still the real reader inside


def test_confine_passes_arguments_and_uses_the_given_error(runs):
    calls = []
    reader = confine_to_served_runs(lambda path, *args, **kwargs: calls.append((path, args, kwargs)) or "read",
                                    error=ValueError)
    assert reader("runs/good", 1, limit=2) == "read"
    assert calls == [("runs/good", (1,), {"limit": 2})]
    with pytest.raises(ValueError, match="can only open runs under"):
        reader("/etc")
    assert os.environ[SERVED_RUNS_VARIABLE] == str(runs)


def test_the_runs_screen_says_so_in_one_line(runs):
    asyncio.run(runs_screen_refuses(runs))


async def runs_screen_refuses(runs):
    from textual.app import App
    from textual.widgets import Static

    from convtui.tui.screens.runs import RunsScreen

    class Harness(App):
        def on_mount(self):
            self.push_screen(RunsScreen())

    app = Harness()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.screen.open_run("/etc") is False
        await pilot.pause()
        shown = str(app.screen.query_one("#runs-message", Static).render())
        assert shown == refusal("/etc", runs)


def test_any_file_of_a_run_folder_that_points_out_refuses_the_run(runs, tmp_path):
    """Files added to runs later (replay.npz, export/) are covered without naming them."""
    inside = runs / "with-extra"
    inside.mkdir()
    (inside / "metrics.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy,lr\n")
    assert outside_served_runs("runs/with-extra") is None
    (inside / "some-future-file.bin").symlink_to(tmp_path / "secret" / "checkpoint.npz")
    assert outside_served_runs("runs/with-extra") == refusal("runs/with-extra", runs)
    # The served root is a listing: one bad entry in it does not refuse the good runs beside it.
    assert outside_served_runs("runs") is None and outside_served_runs("runs/good") is None
