"""Nothing lost, nothing crashes, as a user meets it: scheduler signals, two runs in one folder, closed pipes."""

import os
import signal
import subprocess
import sys

import pytest

from convtui.core.storage.run_lock import LOCK_FILE, run_lock
from tests.test_cli import ROOT, assert_one_line_error, convtui, env

pytestmark = pytest.mark.slow  # real training in subprocesses


def start_training(out, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "convtui", "train", "--model", "mlp-relu", "--epochs", "3", "--log-every", "1",
         "--no-validate", "--out", str(out), *extra],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def signal_once_training(process, signum):
    try:
        for line in process.stdout:
            if " step " in line:  # training is under way
                process.send_signal(signum)
                break
        return process.communicate(timeout=120)
    finally:
        process.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_scheduler_signal_saves_like_ctrl_c_and_exits_128_plus_its_number(tmp_path, signum):
    out = tmp_path / "run"
    stdout, stderr = signal_once_training(start_training(out), signum)
    name = signal.Signals(signum).name
    assert f"{name}: stopping after the current step to save" in stderr, stderr
    assert "stopped in epoch 1 after step" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "config.json", "metrics.csv", "replay.npz"]
    evaluation = convtui("eval", out)
    assert evaluation.returncode == 0 and "test accuracy:" in evaluation.stdout
    resumed = convtui("train", "--resume", out / "checkpoint.npz", "--epochs", "1", "--limit", "200")
    assert resumed.returncode == 0, resumed.stderr
    assert "completed: trained 1 epoch" in resumed.stdout


def test_a_second_run_into_a_busy_folder_is_refused_and_a_stale_lock_is_taken_over(tmp_path):
    out = tmp_path / "run"
    with run_lock(out):  # as a live run holds it
        result = convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", out)
        assert_one_line_error(result, 2, f"convtui train: error: {out} is in use by another convtui run "
                                         f"(pid {os.getpid()})")
        assert not (out / "config.json").exists()  # the refused run wrote nothing
    assert not out.exists()  # ... so the folder the lock made is gone with the lock
    # A lock file left by a process that was killed: nobody holds it any more.
    out.mkdir()
    (out / LOCK_FILE).write_text("999999\n")
    result = convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "config.json", "metrics.csv", "replay.npz"]


def test_a_killed_write_leaves_no_clutter_for_the_next_run(tmp_path):
    out = tmp_path / "run"
    result = convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", out)
    assert result.returncode == 0
    (out / ".checkpoint.npz.0badf00d.tmp").write_bytes(b"half a checkpoint")  # what SIGKILL mid-write leaves
    resumed = convtui("train", "--resume", out / "checkpoint.npz", "--epochs", "2", "--limit", "100")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "config.json", "metrics.csv", "replay.npz"]


@pytest.mark.parametrize("command", [
    ["eval", "{run}"],
    ["xo"],
    ["train", "--model", "softmax", "--epochs", "1", "--limit", "300", "--log-every", "1", "--out", "{fresh}"],
    ["--help"],
    ["train", "--help"],
])
def test_every_command_survives_a_closed_pipe(tmp_path, command):
    run = tmp_path / "run"
    assert convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", run).returncode == 0
    args = [part.format(run=run, fresh=tmp_path / "fresh") for part in command]
    shell = f"{sys.executable} -m convtui {' '.join(args)} | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", shell], cwd=ROOT, env=env(), capture_output=True,
                            text=True, timeout=180)
    # Training stops and saves (exit 1, one line); any other command ends quietly with 141, 128 + SIGPIPE, as a
    # Unix tool killed by SIGPIPE does. With pipefail the shell reports it, unless everything was written before
    # head closed its end (0).
    closed = 1 if command[0] == "train" and "--help" not in command else 141
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert result.returncode in (0, closed), result.stderr
    # A reader that is gone before the first line: every write meets a closed pipe.
    args = [part.format(run=run, fresh=tmp_path / "fresh-2") for part in command]
    process = subprocess.Popen([sys.executable, "-m", "convtui", *args], cwd=ROOT, env=env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=180) == closed, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "Exception ignored" not in stderr
    assert stderr == "" or closed == 1, stderr  # nobody to tell but the one who closed it


@pytest.mark.parametrize("setting, value", [("threads", 40000), ("threads", 100000), ("epochs", -5),
                                            ("batch_size", "100"), ("lr", 1e309)])
def test_settings_read_back_from_a_run_are_range_checked_too(tmp_path, setting, value):
    """A config.json or checkpoint from elsewhere holding an absurd value is refused with one line, before any
    thread pool starts (libgomp aborts on 40,000 threads and segfaults on 100,000)."""
    import json

    import numpy as np

    out = tmp_path / "run"
    assert convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", out).returncode == 0
    manifest = json.loads((out / "config.json").read_text())
    manifest["config"][setting] = value
    (out / "config.json").write_text(json.dumps(manifest))
    with np.load(out / "checkpoint.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta["config"][setting] = value
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(out / "checkpoint.npz", **arrays)
    for command in (["train", "--resume", out / "checkpoint.npz", "--epochs", "2"], ["eval", out]):
        result = convtui(*command)
        assert_one_line_error(result, 1, f"{out / 'checkpoint.npz'}: its saved config is not valid")


def test_a_fifo_named_config_json_does_not_hang_a_resume(tmp_path):
    """--resume reads the run's config.json before numpy loads (for its thread count): a FIFO there would block
    a plain read forever."""
    out = tmp_path / "run"
    assert convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", out).returncode == 0
    (out / "config.json").unlink()
    os.mkfifo(out / "config.json")
    result = convtui("train", "--resume", out / "checkpoint.npz", "--epochs", "2", "--limit", "100",
                     "--out", tmp_path / "resumed", timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", [["eval", "{run}"], ["xo"], ["xo", "--image", "x"], ["xo", "--list"],
                                     ["bench", "--no-compile", "--model", "softmax", "--steps", "1", "--warmup", "0"],
                                     ["--help"], ["--version"], ["eval", "--help"]])
def test_every_command_says_a_full_disk_under_its_output_in_one_line(tmp_path, command):
    run = tmp_path / "run"
    assert convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", run).returncode == 0
    args = [part.format(run=run) for part in command]
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC, as on a full disk
        result = subprocess.run([sys.executable, "-m", "convtui", *args], check=False, cwd=ROOT, env=env(),
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=180)
    result.stdout = ""
    prog = "convtui" if command[0].startswith("-") or "--help" in command else f"convtui {command[0]}"
    assert_one_line_error(result, 1, f"{prog}: error: cannot write to standard output: No space left on device")
    assert "Exception ignored" not in result.stderr


def test_a_log_that_cannot_be_written_stops_training_and_saves_what_it_learned(tmp_path):
    """The log's disk filling (or its reader going away) mid-run is a stop, as a signal is: after the current
    step, with the checkpoint saved into the run folder, which has room."""
    out = tmp_path / "run"
    process = start_training(out)
    try:
        for line in process.stdout:
            if " step " in line:  # training is under way: the reader goes away
                break
        process.stdout.close()
        stderr = process.stderr.read()
        assert process.wait(timeout=120) == 1, stderr
    finally:
        process.kill()
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("convtui train: error: the output pipe was closed; stopped in epoch 1 after step ")
    assert lines[0].endswith(f"saved {out / 'checkpoint.npz'}")
    evaluation = convtui("eval", out)
    assert evaluation.returncode == 0
    assert "0 epochs and " in evaluation.stdout and "steps of epoch 1" in evaluation.stdout


def test_a_run_folder_that_cannot_be_made_or_locked_is_named_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    blocked = tmp_path / "afile" / "sub"
    result = convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", blocked)
    assert_one_line_error(result, 1, f"convtui train: error: cannot create {blocked}: Not a directory")
    run = tmp_path / "run"
    assert convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", run).returncode == 0
    exported = tmp_path / "model.safetensors"
    assert convtui("export", run, "--out", exported).returncode == 0
    result = convtui("import", exported, "--out", blocked)
    assert_one_line_error(result, 1, f"convtui import: error: cannot create {blocked}: Not a directory")


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda path: path.write_bytes(b"not a zip archive"), "damaged replay file (not an .npz archive)"),
    (lambda path: path.write_bytes(path.read_bytes()[:200]), "damaged replay file ("),
])
def test_a_resume_says_when_it_replaces_a_damaged_replay_record(tmp_path, damage, problem):
    """The replay record cannot be appended to once damaged: the resumed run starts a new one, and says so in one
    line naming the file (its old snapshots are lost), where it used to replace it silently."""
    from convtui.core.storage.replay_store import read_replay

    out = tmp_path / "run"
    first = convtui("train", "--model", "softmax", "--epochs", "1", "--limit", "100", "--out", out)
    assert first.returncode == 0, first.stderr
    damage(out / "replay.npz")
    resumed = convtui("train", "--resume", out / "checkpoint.npz", "--epochs", "2", "--limit", "100")
    assert resumed.returncode == 0, resumed.stderr
    said = [line for line in resumed.stderr.splitlines() if "replay" in line]
    assert len(said) == 1 and said[0].startswith(f"convtui: {out / 'replay.npz'}: {problem}"), resumed.stderr
    assert said[0].endswith("; this run starts a new replay record from step 1")  # 100 images, batch 100
    assert "Traceback" not in resumed.stderr
    assert read_replay(out / "replay.npz").snapshots  # the new record is whole
    intact = convtui("train", "--resume", out / "checkpoint.npz", "--epochs", "3", "--limit", "100")
    assert intact.returncode == 0 and "replay" not in intact.stderr  # an intact record is appended to, quietly
