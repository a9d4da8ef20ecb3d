"""`convtui train` and `convtui eval` as a user runs them: exit codes, stdout lines and one-line errors."""

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def convtui(*args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convtui", *map(str, args)], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, code, fragment):
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def softmax_run(tmp_path_factory):
    """One tiny real run that several tests read."""
    out = tmp_path_factory.mktemp("run") / "softmax"
    result = convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "500", "--out", out,
                     "--log-every", "2", "--threads", "1")
    return out, result


@pytest.mark.parametrize("flags, fragment", [
    (["--epochs", "-1"], "--epochs -1 is invalid"),
    (["--batch-size", "0"], "--batch-size 0 is invalid"),
    (["--lr", "-1"], "--lr -1.0 is invalid"),
    (["--limit", "0"], "--limit 0 is invalid"),
    (["--threads", "0"], "--threads 0 is invalid"),
    (["--dropout", "1.5"], "--dropout 1.5 is invalid"),
    (["--threads", "40000"], "--threads 40000 is invalid: must be a whole number from 1 to 256"),
    (["--threads", "100000"], "--threads 100000 is invalid"),
    (["--epochs", "100000"], "--epochs 100000 is invalid"),
    (["--batch-size", "99999999"], "--batch-size 99999999 is invalid"),
    (["--seed", "-1"], "--seed -1 is invalid"),
])
def test_bad_flag_values_exit_2_with_one_line(flags, fragment, tmp_path):
    result = convtui("train", "--model", "softmax", *flags, "--out", tmp_path / "run")
    assert_one_line_error(result, 2, f"convtui train: error: {fragment}")
    assert not (tmp_path / "run").exists()


def test_an_empty_out_is_refused_rather_than_read_as_no_out(tmp_path):
    result = subprocess.run([sys.executable, "-m", "convtui", "train", "--model", "softmax", "--out", " "],
                            check=False, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=180)
    assert_one_line_error(result, 2, "convtui train: error: --out needs a folder name")
    assert list(tmp_path.iterdir()) == []


def test_plain_output_files_and_eval(softmax_run):
    out, result = softmax_run
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == f"run folder: {out}"
    start = next(line for line in lines if line.startswith("training softmax for 1 epoch on 500 images"))
    assert " kernels ready in " in start
    # "compiling" only when Numba's cache was cold; a warm start prints no such line (see the cold test).
    assert all(not line.startswith("loading kernels") for line in lines)
    step_lines = [line for line in lines if line.startswith("epoch 1/1 step ")]
    assert [line.split()[3] for line in step_lines] == ["2", "4"]  # --log-every 2, 5 steps per epoch
    assert " img/s | eta " in step_lines[0] and "| acc " in step_lines[0]
    assert any(line.startswith("epoch 1 done | loss ") and "val_acc" in line for line in lines)
    assert lines[-1] == "completed: trained 1 epoch"
    assert {p.name for p in out.iterdir()} == {"config.json", "metrics.csv", "checkpoint.npz", "replay.npz"}
    assert json.loads((out / "config.json").read_text())["config"]["threads"] == 1

    evaluated = convtui("eval", out / "checkpoint.npz")
    assert evaluated.returncode == 0, evaluated.stderr
    eval_lines = evaluated.stdout.splitlines()
    assert eval_lines[1].startswith("test accuracy: ") and "/10000)" in eval_lines[1]
    percent = float(eval_lines[1].split()[2].rstrip("%"))
    csv_val = float((out / "metrics.csv").read_text().splitlines()[1].split(",")[4])
    assert percent == pytest.approx(100 * csv_val, abs=0.005)
    assert len(eval_lines) == 2 + 11 and eval_lines[2].startswith("true\\pred")


def test_resume_continues_to_more_epochs(softmax_run, tmp_path):
    out, _ = softmax_run
    resumed = tmp_path / "resumed"
    result = convtui("train", "--resume", out / "checkpoint.npz", "--epochs", "2", "--out", resumed)
    assert result.returncode == 0, result.stderr
    assert "resuming after epoch 1" in result.stdout
    rows = (resumed / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch", "1", "2"]


def test_out_folder_with_a_run_is_not_overwritten(softmax_run):
    out, _ = softmax_run
    before = (out / "checkpoint.npz").read_bytes()
    result = convtui("train", "--model", "softmax", "--out", out)
    assert_one_line_error(result, 2, "already holds a run; choose another folder, or continue it with --resume")
    assert (out / "checkpoint.npz").read_bytes() == before


def test_resume_with_other_model_exits_1(softmax_run, tmp_path):
    out, _ = softmax_run
    result = convtui("train", "--model", "mlp", "--resume", out / "checkpoint.npz", "--out", tmp_path / "x")
    assert_one_line_error(result, 1, "checkpoint holds model 'softmax', not 'mlp'")


def test_damaged_checkpoint_exits_1(softmax_run, tmp_path):
    damaged = tmp_path / "checkpoint.npz"
    damaged.write_bytes((softmax_run[0] / "checkpoint.npz").read_bytes()[:3000])
    assert_one_line_error(convtui("train", "--resume", damaged), 1, "damaged or not a convtui checkpoint")
    assert_one_line_error(convtui("eval", damaged), 1, "damaged or not a convtui checkpoint")
    assert_one_line_error(convtui("eval", tmp_path / "none.npz"), 1, "no such checkpoint file")


def test_missing_data_folder_exits_1(tmp_path):
    result = convtui("train", "--model", "softmax", "--data", tmp_path / "nowhere", "--out", tmp_path / "run")
    assert_one_line_error(result, 1, "no such data folder")


def test_corrupt_data_file_exits_1(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (data / f"{name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(20))[:15])
    result = convtui("train", "--model", "softmax", "--data", data, "--out", tmp_path / "run")
    assert_one_line_error(result, 1, "truncated gzip file")
    assert_one_line_error(convtui("eval", tmp_path / "x.npz", "--data", data), 1, "no such checkpoint")


def test_divergence_exits_1_with_one_line(tmp_path):
    result = convtui("train", "--model", "mlp-relu", "--optimizer", "sgd", "--lr", "100", "--limit", "500",
                     "--no-validate", "--out", tmp_path / "run")
    assert_one_line_error(result, 1, "diverged")
    assert "try a smaller --lr" in result.stderr
    assert (tmp_path / "run" / "checkpoint.npz").exists()


def test_ctrl_c_stops_after_the_step_saves_and_exits_130(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "convtui", "train", "--model", "mlp-relu", "--epochs", "3", "--log-every", "1",
         "--no-validate", "--out", str(out)],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if " step " in line:  # training is under way
                process.send_signal(signal.SIGINT)
                break
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "stopping after the current step" in stderr
    assert "stopped in epoch 1 after step" in stderr
    assert "Traceback" not in stderr
    assert (out / "checkpoint.npz").exists() and (out / "metrics.csv").exists()
    assert convtui("eval", out).returncode == 0  # the saved weights load and evaluate


def test_resume_in_place_continues_the_same_folder(tmp_path):
    out = tmp_path / "run"
    assert convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "300", "--out", out).returncode == 0
    runs_before = set((ROOT / "runs").glob("*")) if (ROOT / "runs").exists() else set()
    result = convtui("train", "--resume", out / "checkpoint.npz", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"run folder: {out}"
    assert [row.split(",")[0] for row in (out / "metrics.csv").read_text().splitlines()] == ["epoch", "1", "2"]
    # resuming in place writes no new folder under ./runs (a developer's own runs there are left out)
    assert (set((ROOT / "runs").glob("*")) if (ROOT / "runs").exists() else set()) == runs_before


def test_live_view_draws_a_bar_and_prints_epoch_lines():
    import io

    from rich.console import Console

    from convtui.commands.train_live import show_live
    from convtui.core.training.config import TrainConfig
    from convtui.core.training.events import Compiling, Done, EpochEnd, Step, TrainStart

    def events():
        yield Compiling("compiling kernels for mlp")
        yield TrainStart("mlp", 1, 2, 200, 0, 0, 0.1)
        for step in (1, 2):
            yield Step(0, step, step, 2, 0.5, 0.8, 0.5, 0.8, 0.01, 1430.0, 1.0, 1.0)
        yield EpochEnd(0, 0.5, 0.8, None, None, 0.01, 2.0)
        yield Done("completed", "trained 1 epoch", 1, None)

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, highlight=False)
    done = show_live(events(), TrainConfig.for_model("mlp", epochs=1), console=console)
    assert done.reason == "completed"
    text = buffer.getvalue()
    assert "compiling kernels for mlp" in text and "epoch 1 done | loss 0.500 | acc 80.0%" in text
    assert "2/2" in text and "1,430 img/s" in text and "eta 0:01" in text


def test_data_folder_in_mnist_layout_trains_and_evaluates(tmp_path):
    """Any folder with MNIST's four file names works (Fashion-MNIST is one); eval defaults to the same data."""
    import numpy as np

    from tests.core.test_data import write_split

    rng = np.random.default_rng(0)
    data = tmp_path / "fashion"
    data.mkdir()
    for split, n in (("train", 300), ("test", 120)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 40).astype(np.uint8)
        images[np.arange(n), labels * 2, :] = 255  # one bright row per class: easy to learn
        write_split(data, images, labels, split=split)
    out = tmp_path / "run"
    trained = convtui("train", "--model", "softmax", "--epochs", "3", "--data", data, "--out", out)
    assert trained.returncode == 0, trained.stderr
    assert "on 300 images" in trained.stdout and "validating on 120" in trained.stdout
    evaluated = convtui("eval", out)
    assert evaluated.returncode == 0, evaluated.stderr
    line = evaluated.stdout.splitlines()[1]
    assert "/120)" in line
    assert float(line.split()[2].rstrip("%")) > 90.0


def test_a_data_folder_given_relative_is_found_again_from_anywhere_and_missed_clearly(tmp_path):
    """--data is saved as an absolute path (eval and --resume run from other folders); a saved folder that is no
    longer there is named with the checkpoint that asked for it."""
    import numpy as np

    from tests.core.test_data import write_split

    rng = np.random.default_rng(1)
    (tmp_path / "digits").mkdir()
    for split, n in (("train", 100), ("test", 50)):
        write_split(tmp_path / "digits", rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n), split=split)
    trained = subprocess.run([sys.executable, "-m", "convtui", "train", "--model", "softmax", "--epochs", "1",
                              "--data", "digits", "--out", "run"], check=False, cwd=tmp_path, env=env(),
                             capture_output=True, text=True, timeout=180)
    assert trained.returncode == 0, trained.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]["data"]
    assert saved == str(tmp_path / "digits")
    assert "/50)" in convtui("eval", tmp_path / "run").stdout  # from ROOT, not from tmp_path
    (tmp_path / "digits").rename(tmp_path / "moved")
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    missing = f"{checkpoint}: was trained on the data folder {tmp_path / 'digits'}, which is not there; pass --data"
    assert_one_line_error(convtui("eval", tmp_path / "run"), 1, f"convtui eval: error: {missing}")
    assert_one_line_error(convtui("train", "--resume", checkpoint, "--epochs", "2"), 1,
                          f"convtui train: error: {missing}")
    assert "/50)" in convtui("eval", tmp_path / "run", "--data", tmp_path / "moved").stdout


def test_a_resumed_run_keeps_the_thread_count_it_was_trained_with(tmp_path):
    """BLAS reads its thread count once, before numpy loads: the CLI takes it from the run's config.json."""
    import argparse
    import json

    from convtui.commands.train import _resumed_thread_count

    (tmp_path / "config.json").write_text(json.dumps({"config": {"threads": 1}}))
    resume = str(tmp_path / "checkpoint.npz")
    assert _resumed_thread_count(argparse.Namespace(threads=None, resume=resume)) == 1
    assert _resumed_thread_count(argparse.Namespace(threads=2, resume=resume)) == 2  # the flag wins
    assert _resumed_thread_count(argparse.Namespace(threads=None, resume=None)) is None
    (tmp_path / "config.json").write_text("{ damaged")
    assert _resumed_thread_count(argparse.Namespace(threads=None, resume=resume)) is None


@pytest.mark.slow
def test_compiling_is_announced_only_when_the_kernel_cache_is_cold(tmp_path):
    args = ["train", "--model", "softmax", "--epochs", "1", "--limit", "200", "--no-validate"]
    cold_env = {**env(), "NUMBA_CACHE_DIR": str(tmp_path / "empty-cache")}
    cold = subprocess.run([sys.executable, "-m", "convtui", *args, "--out", str(tmp_path / "a")], cwd=ROOT,
                          env=cold_env, capture_output=True, text=True, timeout=600)
    assert cold.returncode == 0, cold.stderr
    assert "compiling kernels for softmax (first run only; Numba caches them) ..." in cold.stdout.splitlines()
    warm = subprocess.run([sys.executable, "-m", "convtui", *args, "--out", str(tmp_path / "b")], cwd=ROOT,
                          env=cold_env, capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr
    assert not any(line.startswith("compiling") for line in warm.stdout.splitlines())
    assert "kernels ready in 0." in warm.stdout
