"""The training generator on real MNIST through the real kernels: events, files, determinism, resume,
stop and divergence. Every test that trains is marked `slow` (see pyproject.toml); the formatter's is not."""

import json
import math
import threading

import numpy as np
import pytest

from convtui.core.storage.checkpoint import CheckpointError, load_checkpoint, load_model
from convtui.core.training.config import TrainConfig
from convtui.core.storage.datasets import load_split
from convtui.core.training.evaluate import evaluate
from convtui.core.training.events import Compiling, Done, EpochEnd, Step, TrainStart
from convtui.core.training.text import format_confusion_matrix, format_event
from convtui.core.storage.run_folder import read_metrics, read_run
from convtui.core.storage.run_folder import METRICS_COLUMNS
from convtui.core.training.trainer import Trainer


@pytest.fixture(scope="module")
def val_data():
    return load_split("test").head(2000)  # a fifth of the test set keeps validation quick


def run_all(trainer):
    return list(trainer.events())


def metrics_without_time(path):
    return {column: values for column, values in read_metrics(path).items() if column != "elapsed_s"}


@pytest.mark.slow
def test_short_mlp_run_learns_and_writes_its_files(tmp_path, val_data):
    config = TrainConfig.for_model("mlp", epochs=1, limit=2000)
    trainer = Trainer(config, out_dir=tmp_path, val_data=val_data)
    events = run_all(trainer)
    assert isinstance(events[0], Compiling)
    assert events[0].message.startswith("compiling kernels" if events[0].cold else "loading kernels")
    assert isinstance(events[1], TrainStart) and events[1].steps_per_epoch == 20 and events[1].n_train == 2000
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.step for s in steps] == list(range(1, 21)) and steps[-1].global_step == 20
    assert steps[0].loss > 1.5 and steps[-1].running_loss < steps[0].loss  # it learns
    (epoch_end,) = [e for e in events if isinstance(e, EpochEnd)]
    assert epoch_end.val_accuracy > 0.80  # chance is 10%; measured 86-87% for 2,000 images
    done = events[-1]
    assert isinstance(done, Done) and done.reason == "completed" and done.epochs_completed == 1

    columns = read_metrics(tmp_path / "metrics.csv")
    assert tuple(columns) == METRICS_COLUMNS
    assert columns["epoch"] == [1] and columns["lr"] == [0.01] and columns["steps"] == [20]
    assert columns["val_accuracy"] == [epoch_end.val_accuracy]
    manifest = json.loads((tmp_path / "config.json").read_text())
    assert manifest["config"]["model"] == "mlp" and manifest["seed"] == 0
    assert {"convtui", "numpy", "numba", "python"} <= set(manifest["versions"])

    model, checkpoint = load_model(done.checkpoint)
    assert checkpoint.epoch == 1
    assert evaluate(model, val_data).accuracy == epoch_end.val_accuracy
    run = read_run(tmp_path)
    assert TrainConfig.from_dict(run.config) == config
    assert run.epochs == [1] and run.checkpoint == tmp_path / "checkpoint.npz"


@pytest.mark.slow
def test_the_cnn_preset_learns_in_thirty_steps(val_data):
    """The flagship through the trainer: conv 5x5x32 + pool, conv 5x5x64 + pool, dense 1024, Adam 0.001, on
    real MNIST digits. Measured over seeds 0-2: the loss falls from 3.2-4.1 (first 5 steps) to 0.40-0.56 (last 5),
    batch accuracy rises from 21-28% to 84-85%, and 500 test digits score 82-86%."""
    config = TrainConfig.for_model("cnn", epochs=1, limit=960, batch_size=32, validate=False)
    trainer = Trainer(config)
    steps = [e for e in run_all(trainer) if isinstance(e, Step)]
    assert len(steps) == 30
    losses, accuracies = [s.loss for s in steps], [s.accuracy for s in steps]
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.5 * first and last < 1.0, (first, last)
    assert np.mean(accuracies[-5:]) > 0.6  # chance is 10%
    assert evaluate(trainer.model, val_data.head(500)).accuracy > 0.6


@pytest.mark.slow
def test_same_seed_same_metrics_and_weights(tmp_path, val_data):
    def train(seed, folder):
        trainer = Trainer(TrainConfig.for_model("mlp", epochs=2, limit=1000, seed=seed), out_dir=folder,
                          val_data=val_data)
        run_all(trainer)
        return metrics_without_time(folder / "metrics.csv"), [p.value.copy() for p in trainer.model.params()]

    a_rows, a_weights = train(3, tmp_path / "a")
    b_rows, b_weights = train(3, tmp_path / "b")
    c_rows, _ = train(4, tmp_path / "c")
    assert a_rows == b_rows
    for wa, wb in zip(a_weights, b_weights):
        np.testing.assert_array_equal(wa, wb)
    assert a_rows != c_rows


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path, val_data):
    config = TrainConfig.for_model("mlp", epochs=2, limit=1000)  # mlp has dropout: its RNG must resume too
    straight = Trainer(config, out_dir=tmp_path / "straight", val_data=val_data)
    run_all(straight)

    first = Trainer(config.with_overrides(epochs=1), out_dir=tmp_path / "split", val_data=val_data)
    run_all(first)
    second = Trainer(config, out_dir=tmp_path / "split", resume=tmp_path / "split" / "checkpoint.npz",
                     val_data=val_data)
    events = run_all(second)
    start = next(e for e in events if isinstance(e, TrainStart))
    assert start.start_epoch == 1 and [e.epoch for e in events if isinstance(e, EpochEnd)] == [1]
    assert metrics_without_time(tmp_path / "split" / "metrics.csv") == \
        metrics_without_time(tmp_path / "straight" / "metrics.csv")
    for a, b in zip(straight.model.params(), second.model.params()):
        np.testing.assert_array_equal(a.value, b.value)


@pytest.mark.slow
def test_resume_with_other_model_is_refused(tmp_path, val_data):
    run_all(Trainer(TrainConfig.for_model("softmax", epochs=1, limit=200), out_dir=tmp_path, val_data=val_data))
    with pytest.raises(CheckpointError, match="holds model 'softmax', not 'mlp'"):
        Trainer(TrainConfig.for_model("mlp", limit=200), resume=tmp_path / "checkpoint.npz")


@pytest.mark.slow
@pytest.mark.parametrize("use_callable", [False, True])
def test_stop_request_saves_and_reports_stopped(tmp_path, val_data, use_callable):
    stop = threading.Event()
    trainer = Trainer(TrainConfig.for_model("mlp", epochs=3, limit=1000), out_dir=tmp_path, val_data=val_data,
                      stop=stop.is_set if use_callable else stop)
    steps = 0
    for event in trainer.events():
        if isinstance(event, Step):
            steps += 1
            if steps == 5:
                stop.set()  # what Ctrl-C and the app's stop key do
        last = event
    assert steps == 5
    assert last.reason == "stopped" and "stopped in epoch 1 after step 5" in last.message
    checkpoint = load_checkpoint(last.checkpoint)
    assert checkpoint.epoch == 0  # the cut-short epoch is trained again on resume
    for p in trainer.model.params():
        np.testing.assert_array_equal(checkpoint.params[p.name], p.value)  # what was learned is kept
    columns = read_metrics(tmp_path / "metrics.csv")
    assert columns["epoch"] == [1] and columns["steps"] == [5] and math.isnan(columns["val_accuracy"][0])


@pytest.mark.slow
def test_divergence_stops_and_keeps_a_loadable_checkpoint(tmp_path, val_data):
    # Plain SGD at lr 100 through four ReLU layers overflows float32 within a few steps.
    config = TrainConfig.for_model("mlp-relu", epochs=2, limit=500, optimizer="sgd", lr=100.0)
    trainer = Trainer(config, out_dir=tmp_path, val_data=val_data)
    initial = [p.value.copy() for p in trainer.model.params()]
    events = run_all(trainer)
    done = events[-1]
    assert done.reason == "diverged" and "diverged" in done.message and "--lr" in done.message
    assert not any(isinstance(e, EpochEnd) for e in events)
    model, checkpoint = load_model(done.checkpoint)  # the last good one: the starting weights
    assert checkpoint.epoch == 0
    for a, b in zip(initial, model.params()):
        np.testing.assert_array_equal(a, b.value)
        assert np.isfinite(b.value).all()


@pytest.mark.slow
def test_no_out_dir_writes_nothing(tmp_path, monkeypatch, val_data):
    monkeypatch.chdir(tmp_path)
    events = run_all(Trainer(TrainConfig.for_model("softmax", epochs=1, limit=300, validate=False)))
    assert events[-1].reason == "completed" and events[-1].checkpoint is None
    assert next(e for e in events if isinstance(e, EpochEnd)).val_accuracy is None
    assert list(tmp_path.iterdir()) == []


def test_formatter_lines():
    step = Step(epoch=0, step=200, global_step=200, total_steps=6000, loss=0.3, accuracy=0.9, running_loss=0.312,
                running_accuracy=0.912, lr=0.01, images_per_s=1430.4, eta_s=42.4, elapsed_s=14.0)
    assert format_event(step) == "epoch 1 step 200 | loss 0.312 | acc 91.2% | 1,430 img/s | eta 0:42"
    end = EpochEnd(epoch=1, loss=0.2, accuracy=0.95, val_loss=0.15, val_accuracy=0.9612, lr=0.006, elapsed_s=3725)
    assert format_event(end) == ("epoch 2 done | loss 0.200 | acc 95.0% | val_loss 0.150 | val_acc 96.1% "
                                 "| lr 0.006 | 1:02:05")
    assert format_event(Done("stopped", "stopped in epoch 1", 0, None)) == "stopped in epoch 1"
    start = TrainStart(model="softmax", epochs=1, steps_per_epoch=1, n_train=1000, n_val=0, start_epoch=0,
                       compile_s=0.25)
    assert format_event(start) == ("training softmax for 1 epoch on 1,000 images (1 step per epoch, no validation); "
                                   "kernels ready in 0.2s")
    assert "(600 steps per epoch, validating on 10,000, resuming after epoch 2)" in format_event(
        TrainStart(model="cnn", epochs=3, steps_per_epoch=600, n_train=60000, n_val=10000, start_epoch=2,
                   compile_s=4.0))
    matrix = np.diag(np.arange(1, 11))
    lines = format_confusion_matrix(matrix).splitlines()
    assert len(lines) == 11 and lines[1].split()[:2] == ["0", "1"] and lines[1].endswith("100.0%")


@pytest.mark.slow
def test_resume_of_a_finished_run_says_so(tmp_path, val_data):
    config = TrainConfig.for_model("softmax", epochs=1, limit=200)
    run_all(Trainer(config, out_dir=tmp_path, val_data=val_data))
    files = {name: (tmp_path / name).read_bytes() for name in ("checkpoint.npz", "config.json", "metrics.csv")}
    # Resumed with other settings that would never be used: the run's files must still say what it was.
    asked = config.with_overrides(lr=0.3, batch_size=50)
    events = run_all(Trainer(asked, out_dir=tmp_path, resume=tmp_path / "checkpoint.npz", val_data=val_data))
    assert not any(isinstance(e, Step) for e in events)
    assert events[-1].reason == "completed" and "already trained for 1 epoch" in events[-1].message
    assert {name: (tmp_path / name).read_bytes() for name in files} == files
    assert read_metrics(tmp_path / "metrics.csv")["epoch"] == [1]


@pytest.mark.slow
def test_a_blow_up_on_an_epochs_last_step_never_becomes_the_last_good_checkpoint(tmp_path, val_data):
    """The loss of the last step is finite, but its update leaves non-finite weights: the epoch must not be
    saved (its validation loss would be NaN), and no NumPy warning reaches the user."""
    import warnings

    config = TrainConfig.for_model("mlp-relu", epochs=3, limit=200, batch_size=100)
    trainer = Trainer(config, out_dir=tmp_path, val_data=val_data)
    real_step, updates = trainer.optimizer.step, []

    def step_that_breaks_on_epoch_2s_last_step(lr):
        real_step(lr)
        updates.append(lr)
        if len(updates) == 4:  # two steps per epoch: the last step of epoch 2
            trainer.model.params()[0].value[0, 0] = np.inf

    trainer.optimizer.step = step_that_breaks_on_epoch_2s_last_step
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events = run_all(trainer)
    assert [w for w in caught if issubclass(w.category, RuntimeWarning)] == []
    done = events[-1]
    assert done.reason == "diverged" and "epoch 2" in done.message
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [0]  # epoch 2 never ended as good
    model, checkpoint = load_model(done.checkpoint)  # the last good one: after epoch 1
    assert checkpoint.epoch == 1 and all(np.isfinite(p.value).all() for p in model.params())
    assert all(math.isfinite(row["val_loss"]) for row in checkpoint.meta["history"])


@pytest.mark.slow
def test_two_trainers_cannot_share_a_folder(tmp_path, val_data):
    from convtui.core.storage.run_lock import FolderInUseError

    config = TrainConfig.for_model("softmax", epochs=1, limit=100)
    first = Trainer(config, out_dir=tmp_path, val_data=val_data).events()
    next(first)  # holds the folder's lock from its first event
    second = Trainer(config, out_dir=tmp_path, val_data=val_data)
    with pytest.raises(FolderInUseError, match="is in use by another convtui run"):
        list(second.events())
    assert list(first)[-1].reason == "completed"
    again = Trainer(config, out_dir=tmp_path, val_data=val_data)  # a finished run is not overwritten either
    with pytest.raises(FolderInUseError, match="already holds a run"):
        list(again.events())


@pytest.mark.slow
def test_a_time_budget_ends_a_class_length_run_validated_and_saved(tmp_path, val_data):
    """Wherever the budget runs out (how far a second gets depends on the machine), the run says where, is
    validated, and its checkpoint and metrics agree with the last step it trained."""
    import re

    config = TrainConfig.for_model("mlp", epochs=10, time_budget=1)
    trainer = Trainer(config, out_dir=tmp_path, val_data=val_data)
    events = run_all(trainer)
    done, last = events[-1], [e for e in events if isinstance(e, Step)][-1]
    assert done.reason == "completed" and last.elapsed_s >= 1.0  # trained for at least the budget
    cut = re.match(r"time budget of 0:01 used up (in epoch (\d+) after step (\d+)|after epoch (\d+)), "
                   r"test accuracy \d+\.\d\d%; saved ", done.message)
    assert cut, done.message
    checkpoint, rows = load_checkpoint(done.checkpoint), read_metrics(tmp_path / "metrics.csv")
    if cut.group(2):  # mid-epoch: a partial row, validated, and the checkpoint knows how far it got
        epoch, step = int(cut.group(2)), int(cut.group(3))
        assert (last.epoch + 1, last.step) == (epoch, step) and step < trainer.steps_per_epoch
        assert checkpoint.epoch == epoch - 1 and checkpoint.steps_into_epoch == step
        assert checkpoint.trained().endswith(f"{step} steps of epoch {epoch}")
        assert len(rows["epoch"]) == epoch and rows["steps"][-1] == step
    else:  # the budget ran out on an epoch's last step
        epoch = int(cut.group(4))
        assert checkpoint.epoch == epoch and checkpoint.steps_into_epoch == 0 and len(rows["epoch"]) == epoch
    assert 0.5 < rows["val_accuracy"][-1] <= 1.0  # validated, unlike a stop


def test_images_per_second_is_a_rate_over_recent_steps(tmp_path, val_data):
    """Not the epoch's running rate, which swings on an epoch's first steps: every Step's figure equals the
    images over the last RATE_WINDOW_STEPS steps divided by their time, so it stays near the steady rate."""
    from convtui.core.training.trainer import RATE_WINDOW_STEPS

    config = TrainConfig.for_model("softmax", epochs=2, limit=3000, validate=False)
    steps = [e for e in run_all(Trainer(config)) if isinstance(e, Step)]
    rates = [s.images_per_s for s in steps[RATE_WINDOW_STEPS:]]
    assert len(steps) == 60 and min(rates) > 0
    # Epoch 2's first step is no outlier: the window spans the epoch boundary.
    first_of_epoch_2 = next(s for s in steps if s.epoch == 1)
    assert first_of_epoch_2.images_per_s < 5 * sorted(rates)[len(rates) // 2]


def test_a_huge_loss_reads_in_a_few_digits():
    from convtui.core.training.text import format_loss

    assert [format_loss(value) for value in (0.3124, 2.0, 99999.0, 1.234e30, float("nan"), float("inf"))] == [
        "0.312", "2.000", "99999.000", "1.23e+30", "nan", "inf"]


def test_a_run_that_fails_before_its_first_file_leaves_no_empty_folder(tmp_path, val_data, monkeypatch):
    """A disk that fills before config.json is written: one error naming the file, and the folder the run made
    is gone again (an empty folder would look like a run in every listing). A folder that was there before stays."""
    import errno
    import os

    from convtui.core.storage import atomic, run_folder

    def full_disk(folder, *args, **kwargs):
        raise atomic.WriteError(f"cannot write {folder / 'config.json'}: {os.strerror(errno.ENOSPC)}")

    monkeypatch.setattr(run_folder, "write_config", full_disk)
    config = TrainConfig.for_model("softmax", epochs=1, limit=100)
    fresh = tmp_path / "runs" / "new-run"
    with pytest.raises(atomic.WriteError, match="config.json: No space left on device"):
        list(Trainer(config, out_dir=fresh, val_data=val_data).events())
    assert not fresh.exists() and (tmp_path / "runs").is_dir()  # only the folder the run itself made
    kept = tmp_path / "made-by-the-user"
    kept.mkdir()
    with pytest.raises(atomic.WriteError):
        list(Trainer(config, out_dir=kept, val_data=val_data).events())
    assert kept.is_dir() and not list(kept.iterdir())
    monkeypatch.undo()
    finished = Trainer(config, out_dir=fresh, val_data=val_data)
    assert list(finished.events())[-1].reason == "completed"
    assert sorted(p.name for p in fresh.iterdir()) == ["checkpoint.npz", "config.json", "metrics.csv", "replay.npz"]
