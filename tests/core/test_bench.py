"""`convtui bench`: the FLOP count against hand-computed numbers, the JSON keys, and one-line usage errors.
The tests that start `convtui` or a compile probe in a subprocess are marked `slow`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convtui.core.training.bench import measure_compile, model_flops
from convtui.core.nn.architectures import build_model

ROOT = Path(__file__).resolve().parents[2]


def convtui(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "convtui", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_cnn_flops_match_the_hand_count():
    conv1 = 2 * 32 * 1 * 5 * 5 * 28 * 28
    conv2 = 2 * 64 * 32 * 5 * 5 * 14 * 14
    dense1 = 2 * 7 * 7 * 64 * 1024
    output = 2 * 1024 * 10
    forward, train = model_flops(build_model("cnn", 0))
    assert forward == conv1 + conv2 + dense1 + output == 27_767_808
    assert train == 3 * forward  # about 83 MFLOP per training image, as issue 6 says


def test_softmax_flops():
    assert model_flops(build_model("softmax", 0)) == (2 * 784 * 10, 3 * 2 * 784 * 10)


@pytest.mark.slow
def test_bench_json_has_the_reference_keys():
    result = convtui("bench", "--model", "softmax", "--steps", "3", "--warmup", "1", "--batch-size", "20",
                     "--threads", "1", "--no-compile", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("train_images_per_s", "infer_images_per_s", "gflops_per_s", "peak_rss_mb", "epoch_s",
                "sgemm_peak_gflops_per_s", "peak_fraction"):
        assert data[key] > 0, key
    assert data["model"] == "softmax" and data["batch_size"] == 20 and data["threads"] == 1
    assert data["threading_layer"] == "omp"  # thread-safe; see convtui/core/__init__.py
    assert "compile_s" not in data


@pytest.mark.slow
def test_bench_table_is_readable():
    result = convtui("bench", "--model", "mlp", "--steps", "2", "--warmup", "1", "--no-compile")
    assert result.returncode == 0, result.stderr
    assert "img/s" in result.stdout and "peak RSS" in result.stdout and "Traceback" not in result.stdout
    assert "nominal MFLOP/image" in result.stdout and "Winograd" not in result.stdout  # no conv: nothing to say


@pytest.mark.slow
def test_compile_probe_runs_cold_then_cached():
    compile_s = measure_compile("softmax")
    assert set(compile_s) == {"cold_s", "cached_s", "startup_s"}
    assert all(value > 0 for value in compile_s.values())


@pytest.mark.slow  # a subprocess each
@pytest.mark.parametrize("flags, fragment", [
    (["--steps", "0"], "--steps 0 is invalid"),
    (["--batch-size", "-3"], "--batch-size -3 is invalid"),
    (["--batch-size", "100000000"], "--batch-size 100000000 is invalid: must be a whole number from 1 to 65,536"),
    (["--threads", "two"], "--threads two is invalid"),
    (["--warmup", "1.5"], "--warmup 1.5 is invalid"),
    (["--model", "resnet"], "--model resnet is invalid"),
])
def test_bad_flags_exit_2_with_one_line(flags, fragment):
    """Every flag is range-checked before any memory is taken (a 10^8 batch once asked NumPy for 73 GiB)."""
    result = convtui("bench", *flags)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and lines[0].startswith("convtui bench: error:")


def test_the_prepared_batches_stay_within_their_memory_budget():
    from convtui.core.training.bench import BATCHES_BYTES, _batch_count

    assert _batch_count(100, 60) == 60 and _batch_count(100, 11) == 11  # the usual: one batch per step, up to 60
    for batch_size in (1, 100, 1000, 5000, 65536):
        count = _batch_count(batch_size, 1000)
        assert 1 <= count <= 60
        assert count == 1 or count * batch_size * 28 * 28 * 4 <= BATCHES_BYTES
