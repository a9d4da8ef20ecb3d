"""The channels-last conv + ReLU + max-pool forward runs one pipeline per thread, each on its own images with its
own one-thread GEMM: every split and chunk size gives the reference, BLAS runs on one thread only inside, and
the count in force before comes back afterwards, however sections overlap or fail."""

from __future__ import annotations

import ctypes
import itertools
import threading

import numpy as np
import pytest

from convtui.core import ops
from convtui.core.ops import blas_threads, conv, conv_nhwc, conv_winograd, jit
from tests.core import naive


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def blas_thread_counts():
    return [blas_threads.blas_thread_count()]


@pytest.fixture
def two_blas_threads():
    """OpenBLAS on 2 threads for the test (more than the 1 a section sets), and put back after. NumPy's wheels
    bundle OpenBLAS, which the project installs, so a missing library fails rather than skips."""
    set_threads = blas_threads.openblas_function("set_num_threads")
    assert set_threads is not None, "no OpenBLAS found in this process"
    set_threads.argtypes = [ctypes.c_int]
    before = blas_threads.blas_thread_count()
    set_threads(2)
    assert blas_thread_counts() == [2]
    yield
    set_threads(before)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("budget", ["one image per chunk", "whole share per chunk"])
def test_every_split_and_chunk_gives_the_reference(threads, budget, two_blas_threads, monkeypatch):
    monkeypatch.setattr(jit, "PARALLEL_MIN_SIZE", 0)
    monkeypatch.setattr(jit, "thread_count", lambda: threads)
    monkeypatch.setattr(conv, "CHANNELS_LAST_BUDGET_BYTES", 1 if budget == "one image per chunk" else 10**9)
    monkeypatch.setattr(conv_winograd, "applies", lambda *_: False)  # this shape's path for any other filter size
    seen = []  # (images, BLAS threads) as each part saw them
    part = conv_nhwc._forward_part

    def spy(*args):
        seen.append((args[-2], args[-1], blas_thread_counts()))
        part(*args)

    monkeypatch.setattr(conv_nhwc, "_forward_part", spy)
    # The cnn's second layer, smaller: 32 channels in (the channels-last path), 7 images over up to 3 threads.
    x, w, b = random((7, 32, 8, 8), 1), random((6, 32, 5, 5), 2), random(6, 3)
    b[0] = -80.0  # a filter with no live window: argmax -1 everywhere
    workspace = {}
    y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, workspace)
    r = naive.relu_forward(naive.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b, 1, "same"))
    ref_y, ref_argmax = naive.maxpool2d_forward(r, 2, 2)
    np.testing.assert_allclose(y, ref_y, rtol=2e-5, atol=2e-5)
    alive = ref_y > 0
    np.testing.assert_array_equal(argmax[alive], ref_argmax[alive])
    assert np.all(argmax[~alive] == -1) and np.all(argmax[:, 0] == -1)

    shares = sorted((lo, hi) for lo, hi, _ in seen)
    assert shares[0][0] == 0 and shares[-1][1] == 7 and len(shares) == threads
    assert all(a[1] == b[0] for a, b in itertools.pairwise(shares)), "the shares tile the batch"
    assert all(counts == ([1] if threads > 1 else [2]) for _, _, counts in seen)
    assert blas_thread_counts() == [2], "the count in force before comes back"
    chunk_rows = workspace["cols_t0"].shape[0]
    assert chunk_rows == (64 if budget == "one image per chunk" else -(-7 // threads) * 64)
    assert workspace["x_nhwc_of"] is x  # the sparse backward reuses this padded copy

    # ... and backward from it gives the reference gradients.
    dy = random(y.shape, 4)
    dz = naive.relu_backward(naive.maxpool2d_backward(dy, r, 2, 2), r)
    for got, want in zip(ops.conv2d_relu_maxpool_backward(x, w, dy, argmax, 1, "same", True, workspace),
                         naive.conv2d_backward(x.astype(np.float64), w.astype(np.float64), dz, 1, "same")):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_inference_splits_the_same_way_without_argmax(monkeypatch):
    monkeypatch.setattr(jit, "PARALLEL_MIN_SIZE", 0)
    monkeypatch.setattr(jit, "thread_count", lambda: 2)
    x, w, b = random((5, 16, 6, 6), 5), random((4, 16, 3, 3), 6), random(4, 7)
    y, _ = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, {})
    y_only, none = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, {}, with_argmax=False)
    assert none is None
    np.testing.assert_array_equal(y_only, y)


def test_overlapping_sections_restore_the_count_once_the_last_one_ends(two_blas_threads):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def second():
        first_in.wait()
        with blas_threads.one_blas_thread():
            second_in.set()
            first_out.wait()
            seen["after the first left"] = blas_thread_counts()
        seen["after both"] = blas_thread_counts()

    thread = threading.Thread(target=second)
    thread.start()
    with blas_threads.one_blas_thread():
        first_in.set()
        second_in.wait()
        seen["both in"] = blas_thread_counts()
    first_out.set()
    thread.join()
    assert seen == {"both in": [1], "after the first left": [1], "after both": [2]}


def test_a_failing_section_still_restores_the_count(two_blas_threads):
    with pytest.raises(RuntimeError, match="boom"), blas_threads.one_blas_thread(), blas_threads.one_blas_thread():
        assert blas_thread_counts() == [1]
        raise RuntimeError("boom")
    assert blas_thread_counts() == [2]


def test_a_failing_part_still_restores_the_count(two_blas_threads, monkeypatch):
    """An error in one thread's share is raised after every part stopped, and BLAS gets its count back."""
    monkeypatch.setattr(jit, "PARALLEL_MIN_SIZE", 0)
    monkeypatch.setattr(jit, "thread_count", lambda: 2)
    part = conv_nhwc._forward_part

    def fail_second(*args):
        if args[-2] > 0:
            raise MemoryError("no room")
        part(*args)

    monkeypatch.setattr(conv_nhwc, "_forward_part", fail_second)
    x, w, b = random((4, 16, 6, 6), 8), random((4, 16, 3, 3), 9), random(4, 10)
    with pytest.raises(MemoryError, match="no room"):
        ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, {})
    assert blas_thread_counts() == [2]


def test_without_openblas_sections_change_nothing_and_the_pipeline_still_runs(monkeypatch):
    """Another BLAS (or no /proc to find OpenBLAS in): no thread count to read or set, and the split forward still
    gives what the serial one gives."""
    monkeypatch.setattr(blas_threads, "_library", None)
    monkeypatch.setattr(blas_threads, "loaded_openblas_paths", list)
    assert blas_threads.blas_thread_count() is None
    with blas_threads.one_blas_thread():
        assert blas_threads.blas_thread_count() is None
    x, w, b = random((5, 16, 6, 6), 11), random((4, 16, 3, 3), 12), random(4, 13)
    monkeypatch.setattr(jit, "PARALLEL_MIN_SIZE", 10**12)
    serial = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, {})
    monkeypatch.setattr(jit, "PARALLEL_MIN_SIZE", 0)
    monkeypatch.setattr(jit, "thread_count", lambda: 2)
    split = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, {})
    np.testing.assert_allclose(split[0], serial[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(split[1][serial[0] > 1e-4], serial[1][serial[0] > 1e-4])
