"""Replay snapshots: when the trainer takes them, what they hold (recomputed independently from the checkpoint),
the replay.npz store's round trip and size, hostile files, resuming, and runs that have none."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

from convtui.core.nn.architectures import build_model
from convtui.core.storage.checkpoint import load_model
from convtui.core.storage.datasets import Dataset, load_split, to_float
from convtui.core.storage.replay_store import MAX_REPLAY_BYTES, ReplayError, read_replay, write_replay
from convtui.core.storage.run_folder import REPLAY_FILE, read_run
from convtui.core.training import replay as replays
from convtui.core.training.config import TrainConfig
from convtui.core.training.events import Step
from convtui.core.training.trainer import Trainer

PERCENTILES = (5, 25, 50, 75, 95)


@pytest.mark.parametrize("steps_per_epoch, expected", [
    (600, [0, 6, 18, 60, 180]),  # full MNIST at batch 100: after 1%, 3%, 10%, 30%
    (30, [0, 1, 3, 9]),  # 1% and 3% both round to step 1
    (10, [0, 1, 3]),  # 10% is step 1 as well
    (2, [0, 1]),
    (1, [0]),  # the only step is the epoch's end, recorded as such
    (3, [0, 1]),  # 30% of 3 is 0.9 -> step 1
])
def test_recording_steps_inside_the_first_epoch(steps_per_epoch, expected):
    assert replays.recording_steps(steps_per_epoch) == expected


@pytest.fixture(scope="module")
def test_digits():
    return load_split("test").head(300)


def train(folder, model="softmax", epochs=2, limit=300, batch_size=10, stop_after=None, resume=None, val=None,
          validate=True):
    config = TrainConfig.for_model(model, epochs=epochs, limit=limit, batch_size=batch_size, validate=validate)
    trainer = Trainer(config, out_dir=folder, resume=resume, val_data=val)
    events = []
    for event in trainer.events():
        events.append(event)
        if stop_after is not None and isinstance(event, Step) and event.global_step == stop_after:
            trainer.request_stop()
    return trainer, events


def test_a_tiny_run_records_at_the_start_the_first_epochs_points_and_every_epoch_end(tmp_path, test_digits):
    _, events = train(tmp_path / "run", val=test_digits)  # 300 images / 10 = 30 steps per epoch
    assert events[-1].reason == "completed"
    replay = read_replay(tmp_path / "run" / REPLAY_FILE)
    assert [(s.epoch, s.step) for s in replay.snapshots] == [(0, 0), (0, 1), (0, 3), (0, 9), (0, 30), (1, 30)]
    assert [s.trained_steps for s in replay.snapshots] == [0, 1, 3, 9, 30, 60]
    assert replay.label(4) == "step 30 of epoch 1 (5 of 6)"
    assert replay.source == "test" and replay.sample_size == 300


def test_the_last_snapshot_is_the_checkpoint_recomputed_independently(tmp_path, test_digits):
    train(tmp_path / "run", model="cnn", epochs=1, limit=40, batch_size=20, val=test_digits)
    replay = read_replay(tmp_path / "run" / REPLAY_FILE)
    model, _ = load_model(tmp_path / "run" / "checkpoint.npz")
    logits = model.forward(to_float(test_digits.images), training=False).astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    guesses = probs.argmax(axis=1)
    confusion = np.zeros((10, 10), dtype=np.int64)
    for true, guess in zip(test_digits.labels, guesses):
        confusion[true, guess] += 1
    last = replay.snapshots[-1]
    assert (last.confusion == confusion).all()
    # The shown digits: the first 4 of each class among the sample, in class order.
    chosen = [i for c in range(10) for i in [j for j, label in enumerate(test_digits.labels) if label == c][:4]]
    assert (replay.digit_labels == test_digits.labels[chosen]).all()
    assert (replay.digit_images == test_digits.images[chosen]).all()
    assert (last.predicted == guesses[chosen]).all()
    np.testing.assert_allclose(last.confidence.astype(np.float64), probs[chosen, guesses[chosen]], rtol=1e-3)
    for name, bands in zip(replay.param_names, last.bands):
        value = model.state_dict()[name]
        np.testing.assert_allclose(bands, np.percentile(value, PERCENTILES), rtol=1e-6, atol=1e-7)
    conv1 = model.state_dict()["conv1.w"]  # (K, C, FH, FW)
    np.testing.assert_allclose(last.filters.astype(np.float32), conv1.mean(axis=1), rtol=1e-3, atol=1e-4)
    shown = replay.digit_predictions(len(replay) - 1)
    assert shown.n_errors == int((guesses[chosen] != test_digits.labels[chosen]).sum()) and shown.n_evaluated == 40


def test_a_run_without_a_test_set_records_training_digits(tmp_path):
    train(tmp_path / "run", epochs=1, validate=False)
    replay = read_replay(tmp_path / "run" / REPLAY_FILE)
    assert replay.source == "train" and replay.sample_size == 300
    assert (replay.digit_labels == load_split("train").head(300).labels[
        [i for c in range(10) for i in np.flatnonzero(load_split("train").head(300).labels == c)[:4]]]).all()


def test_no_folder_records_nothing(test_digits):
    trainer = Trainer(TrainConfig.for_model("softmax", epochs=1, limit=50, batch_size=10), val_data=test_digits)
    list(trainer.events())
    assert trainer.recorder is None


def synthetic_replay(n_snapshots, model="cnn", digits=40, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    names = [p.name for p in build_model(model, 0).params()]
    shots = [replays.ReplaySnapshot(
        epoch=k, step=600, trained_steps=600 * (k + 1),
        confusion=rng.multinomial(1000, np.ones(classes * classes) / classes ** 2).reshape(classes, classes)
        .astype(np.int32),
        predicted=rng.integers(0, classes, digits).astype(np.uint8),
        confidence=rng.random(digits).astype(np.float16),
        bands=np.sort(rng.normal(size=(len(names), 5)), axis=1).astype(np.float32),
        filters=rng.normal(size=(32, 5, 5)).astype(np.float16) if model == "cnn" else None)
        for k in range(n_snapshots)]
    return replays.Replay("test", 1000, rng.integers(0, 256, (digits, 28, 28)).astype(np.uint8),
                          np.repeat(np.arange(classes), digits // classes).astype(np.uint8), names, shots)


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_store_round_trip_is_exact(tmp_path, model):
    replay = synthetic_replay(5, model)
    back = read_replay(write_replay(tmp_path / REPLAY_FILE, replay))
    assert back.source == "test" and back.sample_size == 1000 and back.param_names == replay.param_names
    assert (back.digit_images == replay.digit_images).all() and (back.digit_labels == replay.digit_labels).all()
    for mine, theirs in zip(replay.snapshots, back.snapshots, strict=True):
        assert (mine.epoch, mine.step, mine.trained_steps) == (theirs.epoch, theirs.step, theirs.trained_steps)
        for name in ("confusion", "predicted", "confidence", "bands"):
            assert (getattr(mine, name) == getattr(theirs, name)).all()
        assert (theirs.filters is None) if mine.filters is None else (mine.filters == theirs.filters).all()


def test_a_ten_epoch_cnn_record_stays_small(tmp_path):
    """1 start + 4 first-epoch points + 10 epoch ends, with the cnn's real parameter list and conv1 shape."""
    replay = synthetic_replay(15, "cnn")
    size = os.path.getsize(write_replay(tmp_path / REPLAY_FILE, replay))
    per_snapshot = 10 * 10 * 4 + 40 * (1 + 2) + len(replay.param_names) * 5 * 4 + 32 * 25 * 2 + 16
    assert 40 * 28 * 28 + 15 * per_snapshot < size < 100_000  # the data itself, plus zip and .npy headers


# ---------------------------------------------------------------- hostile and damaged files
def arrays_of(replay, tmp_path):
    path = write_replay(tmp_path / "good.npz", replay)
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def write_arrays(path, arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def with_meta(arrays, **changes):
    meta = json.loads(arrays["meta"].tobytes())
    meta.update(changes)
    return {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}


HOSTILE = {
    "wrong dtype": (lambda a: {**a, "confusion": a["confusion"].astype(np.float64)},
                    "its confusion member holds float64, not int32"),
    "shape mismatch": (lambda a: {**a, "predicted": a["predicted"][:, :-1]}, "its predicted member has shape"),
    "more snapshots declared": (lambda a: with_meta(a, snapshots=20_000), "its epoch member has shape (3,)"),
    "too many snapshots declared": (lambda a: with_meta(a, snapshots=10 ** 12), "snapshots is not a whole number"),
    "missing member": (lambda a: {k: v for k, v in a.items() if k != "bands"}, "it has no bands member"),
    "extra member": (lambda a: {**a, "surprise": np.zeros(3)}, "a member this format does not have"),
    "no meta": (lambda a: {k: v for k, v in a.items() if k != "meta"}, "no meta member"),
    "meta not JSON": (lambda a: {**a, "meta": np.frombuffer(b"{not json", dtype=np.uint8)}, "not valid JSON"),
    "other format": (lambda a: with_meta(a, format="something"), "not a convtui replay file"),
    "newer version": (lambda a: with_meta(a, version=99), "version 99 is not one this convtui reads"),
    "label out of range": (lambda a: {**a, "digit_labels": np.full_like(a["digit_labels"], 200)},
                           "not one of its 10 classes"),
    "confidence above 1": (lambda a: {**a, "confidence": np.full_like(a["confidence"], 2.0)},
                           "not a probability"),
    "nan percentile": (lambda a: {**a, "bands": np.full_like(a["bands"], np.nan)}, "not a finite number"),
    "negative step": (lambda a: {**a, "step": -a["step"] - 1}, "negative"),
    "counts more digits": (lambda a: {**a, "confusion": a["confusion"] * 2}, "does not count the 1,000 digits"),
    "pickled object": (lambda a: {**a, "epoch": np.array([object()] * 3)}, "not plain numbers"),
    "images not 2-D": (lambda a: {**a, "digit_images": a["digit_images"].reshape(40, -1)}, "not (digits, height"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_replay_files_give_one_clear_line(tmp_path, case):
    damage, expected = HOSTILE[case]
    arrays = damage(arrays_of(synthetic_replay(3), tmp_path))
    path = tmp_path / REPLAY_FILE
    with open(path, "wb") as handle:
        if case == "pickled object":  # np.savez would pickle it; a hand-made archive can hold anything
            with zipfile.ZipFile(handle, "w") as archive:
                for name, value in arrays.items():
                    buffer = io.BytesIO()
                    np.save(buffer, value, allow_pickle=True)
                    archive.writestr(f"{name}.npy", buffer.getvalue())
        else:
            np.savez(handle, **arrays)
    with pytest.raises(ReplayError) as error:
        read_replay(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message and expected in message, message


def huge_member_archive(path, arrays):
    """An archive whose `step` member's header declares 10^12 elements but holds 8 bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in arrays.items():
            buffer = io.BytesIO()
            if name == "step":
                header = {"descr": "<i4", "fortran_order": False, "shape": (10 ** 12,)}
                np.lib.format.write_array_header_1_0(buffer, header)
                buffer.write(b"\0" * 8)
            else:
                np.save(buffer, value)
            archive.writestr(f"{name}.npy", buffer.getvalue())


@pytest.mark.parametrize("damage, expected", [
    (lambda p, a: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "damaged replay file"),
    (lambda p, a: p.write_bytes(b""), "damaged replay file"),
    (lambda p, a: p.write_bytes(os.urandom(3000)), "damaged replay file"),
    (lambda p, a: huge_member_archive(p, a), "claims shape (1000000000000,)"),
    (lambda p, a: os.truncate(p, MAX_REPLAY_BYTES + 1), "over the 64 MB a replay file may be"),
    (lambda p, a: (p.unlink(), os.mkfifo(p)), "is not a regular file"),
    (lambda p, a: (p.unlink(), p.mkdir()), "is not a regular file"),
])
def test_damaged_files_give_one_clear_line_and_the_run_still_opens(tmp_path, damage, expected):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy,lr\n1,0.5,0.9,0.4,0.91,0.1\n")
    path = folder / REPLAY_FILE
    arrays = arrays_of(synthetic_replay(3), tmp_path)
    write_arrays(path, arrays)
    damage(path, arrays)
    run = read_run(folder)  # the run itself opens
    assert run.epochs == [1.0] and run.replay_file == path
    with pytest.raises(ReplayError) as error:
        run.read_replay()
    message = str(error.value)
    assert str(path) in message and "\n" not in message and expected in message, message


# ---------------------------------------------------------------- resume, old runs
def test_resume_keeps_the_earlier_snapshots_and_appends(tmp_path, test_digits):
    folder = tmp_path / "run"
    train(folder, epochs=1, val=test_digits)
    first = read_replay(folder / REPLAY_FILE)
    train(folder, epochs=3, resume=folder / "checkpoint.npz", val=test_digits)
    after = read_replay(folder / REPLAY_FILE)
    assert [(s.epoch, s.step, s.trained_steps) for s in after.snapshots] == [
        (0, 0, 0), (0, 1, 1), (0, 3, 3), (0, 9, 9), (0, 30, 30), (1, 30, 60), (2, 30, 90)]
    for old, kept in zip(first.snapshots, after.snapshots):
        assert (old.confusion == kept.confusion).all() and (old.bands == kept.bands).all()


def test_resume_after_a_stop_continues_from_the_stopped_step(tmp_path, test_digits):
    folder = tmp_path / "run"
    _, events = train(folder, epochs=2, stop_after=5, val=test_digits)
    assert events[-1].reason == "stopped"
    stopped = read_replay(folder / REPLAY_FILE)
    assert [(s.step, s.trained_steps) for s in stopped.snapshots] == [(0, 0), (1, 1), (3, 3), (5, 5)]
    train(folder, epochs=2, resume=folder / "checkpoint.npz", val=test_digits)
    after = read_replay(folder / REPLAY_FILE)
    # The stopped epoch is trained again from the saved weights: 30 more steps on top of the 5.
    assert [(s.epoch, s.step, s.trained_steps) for s in after.snapshots] == [
        (0, 0, 0), (0, 1, 1), (0, 3, 3), (0, 5, 5), (0, 30, 35), (1, 30, 65)]


def test_resume_drops_snapshots_newer_than_the_checkpoint_and_restarts_a_damaged_record(tmp_path):
    replay = synthetic_replay(6)
    assert [s.trained_steps for s in replay.up_to(1800).snapshots] == [600, 1200, 1800]
    folder = tmp_path / "run"
    train(folder, epochs=1, limit=50, val=load_split("test").head(100))
    (folder / REPLAY_FILE).write_bytes(b"garbage")
    train(folder, epochs=2, limit=50, resume=folder / "checkpoint.npz", val=load_split("test").head(100))
    assert [(s.epoch, s.step) for s in read_replay(folder / REPLAY_FILE).snapshots] == [(1, 0), (1, 5)]


def test_an_old_run_without_replay_opens_as_before(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "metrics.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy,lr\n1,0.5,0.9,0.4,0.91,0.1\n")
    run = read_run(folder)
    assert run.replay_file is None and run.read_replay() is None
    assert run.summary() == "old | ? | 1 epoch | test 91.00% | no checkpoint"


def test_choose_sample_takes_the_first_of_each_class_in_class_order():
    labels = np.array([3, 1, 1, 0, 3, 1, 2, 0, 1], dtype=np.uint8)
    data = Dataset(np.arange(9 * 4, dtype=np.uint8).reshape(9, 2, 2), labels, classes=4)
    sample = replays.choose_sample(data, "test", size=8, per_class=2)
    assert sample.digits.tolist() == [3, 7, 1, 2, 6, 0, 4]  # class 2 has one digit in the first 8
    assert len(sample.labels) == 8
