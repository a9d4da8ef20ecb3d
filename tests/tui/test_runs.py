"""Runs and compare: run folders written by the real trainer, opened, compared and evaluated in the app."""

import json
import time

import pytest
from textual.app import App

from convtui.core.storage.run_folder import REPLAY_FILE
from convtui.core.training.config import TrainConfig
from convtui.core.training.trainer import Trainer
from convtui.tui.screens.runs import QUICK_EVAL_IMAGES, RunsScreen
from convtui.tui.widgets.plots import MetricPlot


class RunsApp(App):
    def __init__(self, root):
        super().__init__()
        self.root = root

    def on_mount(self):
        self.push_screen(RunsScreen(runs_root=self.root))


async def wait_until(pilot, condition, timeout=60.0):
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.05)


def train_run(folder, model="softmax", epochs=2, limit=500, replay=False):
    """A real `convtui train --out` run folder, trained briefly; without `replay`, as runs were written before
    replay was recorded (these tests are about what the screen did then, and still does for such runs)."""
    config = TrainConfig.for_model(model, epochs=epochs, limit=limit, batch_size=50, lr=0.1)
    events = list(Trainer(config, out_dir=folder).events())
    assert events[-1].reason == "completed"
    if not replay:
        (folder / REPLAY_FILE).unlink()
    return folder


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    train_run(root / "softmax-a", epochs=2)
    train_run(root / "softmax-b", epochs=3, limit=300)
    return root


def message(screen) -> str:
    return str(screen.query_one("#runs-message").render())


async def test_opening_a_run_shows_its_curves_and_confusion_matrix(runs_root):
    app = RunsApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        assert len(screen.found) == 2
        opened = screen.found[0]
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.evaluated_on == QUICK_EVAL_IMAGES)
        metrics = [line.split(",") for line in (opened / "metrics.csv").read_text().splitlines()]
        header, rows = metrics[0], metrics[1:]
        val = [float(r[header.index("val_accuracy")]) * 100 for r in rows]
        accuracy = screen.query_one("#runs-accuracy", MetricPlot)
        assert accuracy.series[f"{opened}:test"].ys == pytest.approx(val)
        assert accuracy.series[f"{opened}:test"].xs == [float(r[0]) for r in rows]
        matrix = screen.query_one("#runs-confusion")
        confusion = matrix.lines(matrix.size.width)
        assert f"right on {QUICK_EVAL_IMAGES:,} test digits" in str(confusion[-1])
        assert "% right on 1,000 test digits (e: all 10,000)" in message(screen)
        assert "softmax has no convolution filters" in screen.query_one("#runs-filters").title


async def test_space_compares_runs_in_one_plot(runs_root):
    app = RunsApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await pilot.press("space", "down", "space")
        accuracy = screen.query_one("#runs-accuracy", MetricPlot)
        assert sorted(k.split(":")[-1] for k in accuracy.series) == ["test", "test", "train", "train"]
        assert sorted(len(s.xs) for s in accuracy.series.values()) == [2, 2, 3, 3]
        assert all(str(item.query_one("Label").render()).startswith("●")
                   for item in screen.query_one("#runs-list").children)
        await pilot.press("space")  # the highlighted one leaves the comparison
        assert len(accuracy.series) == 2


async def test_a_checkpoint_path_opens_its_run_and_bad_paths_say_why(runs_root, tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    (tmp_path / "empty").mkdir()
    app = RunsApp(tmp_path / "nothing-here")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        assert screen.found == []
        for path, expected in ((tmp_path / "missing", "does not exist"), (tmp_path / "empty", "not a run folder")):
            screen.query_one("#runs-path").value = str(path)
            screen.query_one("#runs-path").focus()
            await pilot.press("enter")
            assert expected in message(screen)
        screen.query_one("#runs-path").value = str(tmp_path / "junk.npz")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "damaged or not a convtui checkpoint" in message(screen))
        screen.query_one("#runs-path").value = str(runs_root / "softmax-b" / "checkpoint.npz")
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.evaluated_on == QUICK_EVAL_IMAGES)
        assert screen.current.name == "softmax-b" and len(screen.current.epochs) == 3


async def test_e_evaluates_the_whole_test_set(runs_root):
    app = RunsApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.evaluated_on == QUICK_EVAL_IMAGES)
        await pilot.press("e")
        await wait_until(pilot, lambda: screen.evaluated_on == 10000)
        # The full-set accuracy is the one the trainer logged for the last epoch.
        last_val = screen.current.final("val_accuracy")
        assert f"{last_val * 100:.2f}% right on 10,000 test digits" in message(screen)


def test_snapshot_runs_compare(snap_compare, tmp_path, monkeypatch):
    """Hand-written run folders (the files `convtui train --out` writes) so the picture is fixed."""
    from convtui.core.storage.checkpoint import save_checkpoint
    from convtui.core.nn.architectures import build_model

    monkeypatch.chdir(tmp_path)
    curves = {"softmax": [0.90, 0.91, 0.92], "mlp": [0.95, 0.97, 0.975], "cnn": [0.98, 0.988, 0.991]}
    for model, accuracies in curves.items():
        folder = tmp_path / "runs" / model
        folder.mkdir(parents=True)
        rows = ["epoch,loss,accuracy,val_loss,val_accuracy,lr,steps,elapsed_s"]
        for epoch, a in enumerate(accuracies, start=1):
            rows.append(f"{epoch},{1 - a:.3f},{a - 0.01:.3f},{1.2 * (1 - a):.3f},{a},0.001,600,{epoch * 10}")
        (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
        config = TrainConfig.for_model(model)
        (folder / "config.json").write_text(json.dumps({"config": config.to_dict()}))
        if model == "cnn":
            save_checkpoint(folder / "checkpoint.npz", model=build_model("cnn", 0), optimizer=None,
                            config=config, epoch=3)
    for i, model in enumerate(("cnn", "mlp", "softmax")):  # a fixed listing order (newest first)
        import os

        os.utime(tmp_path / "runs" / model, (1000 + i, 1000 - i))

    async def run_before(pilot):
        screen = pilot.app.screen
        await pilot.press("space", "down", "space", "down", "space", "up", "up")
        screen.open_run(tmp_path / "runs" / "cnn")
        await wait_until(pilot, lambda: screen.evaluated_on == QUICK_EVAL_IMAGES, timeout=120)
        await pilot.pause()

    assert snap_compare(RunsApp("runs"), terminal_size=(120, 40), run_before=run_before)


GOOD_METRICS = "epoch,loss,accuracy,val_loss,val_accuracy,lr\n1,0.5,0.9,0.4,0.91,0.5\n2,0.3,0.93,0.3,0.94,0.5\n"
# A runs/ folder as classmates pass them around: damaged ones are listed with their reason, never a crash.
DAMAGED_RUNS = {
    "not-utf8": ({"metrics.csv": GOOD_METRICS.encode() + b"3,\xff,0.9,0.4,0.9,0.5\n"},
                 "metrics.csv is not UTF-8 text (byte 94)"),
    "oversized-field": ({"metrics.csv": (GOOD_METRICS + "3," + "9" * 200_000 + ",0.9,0.4,0.9,0.5\n").encode()},
                        "metrics.csv line 4 is not valid CSV: field larger than field limit (131072)"),
    "nul-bytes": ({"metrics.csv": GOOD_METRICS.encode() + b"\0" * 64}, "metrics.csv line 4 holds a NUL byte"),
    "garbage-config": ({"metrics.csv": GOOD_METRICS.encode(), "config.json": b"\x00\x01garbage{"},
                       "config.json line 1 holds a NUL byte"),
    "deep-config": ({"metrics.csv": GOOD_METRICS.encode(), "config.json": b"[" * 100_000},
                    "config.json is nested too deeply"),
    "markup[red]name": ({"metrics.csv": b"epoch,loss\n1,0.5\n"}, "metrics.csv lacks the column(s) accuracy"),
}


async def test_damaged_runs_are_listed_with_their_reason_and_never_crash_the_app(tmp_path):
    root = tmp_path / "runs"
    (root / "good").mkdir(parents=True)
    (root / "good" / "metrics.csv").write_text(GOOD_METRICS)
    (root / "good" / "config.json").write_text(json.dumps({"config": {"model": "softmax"}}))
    (root / "damaged-checkpoint").mkdir()
    (root / "damaged-checkpoint" / "metrics.csv").write_text(GOOD_METRICS)
    (root / "damaged-checkpoint" / "checkpoint.npz").write_bytes(b"PK\x03\x04 cut short")
    for name, (files, _) in DAMAGED_RUNS.items():
        (root / name).mkdir()
        for file_name, data in files.items():
            (root / name / file_name).write_bytes(data)
    import os

    os.symlink("loop", root / "loop")
    app = RunsApp(root)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        listing = screen.query_one("#runs-list")
        labels = {item.name: str(item.query_one("Label").render()) for item in listing.children}
        assert len(labels) == len(DAMAGED_RUNS) + 3
        assert labels[str(root / "good")] == "  good | softmax | 2 epochs | test 94.00% | no checkpoint"
        assert labels[str(root / "damaged-checkpoint")] == "  damaged-checkpoint | ? | 2 epochs | test 94.00%"
        assert labels[str(root / "loop")] == f"✗ loop: cannot read {root}/loop: Too many levels of symbolic links"
        for name, (_, reason) in DAMAGED_RUNS.items():
            assert labels[str(root / name)].startswith(f"✗ {name}: {reason}"), labels[str(root / name)]

        names = [item.name for item in listing.children]
        for name, (_, reason) in [*DAMAGED_RUNS.items(), ("loop", (None, "Too many levels of symbolic links"))]:
            listing.index = names.index(str(root / name))
            await pilot.press("enter")
            assert reason in message(screen) and str(root / name) in message(screen)
            await pilot.press("space")  # comparing a bad run says why too, and draws nothing
            assert reason in message(screen)
        assert screen.compared == {} and screen.current is None

        listing.index = names.index(str(root / "damaged-checkpoint"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: "damaged or not a convtui checkpoint" in message(screen))
        assert str(root / "damaged-checkpoint" / "checkpoint.npz") in message(screen)
        listing.index = names.index(str(root / "good"))
        await pilot.press("enter")
        assert message(screen) == "good | softmax | 2 epochs | test 94.00% | no checkpoint"
        screen.query_one("#runs-path").value = str(tmp_path / "typed[/]path")  # text, never markup
        screen.query_one("#runs-path").focus()
        await pilot.press("enter")
        assert message(screen) == f"{tmp_path}/typed[/]path does not exist"
        assert app.is_running


async def test_p_shows_the_pytorch_code_and_x_exports_the_open_run(tmp_path):
    from convtui.core.storage.export_pytorch import model_source
    from convtui.core.storage.checkpoint import load_checkpoint
    from convtui.core.storage import safetensors_format
    from convtui.tui.screens.code_view import CodeScreen

    root = tmp_path / "runs"
    folder = train_run(root / "mlp-run", model="mlp", epochs=1, limit=200)
    app = RunsApp(root)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await pilot.press("p")  # nothing open yet: says so, opens nothing
        assert not isinstance(app.screen, CodeScreen) and "open a run with a checkpoint first" in message(screen)
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.evaluated_on == QUICK_EVAL_IMAGES)
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, CodeScreen)
        assert app.screen.source == model_source(load_checkpoint(folder / "checkpoint.npz"))
        compile(app.screen.source, "model.py", "exec")  # readable code that Python accepts
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("x")
        await wait_until(pilot, lambda: message(screen).startswith("exported to"))
        assert "model.py" in message(screen) and "model.safetensors" in message(screen)
    tensors, _ = safetensors_format.load(folder / "export" / "model.safetensors")
    weights = load_checkpoint(folder / "checkpoint.npz").params["dense1.w"]
    assert any(t.shape == weights.T.shape and (t == weights.T).all() for t in tensors.values())
