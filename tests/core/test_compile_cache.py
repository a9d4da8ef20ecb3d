"""What Numba compiles, and when (issue 15): every kernel is cached, small inputs never compile a parallel
driver, and a parallel driver gives bit for bit what its serial body gives."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba.core.caching import NullCache
from numba.core.registry import CPUDispatcher

import convtui.core.ops as ops_package
from convtui.core import ops
from convtui.core.ops import jit
from tests.core import naive
from tests.core.test_kernels import POOL_CASES

ROOT = Path(__file__).resolve().parents[2]


def ops_kernels():
    """(module.name, dispatcher) for every Numba kernel in convtui.core.ops."""
    for info in pkgutil.iter_modules(ops_package.__path__):
        module = importlib.import_module(f"{ops_package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module.__name__:
                yield f"{info.name}.{name}", value


def test_every_kernel_is_cached_on_disk():
    """cache=True everywhere: a kernel without it compiles again in every process (seconds, for a parallel one)."""
    kernels = dict(ops_kernels())
    assert {"pooling._maxpool2d_forward_planes", "updates._adam_range", "loss._softmax_cross_entropy_range",
            "conv_nhwc._maxpool_sparse_backward_part", "conv_few_channels._conv_relu_maxpool_range"} <= set(kernels)
    assert [name for name, kernel in kernels.items() if isinstance(kernel._cache, NullCache)] == []


def test_no_kernel_compiles_numba_parallel_code():
    """Threads come from `jit.run_range` over serial bodies: a Numba parallel kernel compiles 3 to 6 times slower
    (the cnn's first step took 11 s to compile with them)."""
    kernels = dict(ops_kernels())
    assert len(kernels) >= 25
    assert [name for name, kernel in kernels.items() if kernel.targetoptions.get("parallel")] == []


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_pooling_driver_and_serial_body_agree_bit_for_bit(case, dtype, monkeypatch):
    n, c, h, w, pool, stride = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    results = {}
    for parallel in (False, True):
        monkeypatch.setattr(jit, "PARALLEL_MIN_SIZE", 0 if parallel else 10**9)
        y, argmax = ops.maxpool2d_forward(x, pool, stride)
        dy = rng.standard_normal(y.shape).astype(dtype) if not results else results[False][-1]
        mean = ops.meanpool2d_forward(x, pool, stride)
        results[parallel] = (y, argmax, ops.maxpool2d_backward(dy, argmax, x.shape), mean,
                             ops.meanpool2d_backward(dy, x.shape, pool, stride), dy)
    for serial, parallel in zip(results[False], results[True]):
        np.testing.assert_array_equal(serial, parallel)
    y, argmax, dx, mean, dx_mean, dy = results[True]
    ref_y, ref_argmax = naive.maxpool2d_forward(x, pool, stride)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(argmax, ref_argmax)
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, naive.maxpool2d_backward(dy, x, pool, stride), **tolerance)
    np.testing.assert_allclose(mean, naive.meanpool2d_forward(x, pool, stride), **tolerance)
    np.testing.assert_allclose(dx_mean, naive.meanpool2d_backward(dy, x.shape, pool, stride), **tolerance)


def test_the_lessons_grids_never_wake_the_helper_threads(monkeypatch):
    """The X/O stack pools small grids: they run on the calling thread alone, and a training batch is split."""
    from convtui.toy import images, xo

    def refuse(*args):
        raise AssertionError("a lesson-sized input reached the helper threads")

    monkeypatch.setattr(jit, "_executor", refuse)
    monkeypatch.setattr(jit, "thread_count", lambda: 2)  # as on the two-core machines, whatever this one has
    for image in images.shipped_images():
        for mode in ("max", "mean"):
            xo.stack(image.pixels, 3, mode)
    big = np.ones((4, 32, 28, 28), dtype=np.float32)  # a training batch's size does take the driver
    with pytest.raises(AssertionError, match="helper threads"):
        ops.maxpool2d_forward(big)


@pytest.mark.parametrize("kernel", ["relu", "sigmoid"])
def test_element_wise_backward_of_non_contiguous_arrays(kernel):
    """dx is written in C order whatever the layout of dy and y (a transposed dy once left dx unwritten)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 257)).astype(np.float32)
    dy = rng.standard_normal((257, 300)).astype(np.float32).T  # Fortran-ordered view
    forward, backward = getattr(ops, f"{kernel}_forward"), getattr(ops, f"{kernel}_backward")
    y = forward(np.asfortranarray(x))
    if kernel == "relu":
        np.testing.assert_array_equal(backward(dy, np.asfortranarray(y)), np.where(y > 0, dy, 0))
    else:  # the kernel computes 1 - y in float64
        np.testing.assert_allclose(backward(dy, np.asfortranarray(y)), dy * y * (1 - y), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_a_second_process_loads_everything_the_first_cnn_step_compiled(tmp_path):
    """benchmarks/compile_time.py's child, twice on one fresh cache: the first compiles, the second compiles
    nothing (every kernel of the first step, the first eval and the trainer's probe comes from the cache)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    runs = []
    for _ in range(2):
        result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compile_time.py"), "--child",
                                 "--threads", "2"], env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    cold, warm = runs
    assert cold["compiles"] and any(stats[2] for stats in cold["dispatchers"].values())
    assert warm["compiles"] == []
    assert {name: stats for name, stats in warm["dispatchers"].items() if stats[2]} == {}
    # A helper kernel called only from other kernels (conv_few_channels' per-plane loops) is compiled into its
    # callers: the warm run loads the callers from the cache and never dispatches the helper itself.
    assert warm["dispatchers"] and set(warm["dispatchers"]) <= set(cold["dispatchers"])
