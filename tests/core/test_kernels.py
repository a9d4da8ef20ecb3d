"""Every kernel against its plain-loop reference in tests/core/naive.py, over many shapes, strides and paddings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convtui.core import ops
from convtui.core.ops import jit
from tests.core import naive

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}


def random(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------------------------------
# Shape helpers
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(1, 30))
@pytest.mark.parametrize("f", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_same_padding_follows_tensorflow_rule(n, f, s):
    assert ops.same_padding(n, f, s) == naive.same_padding(n, f, s)
    top, bottom = ops.same_padding(n, f, s)
    assert ops.conv_output_size(n, f, s, top, bottom) == math.ceil(n / s)


def test_same_padding_asymmetric_cases_put_the_odd_pixel_after():
    assert ops.same_padding(28, 5, 2) == (1, 2)
    assert ops.same_padding(7, 2, 2) == (0, 1)
    assert ops.same_padding(28, 5, 1) == (2, 2)


def test_resolve_padding_forms():
    assert ops.resolve_padding("valid", 9, 9, 3, 3, 1, 1) == (0, 0, 0, 0)
    assert ops.resolve_padding("SAME", 28, 28, 5, 5, 2, 2) == (1, 2, 1, 2)
    assert ops.resolve_padding(2, 9, 9, 3, 3, 1, 1) == (2, 2, 2, 2)
    assert ops.resolve_padding((1, 3), 9, 9, 3, 3, 1, 1) == (1, 1, 3, 3)
    assert ops.resolve_padding((0, 1, 2, 3), 9, 9, 3, 3, 1, 1) == (0, 1, 2, 3)
    for bad in ("full", -1, (1, 2, 3)):
        with pytest.raises(ValueError):
            ops.resolve_padding(bad, 9, 9, 3, 3, 1, 1)


@pytest.mark.parametrize("n", range(1, 20))
@pytest.mark.parametrize("f", [1, 2, 3, 5])
@pytest.mark.parametrize("s", [1, 2, 3, 4, 6])
def test_pool_output_size_keeps_partial_windows(n, f, s):
    assert ops.pool_output_size(n, f, s) == naive.pool_output_size(n, f, s)


def test_pool_output_size_lecture_case():
    assert ops.pool_output_size(7, 2, 2) == 4
    assert ops.pool_output_size(28, 2, 2) == 14


# ----------------------------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------------------------

# (N, C, H, W, K, FH, FW, stride, padding)
CONV_CASES = [
    (2, 1, 7, 7, 2, 3, 3, 1, "valid"),
    (2, 1, 9, 9, 3, 3, 3, 1, "same"),
    (1, 3, 8, 6, 4, 3, 3, 1, "same"),
    (2, 2, 11, 11, 3, 5, 5, 1, "same"),
    (1, 2, 12, 12, 2, 5, 5, 2, "same"),  # even input, stride 2: asymmetric (1, 2) like n=28 f=5 s=2
    (2, 1, 7, 7, 2, 2, 2, 2, "same"),  # n=7 f=2 s=2: (0, 1)
    (1, 2, 28, 28, 2, 5, 5, 2, "same"),
    (2, 3, 9, 10, 2, 3, 2, 2, "valid"),
    (1, 2, 10, 9, 3, 3, 3, 3, "valid"),
    (1, 2, 10, 11, 2, 3, 3, 3, "same"),
    (2, 2, 9, 9, 2, 3, 3, (1, 2), "same"),  # unequal strides
    (1, 1, 8, 11, 2, 2, 4, (3, 1), "valid"),
    (1, 2, 6, 6, 3, 3, 3, 1, 1),  # explicit p
    (1, 2, 6, 7, 2, 3, 3, 2, 2),
    (2, 2, 5, 6, 2, 3, 3, 1, (0, 2, 1, 0)),  # (top, bottom, left, right)
    (1, 1, 5, 5, 1, 5, 5, 1, "valid"),  # filter as large as the input: 1x1 output
    (3, 4, 5, 5, 5, 1, 1, 1, "valid"),  # 1x1 conv
    (1, 3, 13, 7, 2, 4, 3, (2, 3), (1, 1, 0, 2)),
]


def _conv_id(case):
    return "N{}C{}H{}W{}K{}F{}x{}s{}p{}".format(*case).replace(" ", "")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv2d_forward_matches_naive(case, dtype):
    n, c, h, w_, k, f_h, f_w, stride, padding = case
    x, w, b = random((n, c, h, w_), 1, dtype), random((k, c, f_h, f_w), 2, dtype), random((k,), 3, dtype)
    y = ops.conv2d_forward(x, w, b, stride, padding)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, naive.conv2d_forward(x, w, b, stride, padding), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv2d_backward_matches_naive(case, dtype):
    n, c, h, w_, k, f_h, f_w, stride, padding = case
    x, w = random((n, c, h, w_), 4, dtype), random((k, c, f_h, f_w), 5, dtype)
    y_shape = ops.conv2d_forward(x, w, None, stride, padding).shape
    dy = random(y_shape, 6, dtype)
    dx, dw, db = ops.conv2d_backward(x, w, dy, stride, padding)
    ref_dx, ref_dw, ref_db = naive.conv2d_backward(x, w, dy, stride, padding)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (k,)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    np.testing.assert_allclose(dx, ref_dx, **TOL[dtype])
    np.testing.assert_allclose(dw, ref_dw, **TOL[dtype])
    np.testing.assert_allclose(db, ref_db, **TOL[dtype])


def test_conv2d_forward_without_bias_and_with_views():
    x = random((2, 3, 9, 9), 7)[:, :, ::1, :]  # a non-contiguous view must work too
    x_view = np.asfortranarray(x)
    w = random((2, 3, 3, 3), 8)
    np.testing.assert_allclose(ops.conv2d_forward(x_view, w, None, 1, "same"),
                               naive.conv2d_forward(x, w, None, 1, "same"), rtol=1e-10, atol=1e-12)


def test_conv2d_rejects_bad_shapes():
    with pytest.raises(ValueError, match="channels"):
        ops.conv2d_forward(np.zeros((1, 2, 5, 5)), np.zeros((1, 3, 3, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        ops.conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5)))
    with pytest.raises(ValueError, match="stride"):
        ops.conv2d_forward(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), None, 0)
    with pytest.raises(ValueError):
        ops.conv2d_forward(np.zeros((5, 5)), np.zeros((1, 1, 3, 3)))


def test_conv2d_lecture_style_small_grid():
    """A hand-checkable case: a 3x3 vertical-edge filter on a 4x4 step image."""
    x = np.array([[0, 0, 9, 9]] * 4, dtype=np.float64).reshape(1, 1, 4, 4)
    w = np.array([[1, 0, -1]] * 3, dtype=np.float64).reshape(1, 1, 3, 3)
    y = ops.conv2d_forward(x, w, None, 1, "valid")
    np.testing.assert_array_equal(y[0, 0], [[-27, -27], [-27, -27]])


# ----------------------------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------------------------

# (N, C, H, W, pool, stride)
POOL_CASES = [
    (2, 3, 8, 8, 2, 2),
    (1, 2, 7, 7, 2, 2),  # the lecture's 7x7 -> 4x4
    (2, 1, 7, 9, 3, 2),  # overlapping windows with partial edges
    (1, 2, 9, 9, 3, 3),
    (1, 1, 5, 5, 2, 1),
    (2, 2, 6, 5, (2, 3), (1, 2)),
    (1, 1, 3, 3, 4, 4),  # window larger than the input
    (1, 1, 10, 10, 1, 3),  # stride larger than the window
    (2, 4, 28, 28, 2, 2),
    (2, 3, 11, 13, 3, None),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_maxpool2d_matches_naive(case, dtype):
    n, c, h, w, pool, stride = case
    x = random((n, c, h, w), 11, dtype)
    y, argmax = ops.maxpool2d_forward(x, pool, stride)
    ref_y, ref_argmax = naive.maxpool2d_forward(x, pool, stride)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_array_equal(argmax, ref_argmax)
    dy = random(y.shape, 12, dtype)
    dx = ops.maxpool2d_backward(dy, argmax, x.shape)
    np.testing.assert_allclose(dx, naive.maxpool2d_backward(dy, x, pool, stride), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_meanpool2d_matches_naive(case, dtype):
    n, c, h, w, pool, stride = case
    x = random((n, c, h, w), 13, dtype)
    y = ops.meanpool2d_forward(x, pool, stride)
    np.testing.assert_allclose(y, naive.meanpool2d_forward(x, pool, stride), **TOL[dtype])
    dy = random(y.shape, 14, dtype)
    dx = ops.meanpool2d_backward(dy, x.shape, pool, stride)
    np.testing.assert_allclose(dx, naive.meanpool2d_backward(dy, x.shape, pool, stride), **TOL[dtype])


def test_maxpool_lecture_7x7_to_4x4_keeps_the_edge():
    x = np.arange(49, dtype=np.float64).reshape(1, 1, 7, 7)
    y, _ = ops.maxpool2d_forward(x, 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[8, 10, 12, 13], [22, 24, 26, 27], [36, 38, 40, 41], [43, 45, 47, 48]])


def test_maxpool_ties_and_negative_inputs():
    x = -np.ones((1, 1, 4, 4))
    y, argmax = ops.maxpool2d_forward(x, 2, 2)
    np.testing.assert_array_equal(y, -1.0)
    np.testing.assert_array_equal(argmax[0, 0], [[0, 2], [8, 10]])  # the first cell of each tied window


# ----------------------------------------------------------------------------------------------------
# Activations and dense
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4, 5)])
def test_relu_and_sigmoid_match_naive(shape, dtype):
    x = random(shape, 21, dtype) * 5
    x.flat[0] = 0.0
    dy = random(shape, 22, dtype)
    y = ops.relu_forward(x)
    np.testing.assert_array_equal(y, naive.relu_forward(x))
    np.testing.assert_array_equal(ops.relu_backward(dy, y), naive.relu_backward(dy, y))
    s = ops.sigmoid_forward(x)
    np.testing.assert_allclose(s, naive.sigmoid_forward(x), **TOL[dtype])
    np.testing.assert_allclose(ops.sigmoid_backward(dy, s), naive.sigmoid_backward(dy, s), **TOL[dtype])
    assert y.dtype == s.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("relu", [False, True])
def test_add_bias_in_place_is_numpy_add_then_maximum_nan_included(dtype, relu):
    """The dense layers' bias (and fused ReLU) pass: exactly `y += b` then np.maximum(y, 0), so a NaN from a
    diverging layer still reaches the loss; the array it returns is the one it was given."""
    y = random((37, 29), 33, dtype) * 5
    y[0, :4] = [np.nan, -np.inf, np.inf, 0.0]
    b = random((29,), 34, dtype)
    expected = y + b
    if relu:
        expected = np.maximum(expected, 0)
    out = ops.add_bias_in_place(y, b, relu)
    assert out is y
    np.testing.assert_array_equal(y, expected)
    assert np.isnan(y[0, 0]) and y[0, 2] == np.inf and y[0, 1] == (0.0 if relu else -np.inf)
    single = random((29,), 35, dtype)  # one sample, no batch axis
    np.testing.assert_array_equal(ops.add_bias_in_place(single.copy(), b, relu),
                                  np.maximum(single + b, 0) if relu else single + b)


def test_add_bias_in_place_refuses_strided_rows_and_a_wrong_bias():
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.add_bias_in_place(np.ones((4, 6), dtype=np.float32)[:, ::2], np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match="bias of shape"):
        ops.add_bias_in_place(np.ones((4, 6), dtype=np.float32), np.ones(5, dtype=np.float32))


def test_sigmoid_is_finite_at_extremes():
    s = ops.sigmoid_forward(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]))
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, [0.0, 1.9287498479639178e-22, 0.5, 1.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_elementwise_bodies_write_their_range_and_nothing_else(dtype):
    """The bodies loop over [start:stop] views from 0 (so that they vectorise): each range gives the whole-array
    result on its own slots, NaN included, and leaves every other slot as it was."""
    from convtui.core.ops import elementwise

    size = 1003  # odd, so that the ranges end off a SIMD boundary
    x = random((size,), 31, dtype) * 5
    x[[0, 500, 1002]] = [0.0, np.nan, -0.0]
    dy = random((size,), 32, dtype)
    y = naive.relu_forward(x)
    s = elementwise.sigmoid_forward(x)
    cases = [
        (elementwise._relu_forward_range, (x,), y),
        (elementwise._relu_backward_range, (dy, y), np.where(y > 0, dy, 0.0)),
        (elementwise._sigmoid_forward_range, (x,), s),
        (elementwise._sigmoid_backward_range, (dy, s), dy * s * (1.0 - s)),
    ]
    for body, inputs, whole in cases:
        for start, stop in [(0, size), (0, 17), (17, 520), (520, size), (999, size), (400, 400)]:
            out = np.full(size, 7.0, dtype=dtype)
            body(*inputs, out, start, stop)
            np.testing.assert_allclose(out[start:stop], whole[start:stop], **TOL[dtype])
            assert np.all(out[:start] == 7.0) and np.all(out[stop:] == 7.0), (body.__name__, start, stop)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (3, 7, 5), (4, 16, 10)])
def test_dense_matches_naive(n, i, o, dtype):
    """Dense runs on BLAS through NumPy inside the layer (there is no separate dense kernel)."""
    from convtui.core.nn.layers import Dense

    x, w, b, dy = random((n, i), 31, dtype), random((i, o), 32, dtype), random((o,), 33, dtype), random((n, o), 34, dtype)
    layer = Dense(i, o, dtype=dtype)
    layer.w.value[...], layer.b.value[...] = w, b
    np.testing.assert_allclose(layer.forward(x, training=True), naive.dense_forward(x, w, b), **TOL[dtype])
    dx = layer.backward(dy)
    for got, ref in zip((dx, layer.w.grad, layer.b.grad), naive.dense_backward(x, w, dy)):
        np.testing.assert_allclose(got, ref, **TOL[dtype])


# ----------------------------------------------------------------------------------------------------
# Softmax cross-entropy, dropout, optimisers
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,k", [(1, 2), (5, 10), (17, 3)])
def test_softmax_cross_entropy_matches_log_softmax(n, k, dtype):
    logits = random((n, k), 41, dtype) * 3
    labels = np.random.default_rng(42).integers(0, k, n)
    loss, dlogits, probs = ops.softmax_cross_entropy(logits, labels)
    ref_loss, ref_dlogits, ref_probs = naive.softmax_cross_entropy(logits, labels)
    assert dlogits.dtype == dtype
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6 if dtype is np.float32 else 1e-12)
    np.testing.assert_allclose(dlogits, ref_dlogits, **TOL[dtype])
    np.testing.assert_allclose(probs, ref_probs, **TOL[dtype])


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    loss, dlogits, probs = ops.softmax_cross_entropy(logits, np.array([2, 1]))
    np.testing.assert_allclose(loss, (2000.0 + math.log(3)) / 2)
    assert np.all(np.isfinite(dlogits)) and np.all(np.isfinite(probs))


def test_softmax_cross_entropy_rejects_bad_labels_shape():
    with pytest.raises(ValueError):
        ops.softmax_cross_entropy(np.zeros((3, 4)), np.zeros(2, dtype=int))


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_keeps_the_expected_fraction_and_scales(rate):
    x = np.ones((200, 500), dtype=np.float32)
    y, mask = ops.dropout_forward(x, rate, np.random.default_rng(0))
    kept = mask != 0
    assert abs(kept.mean() - (1 - rate)) < 0.01
    np.testing.assert_allclose(mask[kept], 1 / (1 - rate), rtol=1e-6)
    np.testing.assert_allclose(y, x * mask)
    assert abs(y.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    dy = random(x.shape, 51, np.float32)
    np.testing.assert_allclose(ops.dropout_backward(dy, mask), dy * mask)


def test_dropout_rate_zero_is_identity_and_seeded():
    x = random((4, 6), 52)
    y, mask = ops.dropout_forward(x, 0.0, np.random.default_rng(0))
    assert mask is None and np.array_equal(y, x)
    a = ops.dropout_forward(x, 0.3, np.random.default_rng(5))[1]
    b = ops.dropout_forward(x, 0.3, np.random.default_rng(5))[1]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_update_matches_formula_over_steps(dtype):
    shape = (3, 4, 5)
    param, ref_param = random(shape, 61, dtype), random(shape, 61, np.float64)
    m, v = np.zeros(shape, dtype), np.zeros(shape, dtype)
    ref_m, ref_v = np.zeros(shape), np.zeros(shape)
    for t in range(1, 6):
        grad = random(shape, 70 + t, dtype)
        ops.adam_update(param, grad, m, v, 0.01, t)
        naive.adam_update(ref_param, grad.astype(np.float64), ref_m, ref_v, 0.01, t)
    np.testing.assert_allclose(param, ref_param, **TOL[dtype])
    np.testing.assert_allclose(m, ref_m, **TOL[dtype])
    np.testing.assert_allclose(v, ref_v, **TOL[dtype])


def test_adam_first_step_moves_each_weight_by_lr():
    """With bias correction, step 1 moves every weight by lr * g / (|g| + eps') ~ lr against its gradient sign."""
    param = np.zeros(5)
    grad = np.array([3.0, -0.5, 2.0, -7.0, 0.1])
    ops.adam_update(param, grad, np.zeros(5), np.zeros(5), 0.001, 1)
    np.testing.assert_allclose(param, -0.001 * np.sign(grad), rtol=1e-4)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_update_matches_formula(momentum):
    param, ref_param = random((6, 7), 81), random((6, 7), 81)
    velocity, ref_velocity = np.zeros((6, 7)), np.zeros((6, 7))
    for t in range(3):
        grad = random((6, 7), 82 + t)
        ops.sgd_update(param, grad, velocity, 0.1, momentum)
        naive.sgd_update(ref_param, grad, ref_velocity, 0.1, momentum)
    np.testing.assert_allclose(param, ref_param, rtol=1e-12)
    np.testing.assert_allclose(velocity, ref_velocity, rtol=1e-12)


@pytest.mark.parametrize("parallel", [False, True])
def test_elementwise_kernels_in_parallel_blocks_and_serially(parallel, monkeypatch):
    """Big arrays run in parallel blocks (the last one partial), small ones serially: both give the reference."""
    monkeypatch.setattr(jit, "PARALLEL_MIN_SIZE", 0 if parallel else 10**9)
    shape = (3, 16411)  # more than two 16,384-element blocks
    x, dy = random(shape, 91, np.float32) * 4, random(shape, 92, np.float32)
    y = ops.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(ops.relu_backward(dy, y), np.where(y > 0, dy, 0))
    s = ops.sigmoid_forward(x)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ops.sigmoid_backward(dy, s), dy * s * (1 - s), rtol=1e-6)
    param, ref = random(shape, 93), random(shape, 93)
    m, v, ref_m, ref_v = (np.zeros(shape) for _ in range(4))
    ops.adam_update(param, dy.astype(np.float64), m, v, 0.01, 3)
    naive.adam_update(ref, dy.astype(np.float64), ref_m, ref_v, 0.01, 3)
    np.testing.assert_allclose(param, ref, rtol=1e-12)
    velocity, ref_velocity = np.zeros(shape), np.zeros(shape)
    ops.sgd_update(param, dy.astype(np.float64), velocity, 0.1, 0.9)
    naive.sgd_update(ref, dy.astype(np.float64), ref_velocity, 0.1, 0.9)
    np.testing.assert_allclose(param, ref, rtol=1e-12)
    logits, labels = random((7000, 10), 94), np.random.default_rng(95).integers(0, 10, 7000)
    loss, dlogits, probs = ops.softmax_cross_entropy(logits, labels)
    ref_loss, ref_dlogits, ref_probs = naive.softmax_cross_entropy(logits, labels)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(dlogits, ref_dlogits, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(probs, ref_probs, rtol=1e-10, atol=1e-15)


# ----------------------------------------------------------------------------------------------------
# Fused conv + ReLU + max-pool: every float32 path, its winners (argmax) and inference without them
# ----------------------------------------------------------------------------------------------------

# path -> (FEW_CHANNELS_MAX_CHANNELS, SPARSE_MIN_CHANNELS): which implementation conv.py picks
FUSED_PATHS = {"few-channels": (8, 10**6), "channels-first GEMM": (0, 10**6), "channels-last GEMM": (0, 1)}
# (N, C, H, W, K, F, padding, pool, pool_stride): stride 1, the few-channel path's domain
FEW_CHANNEL_CASES = [
    (3, 1, 28, 28, 6, 5, "same", 2, 2),  # the lecture's first layer, fewer filters
    (2, 1, 9, 9, 4, 3, "same", 2, 2),  # odd map: a partial window at the right and bottom edges
    (2, 2, 8, 7, 3, 3, 1, 3, 2),  # overlapping windows: one cell can win two of them
    (2, 1, 7, 8, 3, 2, (1, 0, 2, 1), 2, 2),  # asymmetric explicit padding
    (1, 3, 10, 10, 5, 3, "valid", (2, 3), (1, 2)),  # rectangular windows and strides
    (2, 1, 6, 6, 3, 1, "valid", 3, 3),  # a 1x1 filter
]


def _fused_reference(x, w, b, padding, pool, pool_stride):
    r = naive.relu_forward(naive.conv2d_forward(x, w, b, 1, padding))
    y, argmax = naive.maxpool2d_forward(r, pool, pool_stride)
    return r, y, argmax


@pytest.mark.parametrize("path", list(FUSED_PATHS))
@pytest.mark.parametrize("case", FEW_CHANNEL_CASES, ids=str)
def test_fused_conv_paths_match_naive_with_and_without_dx(case, path, monkeypatch):
    from convtui.core.ops import conv

    few, sparse = FUSED_PATHS[path]
    monkeypatch.setattr(conv, "FEW_CHANNELS_MAX_CHANNELS", few)
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", sparse)
    n, c, h, w_, k, f, padding, pool, pool_stride = case
    x, w, b = random((n, c, h, w_), 40, np.float32), random((k, c, f, f), 41, np.float32), random(k, 42, np.float32)
    b[0] = -50.0  # a filter whose every window is dead: no winner, no gradient
    workspace = {}
    y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, 1, padding, pool, pool_stride, workspace)
    if path == "few-channels":
        assert "x_padded" in workspace and "cols" not in workspace, "the direct path should have run"
    r, ref_y, ref_argmax = _fused_reference(x, w, b, padding, pool, pool_stride)
    np.testing.assert_allclose(y, ref_y, **TOL[np.float32])
    alive = ref_y > 0
    np.testing.assert_array_equal(argmax[alive], ref_argmax[alive])
    assert np.all(argmax[~alive] == -1) and np.all(argmax[:, 0] == -1)
    dy = random(y.shape, 43, np.float32)
    dz = naive.relu_backward(naive.maxpool2d_backward(dy, r, pool, pool_stride), r)
    ref_dx, ref_dw, ref_db = naive.conv2d_backward(x, w, dz, 1, padding)
    for input_grad in (True, False):
        dx, dw, db = ops.conv2d_relu_maxpool_backward(x, w, dy, argmax, 1, padding, input_grad, workspace)
        assert dw.dtype == db.dtype == np.float32
        np.testing.assert_allclose(dw, ref_dw, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(db, ref_db, rtol=1e-4, atol=1e-5)
        if input_grad:
            np.testing.assert_allclose(dx, ref_dx, rtol=1e-3, atol=1e-4)
        else:
            assert dx is None


@pytest.mark.parametrize("path", list(FUSED_PATHS))
@pytest.mark.parametrize("pool, pool_stride", [(2, 2), (3, 2), (2, 1)])
def test_fused_conv_ties_go_to_the_first_cell_on_every_path(path, pool, pool_stride, monkeypatch):
    """Small integers make exact ties everywhere (the sums are exact in float32): each window's gradient must
    go to its first maximum in row-major order, as np.argmax in the reference picks it."""
    from convtui.core.ops import conv

    few, sparse = FUSED_PATHS[path]
    monkeypatch.setattr(conv, "FEW_CHANNELS_MAX_CHANNELS", few)
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", sparse)
    rng = np.random.default_rng(44)
    for c in (1, 2):
        x = rng.integers(0, 3, (3, c, 10, 10)).astype(np.float32)
        w = rng.integers(-1, 2, (5, c, 3, 3)).astype(np.float32)
        b = rng.integers(-1, 2, 5).astype(np.float32)
        y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", pool, pool_stride)
        _, ref_y, ref_argmax = _fused_reference(x, w, b, "same", pool, pool_stride)
        np.testing.assert_array_equal(y, ref_y)
        alive = ref_y > 0
        assert alive.mean() > 0.3 and (~alive).any()
        np.testing.assert_array_equal(argmax[alive], ref_argmax[alive])
        assert np.all(argmax[~alive] == -1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", list(FUSED_PATHS))
def test_inference_without_argmax_gives_the_same_output(path, dtype, monkeypatch):
    from convtui.core.ops import conv

    few, sparse = FUSED_PATHS[path]
    monkeypatch.setattr(conv, "FEW_CHANNELS_MAX_CHANNELS", few)
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", sparse)
    for c in (1, 3):
        x, w, b = random((2, c, 9, 9), 45, dtype), random((4, c, 3, 3), 46, dtype), random(4, 47, dtype)
        y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, {})
        y_only, none = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, {}, with_argmax=False)
        assert none is None and argmax.shape == y.shape
        np.testing.assert_array_equal(y_only, y)
        with pytest.raises(ValueError, match="with_argmax=True"):
            ops.conv2d_relu_maxpool_backward(x, w, y, None, 1, "same")


def test_bench_names_the_blas_kernel_it_ran():
    """NumPy's wheels bundle OpenBLAS: the bench must name the core it chose (SkylakeX, Haswell, Zen, ...)."""
    from convtui.core.training.bench import blas_kernel

    info = blas_kernel()
    assert "openblas" in info["library"].lower()
    assert info["core"] != "unknown" and info["core"].isprintable() and 0 < len(info["core"]) < 40
