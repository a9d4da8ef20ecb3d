"""Inference's Winograd F(2x2, 5x5) conv + ReLU + 2x2 max-pool: its matrices are Toom-Cook's for the points 0, 1, -1,
2, -2 and infinity, it gives the float64 reference on every split and shape it takes, only inference takes it, and
a training step around it still gets its own gradients."""

from __future__ import annotations

import itertools
import warnings
from fractions import Fraction

import numpy as np
import pytest

from convtui.core import ops
from convtui.core.nn.architectures import build_model
from convtui.core.ops import conv_winograd, jit
from tests.core import naive
from tests.core.test_conv_pipeline import blas_thread_counts, two_blas_threads  # noqa: F401 (a fixture)


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def reference(x, w, b, padding):
    r = naive.relu_forward(naive.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b, 1, padding))
    return naive.maxpool2d_forward(r, 2, 2)[0]


def test_the_matrices_are_toom_cooks_for_the_points():
    """At[i, j] = p_j^i, G[j, k] = p_j^k / prod_{l != j}(p_j - p_l), with infinity's column and row; Bt is then the
    one matrix for which At((G g) * (Bt d)) is the correlation of d with g, for every d and g."""
    points = [Fraction(p) for p in (0, 1, -1, 2, -2)]
    at = [[p ** i for p in points] + [Fraction(i)] for i in range(2)]
    g = []
    for j, p in enumerate(points):
        scale = np.prod([p - q for q in points[:j] + points[j + 1:]])
        g.append([p ** k / scale for k in range(5)])
    g.append([Fraction(k == 4) for k in range(5)])
    assert conv_winograd.AT.tolist() == [[float(v) for v in row] for row in at]
    assert conv_winograd.G.tolist() == [[float(v) for v in row] for row in g]
    # The identity, exactly, on every unit d and g: sum_j At[i, j] G[j, k] Bt[j, l] = 1 if l == i + k else 0.
    bt = [[Fraction(int(v)) for v in row] for row in conv_winograd.BT]
    for i, k, col in itertools.product(range(2), range(5), range(6)):
        assert sum(at[i][j] * g[j][k] * bt[j][col] for j in range(6)) == (1 if col == i + k else 0)


@pytest.mark.usefixtures("two_blas_threads")
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(("n", "c", "h", "w", "k", "padding"), [
    (7, 32, 14, 14, 64, "same"),  # the cnn's conv2, fewer images
    (3, 8, 16, 10, 5, "same"),  # not square
    (2, 16, 12, 12, 4, "valid"),
    (1, 8, 6, 6, 3, "valid"),  # one 2x2 block: one pooled value per filter
])
def test_inference_gives_the_float64_reference(threads, n, c, h, w, k, padding, monkeypatch):
    monkeypatch.setattr(jit, "PARALLEL_MIN_SIZE", 0)
    monkeypatch.setattr(jit, "thread_count", lambda: threads)
    seen = []
    part = conv_winograd._part

    def spy(*args):
        seen.append((args[-2], args[-1], blas_thread_counts()))
        part(*args)

    monkeypatch.setattr(conv_winograd, "_part", spy)
    x, wt, b = random((n, c, h, w), 1), random((k, c, 5, 5), 2), random(k, 3)
    b[0] = -1e4  # a filter whose every window the ReLU closes
    workspace = {}
    y, argmax = ops.conv2d_relu_maxpool_forward(x, wt, b, 1, padding, 2, 2, workspace, with_argmax=False)
    want = reference(x, wt, b, padding)
    assert argmax is None and y.shape == want.shape and y.dtype == np.float32
    # Winograd's error: a few float32 roundings of the largest products of each sum, not of the sum itself.
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=2e-6 * np.abs(want).max())
    assert np.all(y[:, 0] == 0.0)
    shares = sorted((lo, hi) for lo, hi, _ in seen)
    assert len(shares) == min(threads, n) and shares[0][0] == 0 and shares[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(shares)), "the shares tile the batch"
    assert all(counts == ([1] if len(shares) > 1 else [2]) for _, _, counts in seen)
    assert blas_thread_counts() == [2], "the count in force before comes back"


@pytest.mark.parametrize(("kernel", "stride", "pool", "dtype", "channels", "size", "with_argmax", "takes_it"), [
    (5, 1, 2, np.float32, 32, 12, False, True),
    (5, 1, 2, np.float32, 32, 12, True, False),  # training: the GEMM forward, whose winners backward needs
    (3, 1, 2, np.float32, 32, 12, False, False),
    (5, 2, 2, np.float32, 32, 12, False, False),
    (5, 1, 3, np.float32, 32, 12, False, False),
    (5, 1, 2, np.float64, 32, 12, False, False),  # float64 keeps its bit-reproducible direct loops
    (5, 1, 2, np.float32, 4, 12, False, False),  # too few channels for the channels-last paths
    (5, 1, 2, np.float32, 32, 13, False, False),  # an odd edge: its pooling window is partial, not a 2x2 block
])
def test_only_inference_of_a_5x5_conv_and_2x2_pool_takes_winograd(kernel, stride, pool, dtype, channels, size,
                                                                   with_argmax, takes_it, monkeypatch):
    calls = []
    real = conv_winograd.conv_relu_maxpool_inference
    monkeypatch.setattr(conv_winograd, "conv_relu_maxpool_inference", lambda *a: calls.append(a) or real(*a))
    x = random((2, channels, size, size), 1).astype(dtype)
    w, b = random((3, channels, kernel, kernel), 2).astype(dtype), random(3, 3).astype(dtype)
    y, _ = ops.conv2d_relu_maxpool_forward(x, w, b, stride, "same", pool, pool, {}, with_argmax=with_argmax)
    assert bool(calls) == takes_it
    r = naive.relu_forward(naive.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b, stride, "same"))
    want = naive.maxpool2d_forward(r, pool, pool)[0]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=2e-6 * np.abs(want).max())


def test_a_training_step_around_an_inference_still_gets_its_own_gradients():
    """The inference writes its padded copy into the workspace the training forward left for backward: backward
    must then see that the copy is no longer of its own input, and rebuild it."""
    x_train, x_eval = random((3, 8, 10, 10), 1), random((3, 8, 10, 10), 5)
    w, b = random((4, 8, 5, 5), 2), random(4, 3)
    workspace = {}
    y, argmax = ops.conv2d_relu_maxpool_forward(x_train, w, b, 1, "same", 2, 2, workspace)
    ops.conv2d_relu_maxpool_forward(x_eval, w, b, 1, "same", 2, 2, workspace, with_argmax=False)
    assert workspace["x_nhwc_of"] is x_eval
    dy = random(y.shape, 4)
    r = naive.relu_forward(naive.conv2d_forward(x_train.astype(np.float64), w.astype(np.float64), b, 1, "same"))
    dz = naive.relu_backward(naive.maxpool2d_backward(dy, r, 2, 2), r)
    got = ops.conv2d_relu_maxpool_backward(x_train, w, dy, argmax, 1, "same", True, workspace)
    for g, want in zip(got, naive.conv2d_backward(x_train.astype(np.float64), w.astype(np.float64), dz, 1, "same")):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-4)


def test_the_cnns_predictions_are_the_training_forwards():
    """The whole cnn: inference (Winograd conv2) and the training forward (GEMM conv2) give the same logits to
    float32 rounding and the same predicted digit."""
    model = build_model("cnn", 0)
    x = np.random.default_rng(0).random((40, 1, 28, 28), dtype=np.float32)
    trained = model.forward(x, training=True)
    inferred = model.forward(x, training=False)
    np.testing.assert_allclose(inferred, trained, rtol=1e-4, atol=1e-5 * np.abs(trained).max())
    assert np.array_equal(inferred.argmax(axis=1), trained.argmax(axis=1))


def test_the_pooling_takes_each_windows_largest_number_then_the_relu():
    """The output transform's pooling, against plain NumPy: max of each tile's 4 outputs + bias, then the ReLU.
    A NaN loses to any number in its window, a window of NaNs gives 0, and the ReLU's zero is +0.0."""
    count, p_h, p_w, n_k = 2, 3, 2, 5
    z = random((4, count * p_h * p_w * n_k), 8)
    z[1, 3], z[:, 7], z[0, 11] = np.nan, np.nan, -0.0  # one NaN among numbers; a whole window of NaNs
    z[:, 12] = -1.5
    b = random(n_k, 9)
    y = np.full((count, n_k, p_h, p_w), 99.0, dtype=np.float32)
    conv_winograd._pool_relu(z.copy(), b, 0, count, (p_h, p_w, y))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmax of an all-NaN window
        best = np.nanmax(z.reshape(4, -1, n_k) + b, axis=0)
    want = np.where(best > 0, best, np.float32(0)).reshape(count, p_h, p_w, n_k).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(y, want)  # max then bias is the same float as bias then max
    assert not np.signbit(y).any()
    assert y.reshape(count, n_k, -1).transpose(0, 2, 1).reshape(-1)[7] == 0.0  # the NaN window


def test_the_transformed_filters_are_g_w_gt():
    w = random((3, 2, 5, 5), 7)
    v = conv_winograd.transformed_filters(w)
    assert v.shape == (36, 2, 3) and v.dtype == np.float32
    for k, c in itertools.product(range(3), range(2)):
        want = conv_winograd.G @ w[k, c].astype(np.float64) @ conv_winograd.G.T
        np.testing.assert_allclose(v[:, c, k].reshape(6, 6), want, rtol=1e-6, atol=1e-7)


def test_the_inference_paths_benchmark_runs(tmp_path):
    """benchmarks/inference_paths.py, in a child (it sets up its own threads), on a few digits: both paths timed,
    and their logits compared."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "inference_paths.py"
    result = subprocess.run([sys.executable, str(script), "--rounds", "1", "--steps", "1", "--digits", "300",
                             "--threads", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert any(line.strip().startswith("winograd  forward") for line in lines)
    assert any(line.strip().startswith("gemm      forward") for line in lines)
    assert "logits on 300 test digits (fresh cnn): largest difference" in result.stdout
