"""Reading run folders as `convtui train --out DIR` writes them, and clear errors for bad ones."""

import json
import math
import os

import pytest

from convtui.core.storage.run_folder import RunError, find_runs, read_metrics, read_run

HEADER = "epoch,loss,accuracy,val_loss,val_accuracy,lr\n"


def write_run(folder, rows, model="cnn", checkpoint=True):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": model, "epochs": len(rows)}))
    (folder / "metrics.csv").write_text(HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows))
    if checkpoint:
        (folder / "checkpoint.npz").write_bytes(b"PK")  # only its presence matters to read_run
    return folder


def test_read_run_folder_gives_curves_config_and_checkpoint(tmp_path):
    folder = write_run(tmp_path / "cnn-1", [(1, 0.3, 0.91, 0.1, 0.97, 0.001), (2, 0.08, 0.975, 0.05, 0.985, 0.0006)])
    run = read_run(folder)
    assert run.name == "cnn-1" and run.model_name == "cnn"
    assert run.epochs == [1.0, 2.0]
    assert run.metrics["val_accuracy"] == [0.97, 0.985]
    assert run.final("loss") == 0.08
    assert run.checkpoint == folder / "checkpoint.npz"
    assert run.summary() == "cnn-1 | cnn | 2 epochs | test 98.50%"


def test_checkpoint_path_uses_its_folder(tmp_path):
    folder = write_run(tmp_path / "r", [(1, 0.5, 0.9, "", "", 0.5)], model="softmax")
    run = read_run(folder / "checkpoint.npz")
    assert run.checkpoint == folder / "checkpoint.npz" and run.model_name == "softmax"
    assert math.isnan(run.metrics["val_loss"][0]) and run.final("val_accuracy") is None


def test_nested_config_is_flattened(tmp_path):
    folder = write_run(tmp_path / "r", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
    (folder / "config.json").write_text(json.dumps({"config": {"model": "mlp"}, "versions": {"numpy": "2"}}))
    assert read_run(folder).model_name == "mlp"


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "not a run folder"),
    (lambda p: p.write_text("x"), "is not a run folder or a .npz checkpoint"),
])
def test_bad_paths_raise_one_clear_message(tmp_path, setup, message):
    target = tmp_path / "bad"
    setup(target)
    with pytest.raises(RunError, match=message):
        read_run(target)


def test_empty_path_is_refused():
    with pytest.raises(RunError, match="give a run folder"):
        read_run("  ")


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("epoch,loss\n1,0.5\n", "lacks the column"),
    (HEADER + "1,0.5,0.9\n", "line 2 has 3 values"),
    (HEADER + "1,abc,0.9,0.4,0.9,0.1\n", "line 2 holds a value that is not a number"),
])
def test_bad_metrics_raise(tmp_path, text, message):
    path = tmp_path / "metrics.csv"
    path.write_text(text)
    with pytest.raises(RunError, match=message):
        read_metrics(path)


def test_bad_config_raises(tmp_path):
    folder = write_run(tmp_path / "r", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
    (folder / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="not valid JSON"):
        read_run(folder)


def test_find_runs_lists_run_folders_newest_first(tmp_path):
    old = write_run(tmp_path / "runs" / "old", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
    new = write_run(tmp_path / "runs" / "group" / "new", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)], checkpoint=False)
    (tmp_path / "runs" / "not-a-run").mkdir()
    os.utime(old / "metrics.csv", (1, 1))
    os.utime(old, (1, 1))
    assert find_runs(tmp_path / "runs") == [new, old]
    assert find_runs(tmp_path / "missing") == []
