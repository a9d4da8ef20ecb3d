"""Checkpoints: exact round trip without pickles, clear errors for damaged or foreign files, atomic writes."""

import json
from pathlib import Path

import numpy as np
import pytest

from convtui.core.storage import atomic
from convtui.core.storage.checkpoint import (CheckpointError, load_checkpoint, load_model, restore_optimizer,
                                     restore_params, save_checkpoint)
from convtui.core.training.config import TrainConfig
from convtui.core.nn.architectures import build_model
from convtui.core.nn.optimizers import make_optimizer


SHUFFLE_STATE = np.random.default_rng(7).bit_generator.state


@pytest.fixture
def saved(tmp_path):
    config = TrainConfig.for_model("mlp", epochs=3, seed=5)
    model = build_model("mlp", seed=5)
    optimizer = make_optimizer("adam", model.params())
    for p in model.params():
        p.grad[...] = np.random.default_rng(1).standard_normal(p.value.shape)
    optimizer.step(0.01)
    history = [{"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.91, "lr": 0.01}]
    path = save_checkpoint(tmp_path / "checkpoint.npz", model=model, optimizer=optimizer, config=config,
                           epoch=1, history=history, rng_states={"shuffle": SHUFFLE_STATE})
    return path, model, optimizer, config


def test_round_trip_is_exact(saved):
    path, model, optimizer, config = saved
    checkpoint = load_checkpoint(path)
    assert checkpoint.model_name == "mlp" and checkpoint.epoch == 1 and checkpoint.config == config
    assert checkpoint.meta["rng"]["shuffle"] == SHUFFLE_STATE  # PCG64 states hold 128-bit ints
    assert SHUFFLE_STATE["state"]["state"] > 2 ** 64
    fresh = build_model("mlp", seed=99)
    restore_params(fresh, checkpoint, "mlp")
    for a, b in zip(model.params(), fresh.params()):
        np.testing.assert_array_equal(a.value, b.value)
    fresh_optimizer = make_optimizer("adam", fresh.params())
    restore_optimizer(fresh_optimizer, checkpoint)
    assert fresh_optimizer.t == 1
    np.testing.assert_array_equal(fresh_optimizer.v["dense1.w"], optimizer.v["dense1.w"])


def test_plain_numpy_can_read_it_without_pickle(saved):
    path = saved[0]
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive["meta"].tobytes())
        assert meta["model"] == "mlp" and archive["param/dense1.w"].shape == (784, 128)
        assert "opt/dense1.w/m" in archive.files


def test_load_model_rebuilds_the_saved_architecture(saved):
    path, model, _, _ = saved
    loaded, checkpoint = load_model(path)
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


def test_other_model_is_refused(saved):
    with pytest.raises(CheckpointError, match="checkpoint holds model 'mlp', not 'cnn'"):
        restore_params(build_model("cnn", seed=0), load_checkpoint(saved[0]), "cnn")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.npz")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_damaged_file(saved, damage):
    path = saved[0]
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "garbage":
        raw = bytearray(b"not a zip file" * 100)
    else:
        raw[len(raw) // 3: len(raw) // 3 + 64] = bytes(64)  # zeroes in the middle of a weight array: bad CRC
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged or not a convtui checkpoint"):
        load_model(path)


def test_npz_that_is_not_ours(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.ones(3))
    with pytest.raises(CheckpointError, match="no 'meta' entry"):
        load_checkpoint(path)
    np.savez(path, meta=np.frombuffer(b'{"format": "keras"}', dtype=np.uint8))
    with pytest.raises(CheckpointError, match="not a convtui checkpoint"):
        load_checkpoint(path)
    np.savez(path, meta=np.frombuffer(b"{broken json", dtype=np.uint8))
    with pytest.raises(CheckpointError, match="damaged checkpoint metadata"):
        load_checkpoint(path)


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "metrics.csv"
    atomic.write_text(target, "old\n")

    def failing(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, failing)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]  # no temp file left behind


def test_a_text_file_is_named_as_not_an_archive(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(CheckpointError, match=r"not a convtui checkpoint \(not an \.npz archive\)$"):
        load_checkpoint(path)


def test_atomic_writes_get_the_mode_a_plain_open_would(tmp_path):
    import stat

    umask = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                     if line.startswith("Umask:")).split()[1], 8)
    atomic.write_text(tmp_path / "metrics.csv", "epoch\n")
    # mkstemp alone would leave 0600: a run trained on a shared server would be unreadable to the team.
    assert stat.S_IMODE((tmp_path / "metrics.csv").stat().st_mode) == 0o666 & ~umask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(plain.stat().st_mode) == stat.S_IMODE((tmp_path / "metrics.csv").stat().st_mode)


def test_a_failed_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    import errno
    import os

    target = tmp_path / "checkpoint.npz"
    atomic.write_text(target, "old\n")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(atomic.WriteError, match=rf"^cannot write {target}: No space left on device$"):
        atomic.write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_stale_temporaries_of_killed_writes_are_removed(tmp_path):
    (tmp_path / ".checkpoint.npz.0123abcd.tmp").write_bytes(b"half")
    (tmp_path / ".metrics.csv.deadbeef.tmp").write_text("epoch")
    (tmp_path / "notes.tmp").write_text("mine")  # not ours: kept
    removed = atomic.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".checkpoint.npz.0123abcd.tmp", ".metrics.csv.deadbeef.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp"]


@pytest.mark.parametrize("model_name", ["softmax", "mlp", "cnn"])
def test_a_checkpoint_describes_its_own_architecture(tmp_path, model_name):
    """Another program can rebuild the model from the file alone: the layers, their hyper-parameters and the
    input scaling are in `meta`, and the arrays carry the layers' names."""
    from convtui.core.nn.architectures import build_from_architecture

    model = build_model(model_name, seed=2)
    path = save_checkpoint(tmp_path / "c.npz", model=model, optimizer=None,
                           config=TrainConfig.for_model(model_name), epoch=0)
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive["meta"].tobytes())
        names = {key for key in archive.files if key.startswith("param/")}
    assert meta["version"] == 2 and meta["input"].startswith("pixel / 255")
    assert meta["architecture"] == json.loads(json.dumps(model.architecture()))
    weighted = [spec["name"] for spec in meta["architecture"]["layers"] if spec["kind"] in ("Conv2D", "Dense")]
    assert names == {f"param/{name}.{part}" for name in weighted for part in ("w", "b")}
    rebuilt = build_from_architecture(meta["architecture"], init_weights=False)
    rebuilt.load_state_dict(load_checkpoint(path).state_dict())
    x = np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(rebuilt.forward(x), model.forward(x))


def test_version_1_checkpoints_still_load_and_resume(saved, tmp_path):
    """Files written before the architecture was stored: the preset name gives it."""
    path, model, optimizer, config = saved
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    for key in ("architecture", "input", "steps_into_epoch"):
        meta.pop(key, None)
    meta["version"] = 1
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    old = tmp_path / "v1.npz"
    np.savez(old, **arrays)
    loaded, checkpoint = load_model(old)
    assert checkpoint.meta["version"] == 1 and checkpoint.architecture["layers"][-1]["name"] == "output"
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    fresh = make_optimizer("adam", loaded.params())
    restore_optimizer(fresh, checkpoint)
    assert fresh.t == optimizer.t


ROW = {"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.91, "lr": 0.01, "steps": 600,
       "elapsed_s": 31.5}


@pytest.mark.parametrize("meta_change, fragment", [
    ({"history": [{**ROW, "val_accuracy": 57.0}]},
     "history row 1: val_accuracy 57.0 is not a finite number from 0 to 1"),
    ({"history": [{**ROW, "loss": -3}]}, "history row 1: loss -3 is not a finite number from 0 to inf"),
    ({"history": [{**ROW, "accuracy": float("nan")}]}, "history row 1: accuracy nan is not a finite number"),
    ({"history": [{**ROW, "lr": "fast"}]}, "history row 1: lr 'fast' is not a finite number"),
    ({"history": [{**ROW, "epoch": 99}]}, "history row 1 is for epoch 99"),
    ({"history": [{**ROW, "epoch": True}]}, "history row 1 is for epoch True"),
    ({"history": [{k: v for k, v in ROW.items() if k != "loss"}]}, "history row 1 does not hold epoch, loss"),
    ({"history": [{**ROW, "secret": 1}]}, "history row 1 does not hold epoch, loss"),
    ({"history": [ROW, {**ROW, "epoch": 2}]}, "at most one row per epoch"),
    ({"history": "rows"}, "at most one row per epoch"),
    ({"steps_into_epoch": 10 ** 9}, "steps_into_epoch must be a whole number from 0 to 10000000"),
    ({"steps_into_epoch": -1}, "steps_into_epoch must be a whole number"),
    ({"steps_into_epoch": 2.5}, "steps_into_epoch must be a whole number"),
], ids=repr)
def test_metadata_out_of_its_range_is_refused_by_name(saved, tmp_path, meta_change, fragment):
    """A run's history goes into a resumed run's metrics.csv and onto the Runs screen as is: each value in range."""
    path = saved[0]
    with np.load(path, allow_pickle=False) as data:
        members = {name: data[name] for name in data.files}
    meta = {**json.loads(members["meta"].tobytes()), **meta_change}
    members["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, **members)
    with pytest.raises(CheckpointError, match="damaged checkpoint metadata") as error:
        load_checkpoint(damaged)
    assert fragment in str(error.value) and str(damaged) in str(error.value)


def test_rows_without_validation_or_from_before_steps_were_kept_still_load(saved, tmp_path):
    path = saved[0]
    with np.load(path, allow_pickle=False) as data:
        members = {name: data[name] for name in data.files}
    meta = json.loads(members["meta"].tobytes())
    meta["history"] = [{"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": None, "val_accuracy": None,
                        "lr": 0.01}]
    members["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **members)
    assert load_checkpoint(tmp_path / "old.npz").meta["history"] == meta["history"]


@pytest.mark.parametrize("kind, make", [
    ("a folder", lambda path: path.mkdir()),
    ("a FIFO (named pipe)", lambda path: __import__("os").mkfifo(path)),
    ("a character device", lambda path: path.symlink_to("/dev/zero")),
])
def test_a_checkpoint_name_that_is_no_file_is_called_what_it_is(tmp_path, kind, make):
    path = tmp_path / "checkpoint.npz"
    make(path)
    with pytest.raises(CheckpointError, match=rf"checkpoint.npz: is {kind.replace('(', '[(]').replace(')', '[)]')}, "
                                              "not a checkpoint file$"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"missing.npz: no such checkpoint file$"):
        load_checkpoint(tmp_path / "missing.npz")


def test_an_oversized_meta_is_refused_for_its_size(saved, tmp_path):
    from convtui.core.storage.checkpoint_meta import MAX_META_BYTES

    with np.load(saved[0], allow_pickle=False) as data:
        members = {name: data[name] for name in data.files}
    members["meta"] = np.zeros(MAX_META_BYTES + 1, dtype=np.uint8)
    np.savez(tmp_path / "big.npz", **members)
    with pytest.raises(CheckpointError, match=r"damaged checkpoint metadata \(8,388,609 bytes, more than the 8 MB"):
        load_checkpoint(tmp_path / "big.npz")
