"""`jit.run_range` splits a kernel's tasks over Python threads: every task exactly once, on as many threads as the
calling thread's Numba count, errors raised only after every part stopped, and the split kernels give what their
serial bodies give."""

from __future__ import annotations

import threading
import time

import numba
import numpy as np
import pytest

from convtui.core import ops
from convtui.core.ops import jit

BIG = jit.PARALLEL_MIN_SIZE  # work at which a split starts


def _record(seen, lock, start, stop):
    with lock:
        seen.append((threading.get_ident(), start, stop))


@pytest.mark.parametrize("count", [1, 2, 3, 7, 100, 1001])
@pytest.mark.parametrize("threads", [1, 2])
def test_every_task_runs_exactly_once(count, threads, monkeypatch):
    monkeypatch.setattr(jit, "thread_count", lambda: threads)
    seen, lock = [], threading.Lock()
    jit.run_range(_record, BIG, count, seen, lock)
    covered = sorted(task for _, start, stop in seen for task in range(start, stop))
    assert covered == list(range(count))
    assert len(seen) == min(threads, count)
    assert all(stop > start for _, start, stop in seen)  # no empty part is handed out


def test_small_work_stays_on_the_calling_thread(monkeypatch):
    monkeypatch.setattr(jit, "thread_count", lambda: 2)
    seen, lock = [], threading.Lock()
    jit.run_range(_record, BIG - 1, 100, seen, lock)
    assert [(ident, start, stop) for ident, start, stop in seen] == [(threading.get_ident(), 0, 100)]


def test_big_work_runs_on_two_threads_at_once(monkeypatch):
    """Both parts are in flight together: each waits (bounded) for the other to arrive."""
    monkeypatch.setattr(jit, "thread_count", lambda: 2)
    barrier = threading.Barrier(2, timeout=10)
    idents = []

    def body(start, stop):
        idents.append(threading.get_ident())
        barrier.wait()

    jit.run_range(body, BIG, 10)
    assert len(set(idents)) == 2 and threading.get_ident() in idents


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one core: there is no second thread to ask for")
def test_the_split_follows_this_threads_numba_count():
    """`runtime.use_threads(1)` on one thread (a served session's worker) keeps that thread's kernels serial."""
    counts = {}

    def worker(threads):
        numba.set_num_threads(threads)
        counts[threads] = jit.parts_for(BIG, 100)

    for threads in (1, 2):
        thread = threading.Thread(target=worker, args=(threads,))
        thread.start()
        thread.join()
    assert counts == {1: 1, 2: 2}


def test_an_error_in_a_helper_is_raised_after_every_part_stopped(monkeypatch):
    monkeypatch.setattr(jit, "thread_count", lambda: 2)
    finished = []

    def body(start, stop):
        if start > 0:
            raise ValueError("part two failed")
        time.sleep(0.2)  # the calling thread's part is still running when the helper's fails
        finished.append(start)

    with pytest.raises(ValueError, match="part two failed"):
        jit.run_range(body, BIG, 10)
    assert finished == [0]


def _cnn_layers(rng):
    x1 = rng.random((12, 1, 28, 28), dtype=np.float32)
    w1 = (rng.standard_normal((32, 1, 5, 5)) * 0.2).astype(np.float32)
    x2 = rng.standard_normal((12, 32, 14, 14)).astype(np.float32)
    w2 = (rng.standard_normal((64, 32, 5, 5)) * 0.05).astype(np.float32)
    return [(x1, w1, np.linspace(-0.1, 0.1, 32, dtype=np.float32)),
            (x2, w2, np.linspace(-0.1, 0.1, 64, dtype=np.float32))]


@pytest.mark.parametrize("layer", [0, 1], ids=["conv1-direct", "conv2-channels-last"])
def test_split_conv_layers_agree_with_their_serial_bodies(layer, monkeypatch):
    """The cnn's two fused conv + ReLU + max-pool steps, split over two threads and run serially.

    conv1's forward is bit-identical (each output belongs to one task). conv2's agrees to float32 rounding: each
    thread's GEMM runs on one BLAS thread there, and OpenBLAS rounds its one- and two-thread GEMMs differently,
    which can also move a near-tied window's winner. Backward from the same winners gives a bit-identical dx;
    dw and db are summed in per-thread parts, so they agree to float32 rounding."""
    x, w, b = _cnn_layers(np.random.default_rng(5))[layer]
    results = {}
    for split in (False, True):
        monkeypatch.setattr(jit, "PARALLEL_MIN_SIZE", 0 if split else 10**12)
        monkeypatch.setattr(jit, "thread_count", lambda: 2)
        y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, workspace={})
        winners = results[False][1] if split else argmax  # backward from the same winners both ways
        dy = np.random.default_rng(6).standard_normal(y.shape).astype(np.float32)
        results[split] = (y, argmax, *ops.conv2d_relu_maxpool_backward(x, w, dy, winners, 1, "same", workspace={}))
    (y0, a0, dx0, dw0, db0), (y1, a1, dx1, dw1, db1) = results[False], results[True]
    if layer == 0:
        np.testing.assert_array_equal(y1, y0)
        np.testing.assert_array_equal(a1, a0)
    else:
        np.testing.assert_allclose(y1, y0, rtol=0, atol=1e-6 * np.abs(y0).max())
        assert np.mean(a1 == a0) > 0.999
    np.testing.assert_array_equal(dx1, dx0)
    scale = np.abs(dw0).max()  # float32 sums of thousands of terms: compare on the gradient's own scale
    np.testing.assert_allclose(dw1, dw0, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(db1, db0, rtol=0, atol=1e-5 * np.abs(db0).max())
    assert np.abs(dw0).max() > 0.1  # a real gradient, not two empty ones
