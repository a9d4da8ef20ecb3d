"""The Winograd F(4x4, 5x5) conv + ReLU + 2x2 max-pool: its matrices are Toom-Cook's for the points 0, 1, -1, 2, -2,
1/2, -1/2 and infinity, its written-out transforms are those matrices, it gives the float64 reference (outputs,
winners and the gradients from them) on every split and shape it takes (whole tiles and tiles past the edge),
training and inference both take it and only for the shapes it computes, and an inference between a training
step's forward and backward leaves the step's gradients alone."""

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


POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))
# Winograd's error is a number of float32 roundings of the largest products of each sum, not of the sum itself, so
# it is bounded against the largest output: on random normal data (7 x 32 x 14 x 14 images, 64 filters) it was
# 3.6-4.4e-6 of the largest output for F(4x4, 5x5) and 2.1-2.7e-6 for F(2x2, 5x5), against 6e-8 for one rounding.
WINOGRAD_ERROR = 1e-5


def test_the_matrices_are_toom_cooks_for_the_points():
    """At[i, j] = p_j^i, G[j, k] = p_j^k / prod_{l != j}(p_j - p_l), with infinity's column and row; Bt is then the
    one matrix for which At((G g) * (Bt d)) is the correlation of d with g, for every d and g."""
    points = [Fraction(p) for p in POINTS]
    at = [[p ** i for p in points] + [Fraction(i == 3)] for i in range(4)]
    g = []
    for j, p in enumerate(points):
        scale = np.prod([p - q for q in points[:j] + points[j + 1:]])
        g.append([p ** k / scale for k in range(5)])
    g.append([Fraction(k == 4) for k in range(5)])
    assert conv_winograd.AT.tolist() == [[float(v) for v in row] for row in at]
    np.testing.assert_array_equal(conv_winograd.G, [[float(v) for v in row] for row in g])  # each rounded once
    # The identity, exactly, on every unit d and g: sum_j At[i, j] G[j, k] Bt[j, l] = 1 if l == i + k else 0.
    bt = [[Fraction(float(v)) for v in row] for row in conv_winograd.BT]
    assert all(v.denominator in (1, 2, 4) for row in bt for v in row), "Bt's entries are exact in binary"
    for i, k, col in itertools.product(range(4), range(5), range(8)):
        assert sum(at[i][j] * g[j][k] * bt[j][col] for j in range(8)) == (1 if col == i + k else 0)


def test_the_written_out_transforms_are_the_matrices():
    """The kernels' hand-written Bt and At columns, against the matrices, on random columns (float64, so any
    wrong coefficient shows far above rounding)."""
    columns = np.random.default_rng(4).standard_normal((50, 8))
    for column in columns:
        np.testing.assert_allclose(conv_winograd._bt_column.py_func(*column), conv_winograd.BT @ column,
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(conv_winograd._at_column.py_func(*column), conv_winograd.AT @ column,
                                   rtol=1e-12, atol=1e-12)


def assert_winners_are_the_references(argmax, x, w, b, padding, tolerance):
    """Each window's winner is a largest conv output of the float64 reference (within `tolerance`, for near ties),
    and -1 exactly where the reference's whole window is <= 0 (again but for outputs within `tolerance` of 0)."""
    conv = naive.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b, 1, padding)
    n, k, o_h, o_w = conv.shape
    windows = conv.reshape(n, k, o_h // 2, 2, o_w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, k, o_h // 2,
                                                                                             o_w // 2, 4)
    best = windows.max(axis=-1)
    assert argmax.shape == best.shape and argmax.dtype == np.int32
    assert np.all(argmax[best > tolerance] >= 0) and np.all(argmax[best < -tolerance] == -1)
    won = argmax >= 0
    flat = conv.reshape(n, k, o_h * o_w)
    at = np.take_along_axis(flat, np.where(won, argmax, 0).reshape(n, k, -1), axis=2).reshape(argmax.shape)
    assert np.all(np.abs(at - best)[won] <= tolerance)
    rows, columns = np.divmod(np.where(won, argmax, 0), o_w)  # inside its own window
    pi, pj = np.indices(argmax.shape)[2:]
    assert np.all((rows // 2 == pi)[won]) and np.all((columns // 2 == pj)[won])


@pytest.mark.usefixtures("two_blas_threads")
@pytest.mark.parametrize("with_argmax", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(("n", "c", "h", "w", "k", "padding"), [
    (7, 32, 14, 14, 64, "same"),  # the cnn's conv2, fewer images: a last tile past the edge both ways
    (3, 8, 16, 10, 5, "same"),  # not square: whole tiles down, a last tile past the edge across
    (2, 16, 12, 12, 4, "valid"),  # 8x8 output: whole tiles
    (1, 8, 6, 6, 3, "valid"),  # 2x2 output: one tile, three quarters of it past the edge
    (11, 8, 4, 18, 2, "same"),  # one tile down; more images than one step of a thread takes
])
def test_it_gives_the_float64_reference(threads, with_argmax, n, c, h, w, k, padding, monkeypatch):
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
    y, argmax = ops.conv2d_relu_maxpool_forward(x, wt, b, 1, padding, 2, 2, workspace, with_argmax=with_argmax)
    want = reference(x, wt, b, padding)
    assert y.shape == want.shape and y.dtype == np.float32
    tolerance = WINOGRAD_ERROR * np.abs(want).max()
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=tolerance)
    assert np.all(y[:, 0] == 0.0)
    if with_argmax:
        assert_winners_are_the_references(argmax, x, wt, b, padding, 2 * tolerance)
        assert np.all(argmax[:, 0] == -1)
    else:
        assert argmax is None
    shares = sorted((lo, hi) for lo, hi, _ in seen)
    assert len(shares) == min(threads, n) and shares[0][0] == 0 and shares[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(shares)), "the shares tile the batch"
    assert all(counts == ([1] if len(shares) > 1 else [2]) for _, _, counts in seen)
    assert blas_thread_counts() == [2], "the count in force before comes back"


@pytest.mark.parametrize("with_argmax", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize(("kernel", "stride", "pool", "dtype", "channels", "size", "takes_it"), [
    (5, 1, 2, np.float32, 32, 12, True),
    (3, 1, 2, np.float32, 32, 12, False),
    (5, 2, 2, np.float32, 32, 12, False),
    (5, 1, 3, np.float32, 32, 12, False),
    (5, 1, 2, np.float64, 32, 12, False),  # float64 keeps its bit-reproducible direct loops
    (5, 1, 2, np.float32, 4, 12, False),  # too few channels for the channels-last paths
    (5, 1, 2, np.float32, 32, 13, False),  # an odd edge: its pooling window is partial, not a 2x2 block
])
def test_a_5x5_conv_and_2x2_pool_takes_winograd_in_training_and_inference(kernel, stride, pool, dtype, channels,
                                                                          size, takes_it, with_argmax, monkeypatch):
    calls = []
    real = conv_winograd.conv_relu_maxpool_forward
    monkeypatch.setattr(conv_winograd, "conv_relu_maxpool_forward", lambda *a: calls.append(a) or real(*a))
    x = random((2, channels, size, size), 1).astype(dtype)
    w, b = random((3, channels, kernel, kernel), 2).astype(dtype), random(3, 3).astype(dtype)
    y, _ = ops.conv2d_relu_maxpool_forward(x, w, b, stride, "same", pool, pool, {}, with_argmax=with_argmax)
    assert bool(calls) == takes_it
    r = naive.relu_forward(naive.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b, stride, "same"))
    want = naive.maxpool2d_forward(r, pool, pool)[0]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=WINOGRAD_ERROR * np.abs(want).max())


def test_a_shorter_last_step_is_no_new_kernel_type(monkeypatch):
    """A thread's last step of fewer images hands the kernels arrays of the same Numba types as the full steps: a
    strided view there was another specialisation, compiled in the middle of the first evaluation (1.7 s)."""
    from convtui.core.ops import conv

    monkeypatch.setattr(jit, "thread_count", lambda: 1)
    x, w, b = random((2 * conv.WINOGRAD_CHUNK + 1, 8, 12, 12), 1), random((4, 8, 5, 5), 2), random(4, 3)
    for with_argmax in (False, True):  # training and inference: one signature of each kernel between them
        ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, {}, with_argmax=with_argmax)
    for kernel in (conv_winograd._input_tiles, conv_winograd._output_tiles):
        assert len(kernel.signatures) == 1 and all(a.layout == "C" for a in kernel.signatures[0]
                                                   if hasattr(a, "layout")), kernel.signatures


def test_a_training_step_around_an_inference_still_gets_its_own_gradients():
    """An inference between a training forward and its backward, sharing their workspace: its padded copy is its
    own, so backward finds the copy of its own input untouched and gets its own gradients, from the winners of
    its own forward."""
    x_train, x_eval = random((3, 8, 10, 10), 1), random((3, 8, 10, 10), 5)
    w, b = random((4, 8, 5, 5), 2), random(4, 3)
    workspace = {}
    y, argmax = ops.conv2d_relu_maxpool_forward(x_train, w, b, 1, "same", 2, 2, workspace)
    kept = workspace["wino_train_xp"].copy()
    ops.conv2d_relu_maxpool_forward(x_eval, w, b, 1, "same", 2, 2, workspace, with_argmax=False)
    assert workspace["wino_train_xp_of"] is x_train and kept.shape == (3, 16, 16, 8)  # 3 tiles a side
    np.testing.assert_array_equal(workspace["wino_train_xp"], kept)
    assert "x_nhwc" not in workspace  # backward below reads the Winograd forward's copy, making none of its own
    dy = random(y.shape, 4)
    r = naive.relu_forward(naive.conv2d_forward(x_train.astype(np.float64), w.astype(np.float64), b, 1, "same"))
    dz = naive.relu_backward(naive.maxpool2d_backward(dy, r, 2, 2), r)
    got = ops.conv2d_relu_maxpool_backward(x_train, w, dy, argmax, 1, "same", True, workspace)
    assert "x_nhwc" not in workspace
    for g, want in zip(got, naive.conv2d_backward(x_train.astype(np.float64), w.astype(np.float64), dz, 1, "same")):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-4)


def test_a_backward_for_another_input_rebuilds_its_padded_copy():
    """The Winograd forward's copy is tagged with its input: a backward for another input builds its own."""
    x1, x2 = random((2, 8, 8, 8), 1), random((2, 8, 8, 8), 2)
    w, b = random((3, 8, 5, 5), 3), random(3, 4)
    workspace = {}
    _, argmax2 = ops.conv2d_relu_maxpool_forward(x2, w, b, 1, "same", 2, 2, workspace)
    ops.conv2d_relu_maxpool_forward(x1, w, b, 1, "same", 2, 2, workspace)  # the workspace now holds x1's copy
    dy = random(argmax2.shape, 5)
    r = naive.relu_forward(naive.conv2d_forward(x2.astype(np.float64), w.astype(np.float64), b, 1, "same"))
    dz = naive.relu_backward(naive.maxpool2d_backward(dy, r, 2, 2), r)
    got = ops.conv2d_relu_maxpool_backward(x2, w, dy, argmax2, 1, "same", True, workspace)
    for g, want in zip(got, naive.conv2d_backward(x2.astype(np.float64), w.astype(np.float64), dz, 1, "same")):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-4)


def test_the_cnns_logits_are_the_gemm_paths_in_training_and_inference(monkeypatch):
    """The whole cnn, its conv2 by Winograd and by im2col + GEMM (Winograd turned off): the same logits to float32
    rounding and the same predicted digits, in a training forward and in inference, and the same gradients."""
    x = np.random.default_rng(0).random((40, 1, 28, 28), dtype=np.float32)
    labels = np.arange(40) % 10

    def run():
        model = build_model("cnn", 0)
        trained = model.forward(x, training=True)
        _, dlogits, _ = ops.softmax_cross_entropy(trained, labels)
        model.backward(dlogits, input_grad=False)
        return trained, model.forward(x, training=False), {p.name: p.grad.copy() for p in model.params()}

    winograd = run()
    monkeypatch.setattr(conv_winograd, "applies", lambda *_: False)
    gemm = run()
    for got, want in zip(winograd[:2], gemm[:2]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
        assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))
    for name, want in gemm[2].items():
        np.testing.assert_allclose(winograd[2][name], want, rtol=1e-3, atol=1e-4 * np.abs(want).max(), err_msg=name)


def reference_output_tiles(m, bias, count, t_h, t_w, p_h, p_w):
    """The output kernel in plain NumPy (float64): Y = At M A for each tile and filter, where a term whose
    coefficient is 0 is left out (as the written-out transform leaves it out, so a NaN spreads only where it
    counts), then the largest number of each 2x2 window (NaNs lose; a window of NaNs stays NaN) plus the bias, then
    the ReLU, with a whole-tile grid cropped to (p_h, p_w)."""
    at = conv_winograd.AT
    tiles = m.astype(np.float64).reshape(8, 8, count, t_h, t_w, -1)  # (a, b, n, ti, tj, k)
    y = np.zeros((4, 4) + tiles.shape[2:])
    for i, j, a, b in itertools.product(range(4), range(4), range(8), range(8)):
        if at[i, a] and at[j, b]:
            y[i, j] += at[i, a] * at[j, b] * tiles[a, b]
    windows = y.reshape(2, 2, 2, 2, *y.shape[2:]).transpose(0, 2, 1, 3, *range(4, y.ndim + 2))  # (wi, wj, di, dj, ...)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmax of an all-NaN window
        best = np.nanmax(windows.reshape(2, 2, 4, *y.shape[2:]), axis=2) + bias  # (wi, wj, n, ti, tj, k)
    relu = np.where(best > 0, best, 0.0)
    grid = relu.transpose(2, 3, 0, 4, 1, 5).reshape(count, 2 * t_h, 2 * t_w, -1)
    # The winner: the first of the window's largest numbers (its NaNs left out), as a flat index into the conv
    # output of width 2 * p_w; -1 where the ReLU closed the window.
    flat = np.where(np.isnan(windows), -np.inf, windows).reshape(2, 2, 4, *y.shape[2:])
    first = np.argmax(flat, axis=2)  # (wi, wj, n, ti, tj, k): 0..3 = (di, dj) in row order
    wi, wj, _, ti, tj, _ = np.indices(first.shape)
    rows, columns = 4 * ti + 2 * wi + first // 2, 4 * tj + 2 * wj + first % 2
    at = np.where(best > 0, rows * 2 * p_w + columns, -1)
    at_grid = at.transpose(2, 3, 0, 4, 1, 5).reshape(count, 2 * t_h, 2 * t_w, -1)
    return grid[:, :p_h, :p_w], at_grid[:, :p_h, :p_w]


def test_the_output_kernel_transforms_then_takes_each_windows_largest_number_then_the_relu():
    """The output transform and pooling kernel, against plain NumPy: At M A, the largest of each window + bias, then
    the ReLU, and where each window's winner is; windows past a partial last tile are not written. A NaN loses to
    any number in its window, a window of NaNs gives 0 and no winner, and the ReLU's zero is +0.0."""
    count, t_h, t_w, p_h, p_w, n_k = 2, 2, 2, 3, 4, 5
    m = random((64, count * t_h * t_w, n_k), 8)
    m[0, 1, 2] = np.nan  # position (0, 0) feeds only conv output (0, 0): one NaN among three numbers
    m[9, 2, 3] = np.nan  # position (1, 1) feeds all 16 outputs: every window of that tile is all NaN
    m[:, 3, 4] = 0.0  # every output 0: the ReLU of -0.0 + a negative bias below
    bias = random(n_k, 9)
    bias[4] = -1.0
    pooled = np.full((count, p_h, p_w, n_k), 99.0, dtype=np.float32)
    pooled_at = np.full((count, p_h, p_w, n_k), 99, dtype=np.int32)
    tmp, block = np.empty((4, 8, n_k), dtype=np.float32), np.empty((4, 4, n_k), dtype=np.float32)
    conv_winograd._output_tiles(m, bias, count, t_h, t_w, tmp, block, pooled, pooled_at)
    want, want_at = reference_output_tiles(m, bias, count, t_h, t_w, p_h, p_w)
    np.testing.assert_allclose(pooled, want, rtol=1e-5, atol=1e-5 * np.nanmax(np.abs(want)))
    np.testing.assert_array_equal(pooled_at, want_at)
    assert np.any(pooled_at == -1) and np.any(pooled_at > 2 * p_w)  # closed windows, and winners past the first row
    assert not np.isnan(pooled).any() and not np.signbit(pooled).any()
    n, ti, tj = np.unravel_index(2, (count, t_h, t_w))
    assert np.all(pooled[n, 2 * ti:2 * ti + 2, 2 * tj:2 * tj + 2, 3] == 0.0)  # the NaN tile's windows
    assert np.all(pooled_at[n, 2 * ti:2 * ti + 2, 2 * tj:2 * tj + 2, 3] == -1)
    n, ti, tj = np.unravel_index(3, (count, t_h, t_w))  # the all-zero tile: its windows inside the grid
    assert ti == 1 and 2 * ti + 1 == p_h and np.all(pooled[n, 2 * ti, 2 * tj:2 * tj + 2, 4] == 0.0)


def test_the_transformed_filters_are_g_w_gt():
    w = random((3, 2, 5, 5), 7)
    v = conv_winograd.transformed_filters(w)
    assert v.shape == (64, 2, 3) and v.dtype == np.float32
    for k, c in itertools.product(range(3), range(2)):
        want = conv_winograd.G @ w[k, c].astype(np.float64) @ conv_winograd.G.T
        np.testing.assert_allclose(v[:, c, k].reshape(8, 8), want, rtol=1e-6, atol=1e-7)


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
