"""Reading run folders as `convtui train --out DIR` writes them, and clear errors for bad ones."""

import errno
import json
import math
import os
import random
import re

import pytest

from convtui.core.storage import run_folder
from convtui.core.storage.run_folder import RunError, find_runs, read_config, read_metrics, read_run

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


GOOD_ROW = "1,0.5,0.9,0.4,0.91,0.5\n"


def _huge(path, size):
    with open(path, "wb") as handle:  # sparse: no disk used, but stat says `size`
        handle.truncate(size)


# Bytes of a metrics.csv (or a way to make it) and the exact message: every decoding problem is a RunError.
BAD_METRICS = [
    ("not utf-8", (HEADER + "1,0.5,").encode() + b"\xff\xfe,0.4,0.91,0.5\n",
     "metrics.csv is not UTF-8 text (byte 51): damaged or not written by convtui"),
    ("oversized field", (HEADER + "1," + "9" * 200_000 + ",0.9,0.4,0.91,0.5\n").encode(),
     "metrics.csv line 2 is not valid CSV: field larger than field limit (131072)"),
    ("nul byte", (HEADER + "1,0.5\0,0.9,0.4,0.91,0.5\n").encode(),
     "metrics.csv line 2 holds a NUL byte: the file is damaged"),
    ("infinite epoch", (HEADER + "inf,0.5,0.9,0.4,0.91,0.5\n").encode(),
     "metrics.csv line 2: the epoch is inf, not a number of epochs"),
    ("nan epoch", (HEADER + "nan,0.5,0.9,0.4,0.91,0.5\n").encode(),
     "metrics.csv line 2: the epoch is nan, not a number of epochs"),
    ("accuracy over 1", (HEADER + "1,0.5,91,0.4,0.91,0.5\n").encode(),
     "metrics.csv line 2: accuracy is 91.0, not a fraction 0..1"),
    ("infinite val accuracy", (HEADER + "1,0.5,0.9,0.4,inf,0.5\n").encode(),
     "metrics.csv line 2: val_accuracy is inf, not a fraction 0..1"),
    ("column twice", ("epoch,loss,accuracy,val_loss,val_accuracy,lr,lr\n" + "1,0.5,0.9,0.4,0.91,0.5,0.5\n").encode(),
     "metrics.csv names a column twice"),
    ("huge file", lambda p: _huge(p, run_folder.MAX_METRICS_BYTES + 1),
     "metrics.csv is 4,194,305 bytes, over the 4,096 KB a run file may be"),
    ("fifo", os.mkfifo, "metrics.csv is not a regular file"),
    ("/dev/zero", lambda p: os.symlink("/dev/zero", p), "metrics.csv is not a regular file"),
    ("folder", lambda p: p.mkdir(), "metrics.csv is not a regular file"),
    ("symlink loop", lambda p: os.symlink(p.name, p), "metrics.csv: Too many levels of symbolic links"),
    ("dangling symlink", lambda p: os.symlink("gone", p), "metrics.csv is a symlink to nothing"),
]


@pytest.mark.parametrize("what, content, message", BAD_METRICS, ids=[case[0] for case in BAD_METRICS])
def test_every_bad_metrics_file_is_a_run_error(tmp_path, what, content, message):
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "metrics.csv"
    content(path) if callable(content) else path.write_bytes(content)
    with pytest.raises(RunError) as caught:
        read_run(folder)
    assert str(caught.value).startswith(str(folder)) or str(caught.value).startswith("cannot read " + str(folder))
    assert message in str(caught.value)


def test_a_diverged_loss_is_kept_and_not_final(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(HEADER + "1,0.5,0.9,0.4,0.91,0.5\n2,inf,0.1,nan,,0.5\n")
    run = read_run(path.parent)
    assert run.metrics["loss"] == [0.5, math.inf]
    assert run.final("loss") == 0.5 and run.final("val_accuracy") == 0.91


BAD_CONFIGS = [
    ("garbage", b"\x89PNG\r\n\x1a\n garbage", "config.json is not UTF-8 text (byte 0)"),
    ("not json", b"{not json", "config.json is not valid JSON"),
    ("nested too deep", b"[" * 100_000 + b"]" * 100_000, "config.json is nested too deeply to be a convtui config"),
    ("huge integer", b'{"epochs": ' + b"9" * 5000 + b"}", "config.json is not valid JSON"),
    ("a list", b"[1, 2]", "config.json does not hold a JSON object"),
    ("nul byte", b'{"model": "cnn\x00"}', "config.json line 1 holds a NUL byte"),
    ("huge file", lambda p: _huge(p, run_folder.MAX_CONFIG_BYTES + 1),
     "config.json is 1,048,577 bytes, over the 1,024 KB a run file may be"),
    ("fifo", os.mkfifo, "config.json is not a regular file"),
]


@pytest.mark.parametrize("what, content, message", BAD_CONFIGS, ids=[case[0] for case in BAD_CONFIGS])
def test_every_bad_config_is_a_run_error(tmp_path, what, content, message):
    folder = write_run(tmp_path / "r", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
    (folder / "config.json").unlink()
    content(folder / "config.json") if callable(content) else (folder / "config.json").write_bytes(content)
    with pytest.raises(RunError, match="^" + re.escape(str(folder / message))):
        read_run(folder)


@pytest.mark.parametrize("model, shown", [("cnn", "cnn"), ({"a": 1}, "?"), ("x" * 1000, "?"), ("a\nb", "?"), (7, "?")])
def test_a_strange_model_name_is_shown_as_a_question_mark(tmp_path, model, shown):
    folder = write_run(tmp_path / "r", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
    (folder / "config.json").write_text(json.dumps({"model": model}))
    assert read_run(folder).model_name == shown


def _refuse(monkeypatch, target, function="stat"):
    """Fake a permission refusal on one path (the tests run as root here, where chmod does not refuse)."""
    real = getattr(os, function)

    def refusing(path, *args, **kwargs):
        if os.fspath(path) == os.fspath(target):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, function, refusing)


def test_a_folder_that_cannot_be_looked_into_is_a_run_error(monkeypatch, tmp_path):
    folder = write_run(tmp_path / "r", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
    _refuse(monkeypatch, folder / "checkpoint.npz")
    with pytest.raises(RunError, match=f"^cannot read {folder}/checkpoint.npz: Permission denied$"):
        read_run(folder)


def test_an_unreadable_metrics_file_is_a_run_error(monkeypatch, tmp_path):
    folder = write_run(tmp_path / "r", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
    _refuse(monkeypatch, folder / "metrics.csv", "open")
    with pytest.raises(RunError, match=f"^cannot read {folder}/metrics.csv: Permission denied$"):
        read_run(folder)


@pytest.mark.parametrize("make, message", [
    (lambda p: os.symlink(p.name, p), "cannot read {p}: Too many levels of symbolic links"),
    (lambda p: os.mkfifo(p), "{p} is not a run folder or a .npz checkpoint"),
    (lambda p: (p.mkdir(), os.mkfifo(p / "checkpoint.npz")), "{p}/checkpoint.npz is not a regular file"),
    (lambda p: (p.mkdir(), os.symlink("checkpoint.npz", p / "checkpoint.npz")),
     "cannot read {p}/checkpoint.npz: Too many levels of symbolic links"),
])
def test_strange_folders_are_run_errors(tmp_path, make, message):
    path = tmp_path / "run"
    make(path)
    with pytest.raises(RunError) as caught:
        read_run(path)
    assert str(caught.value) == message.format(p=path)


def test_find_runs_lists_unreadable_entries_and_never_crashes(monkeypatch, tmp_path):
    root = tmp_path / "runs"
    good = write_run(root / "good", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
    os.symlink("loop", root / "loop")  # a symlink loop: listed, and opening it says why
    os.symlink("gone", root / "dangling")
    os.mkfifo(root / "fifo")  # not a folder: not a run
    (root / "group").mkdir()
    os.symlink(".", root / "group" / "self")  # a loop back up one level: not followed for ever
    refused = root / "refused"
    refused.mkdir()
    _refuse(monkeypatch, refused / "metrics.csv")
    found = find_runs(root)
    assert sorted(found) == sorted([good, root / "loop", root / "dangling", refused])
    for path in found:
        if path != good:
            with pytest.raises(RunError):
                read_run(path)


def test_find_runs_says_when_the_root_cannot_be_listed(monkeypatch, tmp_path):
    (tmp_path / "runs").mkdir()
    _refuse(monkeypatch, tmp_path / "runs", "scandir")
    with pytest.raises(RunError, match=f"^cannot list {tmp_path}/runs: Permission denied$"):
        find_runs(tmp_path / "runs")


def _mutations(seed, data, count):
    """A seeded mutator: flip, insert, delete or duplicate bytes, truncate, or splice in a hostile token."""
    tokens = [b"\xff", b"\0", b'"', b"\r", b"inf", b"nan", b"-", b"1e999", b"[" * 50_000, b"9" * 200_000, b",,,",
              b"\n" * 3, b"\xc3", b"{", b"}"]
    rng = random.Random(seed)
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(mutated) + 1)
            action = rng.randrange(6)
            if action == 0 and mutated:
                mutated[min(at, len(mutated) - 1)] ^= 1 << rng.randrange(8)
            elif action == 1:
                mutated[at:at] = bytes([rng.randrange(256)])
            elif action == 2:
                del mutated[at:at + rng.randint(1, 8)]
            elif action == 3:
                mutated[at:at] = mutated[max(0, at - 20):at]
            elif action == 4:
                del mutated[at:]
            else:
                mutated[at:at] = rng.choice(tokens)
        yield bytes(mutated)


@pytest.mark.parametrize("name, reader", [("metrics.csv", read_metrics), ("config.json", read_config)])
def test_mutated_run_files_give_a_result_or_a_run_error(tmp_path, name, reader):
    """2,000 seeded mutations of a real file per reader: each one reads or is a RunError, nothing else."""
    from convtui.core.training.config import TrainConfig

    good = {"metrics.csv": (HEADER + GOOD_ROW + "2,inf,0.95,,,0.25\n").encode(),
            "config.json": json.dumps({"config": TrainConfig.for_model("cnn").to_dict(), "seed": 0}).encode()}[name]
    path = tmp_path / name
    outcomes = {"read": 0, "RunError": 0}
    for data in _mutations(10, good, 2000):
        path.write_bytes(data)
        try:
            reader(path)
            outcomes["read"] += 1
        except RunError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc)
            outcomes["RunError"] += 1
    assert outcomes["read"] >= 20 and outcomes["RunError"] >= 1000, outcomes  # both paths were exercised


def test_replay_file_is_found_only_when_present_and_never_read_by_read_run(tmp_path):
    """read_run only notes replay.npz: a damaged one (or a dangling symlink) never stops the run opening."""
    old = write_run(tmp_path / "old", [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
    assert read_run(old).replay_file is None and read_run(old).read_replay() is None
    for name, make in (("garbage", lambda p: p.write_bytes(b"\0" * 10)),
                       ("dangling", lambda p: p.symlink_to(tmp_path / "nowhere"))):
        folder = write_run(tmp_path / name, [(1, 0.5, 0.9, 0.4, 0.91, 0.5)])
        make(folder / run_folder.REPLAY_FILE)
        run = read_run(folder)
        assert run.replay_file == folder / run_folder.REPLAY_FILE
        assert run.summary() == f"{name} | cnn | 1 epoch | test 91.00%"
        with pytest.raises(run_folder.ConvtuiError) as error:
            run.read_replay()
        assert str(folder / run_folder.REPLAY_FILE) in str(error.value) and "\n" not in str(error.value)


def test_a_folder_holding_only_a_replay_is_not_a_run(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / run_folder.REPLAY_FILE).write_bytes(b"PK")
    with pytest.raises(RunError, match="holds neither metrics.csv nor checkpoint.npz"):
        read_run(tmp_path / "r")
    assert find_runs(tmp_path) == []
