"""The fused paths (conv + ReLU, conv + ReLU + max-pool), chunking, workspaces and the layers built on them,
each checked against the plain-loop references composed step by step."""

from __future__ import annotations

import numpy as np
import pytest

from convtui.core import ops
from convtui.core.ops import conv, conv_winograd
from convtui.core.nn.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, MeanPool2D, ReLU, Sigmoid
from convtui.core.nn.sequential import Sequential, fused_steps
from tests.core import naive

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}


def random(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# (N, C, H, W, K, F, stride, padding, pool, pool_stride)
FUSED_CASES = [
    (2, 1, 8, 8, 3, 5, 1, "same", 2, 2),  # the lecture's first layer, small
    (2, 3, 7, 7, 2, 3, 1, "same", 2, 2),  # 7x7 -> 4x4 with partial edge windows
    (1, 2, 9, 11, 3, 3, 1, "valid", 3, 2),  # overlapping pool windows
    (2, 2, 12, 12, 2, 5, 2, "same", 2, 2),  # asymmetric SAME padding, stride 2
    (1, 2, 10, 9, 2, 3, (2, 1), (1, 0, 2, 1), (2, 3), (1, 2)),
    (3, 1, 6, 6, 4, 1, 1, "valid", 3, 3),
]


def _naive_conv_relu_pool(x, w, b, stride, padding, pool, pool_stride):
    z = naive.conv2d_forward(x, w, b, stride, padding)
    r = naive.relu_forward(z)
    y, argmax = naive.maxpool2d_forward(r, pool, pool_stride)
    return z, r, y, argmax


@pytest.mark.parametrize("path", ["channels-first", "channels-last"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", FUSED_CASES, ids=str)
def test_conv_relu_maxpool_forward_matches_the_three_steps(case, dtype, path, monkeypatch):
    """Both forward paths: im2col in NCHW order with a filters-first GEMM, and the channels-last one."""
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", 1 if path == "channels-last" else 10**6)
    n, c, h, w_, k, f, stride, padding, pool, pool_stride = case
    x, w, b = random((n, c, h, w_), 1, dtype), random((k, c, f, f), 2, dtype), random(k, 3, dtype)
    b[0] = -50.0  # a channel whose every window is dead, whatever the case's sizes
    y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, stride, padding, pool, pool_stride)
    _, _, ref_y, ref_argmax = _naive_conv_relu_pool(x, w, b, stride, padding, pool, pool_stride)
    np.testing.assert_allclose(y, ref_y, **TOL[dtype])
    # Where the window's maximum passed the ReLU, the winner is the same cell; elsewhere no gradient flows.
    alive = ref_y > 0
    np.testing.assert_array_equal(argmax[alive], ref_argmax[alive])
    assert np.all(argmax[~alive] == -1)
    assert (~alive).any() and alive.any(), "the case should exercise both kinds of window"


@pytest.mark.parametrize("path", ["channels-first", "channels-last"])
def test_fused_pool_ties_go_to_the_first_cell_like_the_unfused_layers(path, monkeypatch):
    """Equal maxima: the gradient goes to the first cell in row-major order, as MaxPool2D after ReLU does."""
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", 1 if path == "channels-last" else 10**6)
    x = np.ones((1, 1, 4, 6))
    x[0, 0, 1, 3] = 2.0  # one window with a unique winner in its bottom-right cell
    w = np.ones((2, 1, 1, 1))  # 1x1 identity filters
    b = np.array([0.0, -5.0])  # the second filter's windows are all dead
    y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "valid", 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[1, 2, 1], [1, 1, 1]])
    np.testing.assert_array_equal(argmax[0, 0], [[0, 9, 4], [12, 14, 16]])
    np.testing.assert_array_equal(argmax[0, 1], -1)
    ref_y, ref_argmax = ops.maxpool2d_forward(ops.relu_forward(x), 2, 2)
    np.testing.assert_array_equal(argmax[0, 0], ref_argmax[0, 0])


@pytest.mark.parametrize("path", ["dense", "sparse"])
@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", FUSED_CASES, ids=str)
def test_conv_relu_maxpool_backward_matches_the_three_steps(case, dtype, input_grad, path, monkeypatch):
    """Both backward paths: the dense GEMMs over im2col, and the scatter from the pooling winners."""
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", 1 if path == "sparse" else 10**6)
    n, c, h, w_, k, f, stride, padding, pool, pool_stride = case
    x, w, b = random((n, c, h, w_), 4, dtype), random((k, c, f, f), 5, dtype), random(k, 6, dtype)
    b[0] = -50.0
    workspace = {}
    y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, stride, padding, pool, pool_stride, workspace)
    dy = random(y.shape, 7, dtype)
    dx, dw, db = ops.conv2d_relu_maxpool_backward(x, w, dy, argmax, stride, padding, input_grad, workspace)
    _, r, _, _ = _naive_conv_relu_pool(x, w, b, stride, padding, pool, pool_stride)
    dr = naive.maxpool2d_backward(dy, r, pool, pool_stride)
    dz = naive.relu_backward(dr, r)
    ref_dx, ref_dw, ref_db = naive.conv2d_backward(x, w, dz, stride, padding)
    np.testing.assert_allclose(dw, ref_dw, **TOL[dtype])
    np.testing.assert_allclose(db, ref_db, **TOL[dtype])
    if input_grad:
        np.testing.assert_allclose(dx, ref_dx, **TOL[dtype])
    else:
        assert dx is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", FUSED_CASES, ids=str)
def test_conv_relu_forward_and_backward_match_the_two_steps(case, dtype):
    n, c, h, w_, k, f, stride, padding, _, _ = case
    x, w, b = random((n, c, h, w_), 8, dtype), random((k, c, f, f), 9, dtype), random(k, 10, dtype)
    y = ops.conv2d_forward(x, w, b, stride, padding, relu=True)
    ref_y = naive.relu_forward(naive.conv2d_forward(x, w, b, stride, padding))
    np.testing.assert_allclose(y, ref_y, **TOL[dtype])
    dy = random(y.shape, 11, dtype)
    got = ops.conv2d_backward(x, w, dy, stride, padding, relu_y=y)
    ref = naive.conv2d_backward(x, w, naive.relu_backward(dy, ref_y), stride, padding)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, **TOL[dtype])


@pytest.mark.parametrize("fused", [False, True])
def test_chunked_convolution_matches_one_chunk(monkeypatch, fused):
    """A tiny im2col budget forces one image per chunk, and backward must then rebuild the matrix per chunk."""
    # float32: the GEMM path (float64 takes the bit-reproducible direct loops, which need no chunks).
    x, w, b = random((5, 2, 9, 9), 12, np.float32), random((3, 2, 3, 3), 13, np.float32), random(3, 14, np.float32)
    monkeypatch.setattr(conv, "COLS_BUDGET_BYTES", 1)
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", 10**6)
    workspace = {}
    if fused:
        y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, workspace)
        dy = random(y.shape, 15, np.float32)
        dx, dw, db = ops.conv2d_relu_maxpool_backward(x, w, dy, argmax, 1, "same", True, workspace)
        _, r, ref_y, _ = _naive_conv_relu_pool(x, w, b, 1, "same", 2, 2)
        dz = naive.relu_backward(naive.maxpool2d_backward(dy, r, 2, 2), r)
    else:
        y = ops.conv2d_forward(x, w, b, 1, "same", workspace=workspace)
        ref_y = naive.conv2d_forward(x, w, b, 1, "same")
        dz = dy = random(y.shape, 15, np.float32)
        dx, dw, db = ops.conv2d_backward(x, w, dy, 1, "same", workspace=workspace)
    assert workspace["cols"].shape[1] == 81, "one image per chunk"
    np.testing.assert_allclose(y, ref_y, **TOL[np.float32])
    for g, r in zip((dx, dw, db), naive.conv2d_backward(x, w, dz, 1, "same")):
        np.testing.assert_allclose(g, r, **TOL[np.float32])


def test_sparse_path_with_chunked_forward(monkeypatch):
    """The lecture's second layer shape (32 channels in, so the sparse path), with several forward chunks: the
    channels-last GEMM forward, which a 5x5 filter takes where Winograd does not apply."""
    monkeypatch.setattr(conv, "CHANNELS_LAST_BUDGET_BYTES", 1)
    monkeypatch.setattr(conv_winograd, "applies", lambda *_: False)
    x, w, b = random((3, 32, 6, 6), 30, np.float32), random((4, 32, 5, 5), 31, np.float32), random(4, 32, np.float32)
    workspace = {}
    y, argmax = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2, workspace)
    assert workspace["cols_t0"].shape[0] == 36, "one image per chunk"
    dy = random(y.shape, 33, np.float32)
    got = ops.conv2d_relu_maxpool_backward(x, w, dy, argmax, 1, "same", True, workspace)
    _, r, ref_y, _ = _naive_conv_relu_pool(x, w, b, 1, "same", 2, 2)
    np.testing.assert_allclose(y, ref_y, **TOL[np.float32])
    ref = naive.conv2d_backward(x, w, naive.relu_backward(naive.maxpool2d_backward(dy, r, 2, 2), r), 1, "same")
    for g, r_ in zip(got, ref):
        np.testing.assert_allclose(g, r_, rtol=1e-3, atol=1e-4)


def test_sparse_backward_rebuilds_its_nhwc_copy_for_another_input(monkeypatch):
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", 1)
    x1, x2 = random((2, 3, 6, 6), 34, np.float32), random((2, 3, 6, 6), 35, np.float32)
    w, b = random((2, 3, 3, 3), 36, np.float32), random(2, 37, np.float32)
    workspace = {}
    _, argmax2 = ops.conv2d_relu_maxpool_forward(x2, w, b, 1, "same", 2, 2, workspace)
    dy = random(argmax2.shape, 38, np.float32)
    ops.conv2d_relu_maxpool_forward(x1, w, b, 1, "same", 2, 2, workspace)  # the workspace now holds x1
    got = ops.conv2d_relu_maxpool_backward(x2, w, dy, argmax2, 1, "same", True, workspace)
    _, r, _, _ = _naive_conv_relu_pool(x2, w, b, 1, "same", 2, 2)
    ref = naive.conv2d_backward(x2, w, naive.relu_backward(naive.maxpool2d_backward(dy, r, 2, 2), r), 1, "same")
    for g, r_ in zip(got, ref):
        np.testing.assert_allclose(g, r_, **TOL[np.float32])


def test_backward_rebuilds_cols_when_the_workspace_holds_another_input():
    x1, x2 = random((2, 2, 6, 6), 16, np.float32), random((2, 2, 6, 6), 17, np.float32)
    w = random((3, 2, 3, 3), 18, np.float32)
    workspace = {}
    ops.conv2d_forward(x1, w, None, 1, "same", workspace=workspace)
    dy = random((2, 3, 6, 6), 19, np.float32)
    dx, dw, db = ops.conv2d_backward(x2, w, dy, 1, "same", workspace=workspace)  # not the forward's input
    for g, r in zip((dx, dw, db), naive.conv2d_backward(x2, w, dy, 1, "same")):
        np.testing.assert_allclose(g, r, **TOL[np.float32])


# ----------------------------------------------------------------------------------------------------
# Layers and Sequential
# ----------------------------------------------------------------------------------------------------

def small_cnn(dtype=np.float64, pool_cls=MaxPool2D):
    rng = np.random.default_rng(20)
    return Sequential([
        Conv2D(1, 4, 5, 1, "same", rng=rng, dtype=dtype, name="conv1"), ReLU(), pool_cls(2),
        Conv2D(4, 6, 3, 1, "same", rng=rng, dtype=dtype, name="conv2"), ReLU(), pool_cls(2),
        Conv2D(6, 5, 3, 1, "same", rng=rng, dtype=dtype, name="conv3"), ReLU(),
        Flatten(), Dense(5 * 3 * 3, 8, rng=rng, dtype=dtype, name="dense1"), Sigmoid(),
        Dense(8, 10, rng=rng, dtype=dtype, name="output"),
    ], input_shape=(1, 11, 11))


def test_fused_steps_groups_conv_relu_and_pool_by_exact_type():
    steps = fused_steps(small_cnn().layers)
    assert [type(s).__name__ for s in steps] == [
        "_ConvReluMaxPool", "_ConvReluMaxPool", "_ConvRelu", "Flatten", "Dense", "Sigmoid", "Dense"]
    steps = fused_steps(small_cnn(pool_cls=MeanPool2D).layers)  # mean-pool is not fused
    assert [type(s).__name__ for s in steps][:3] == ["_ConvRelu", "MeanPool2D", "_ConvRelu"]


@pytest.mark.parametrize("pool_cls", [MaxPool2D, MeanPool2D])
def test_sequential_fused_run_equals_layer_by_layer(pool_cls):
    model = small_cnn(pool_cls=pool_cls)
    x = random((3, 1, 11, 11), 21)
    labels = np.array([1, 7, 3])
    # Layer by layer, as a lesson or the dashboard would run it.
    h = x
    for layer in model.layers:
        h = layer.forward(h, True)
    _, dlogits, _ = ops.softmax_cross_entropy(h, labels)
    d = dlogits
    for layer in reversed(model.layers):
        d = layer.backward(d)
    ref_logits, ref_dx = h, d
    ref_grads = {p.name: p.grad.copy() for p in model.params()}
    # Fused.
    logits = model.forward(x, True)
    _, dlogits, _ = ops.softmax_cross_entropy(logits, labels)
    dx = model.backward(dlogits)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-12)
    for p in model.params():
        np.testing.assert_allclose(p.grad, ref_grads[p.name], rtol=1e-10, atol=1e-12, err_msg=p.name)
    assert model.backward(dlogits, input_grad=False) is None
    for p in model.params():  # the same gradients without the first layer's dx
        np.testing.assert_allclose(p.grad, ref_grads[p.name], rtol=1e-10, atol=1e-12, err_msg=p.name)


def test_outputs_are_not_overwritten_by_the_next_call():
    """Workspaces are internal: an output the caller holds stays valid after the next forward."""
    model = small_cnn(np.float32)
    x1, x2 = random((2, 1, 11, 11), 22, np.float32), random((2, 1, 11, 11), 23, np.float32)
    a = model.forward(x1)
    a_copy = a.copy()
    b = model.forward(x2)
    np.testing.assert_array_equal(a, a_copy)
    assert not np.allclose(a, b)
    conv1 = model.layers[0]
    y1 = conv1.forward(x1)
    y1_copy = y1.copy()
    conv1.forward(x2)
    np.testing.assert_array_equal(y1, y1_copy)


def test_big_inference_batches_run_in_slices_with_the_same_logits(monkeypatch):
    from convtui.core.nn import sequential as layers

    model = small_cnn(np.float32)
    x = random((7, 1, 11, 11), 29, np.float32)
    whole = model.forward(x)
    monkeypatch.setattr(layers, "INFERENCE_CHUNK", 3)
    np.testing.assert_allclose(model.forward(x), whole, rtol=1e-6, atol=1e-6)
    assert model.layers[0].workspace["x_padded"].shape[0] == 1, "the last slice holds one image"


def test_predict_logits_in_batches_equals_one_pass():
    model = small_cnn(np.float32)
    x = random((7, 1, 11, 11), 24, np.float32)
    np.testing.assert_allclose(model.predict_logits(x, batch_size=3), model.forward(x), rtol=1e-6, atol=1e-6)


def test_dense_writes_gradients_in_place_and_can_skip_dx():
    layer = Dense(6, 4, rng=np.random.default_rng(25), dtype=np.float64)
    grad_w, grad_b = layer.w.grad, layer.b.grad
    x, dy = random((3, 6), 26), random((3, 4), 27)
    layer.forward(x, True)
    dx = layer.backward(dy)
    assert layer.w.grad is grad_w and layer.b.grad is grad_b  # optimisers may hold these arrays
    ref_dx, ref_dw, ref_db = naive.dense_backward(x, layer.w.value, dy)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12)
    np.testing.assert_allclose(layer.w.grad, ref_dw, rtol=1e-12)
    np.testing.assert_allclose(layer.b.grad, ref_db, rtol=1e-12)
    assert layer.backward(dy, input_grad=False) is None


def test_float64_convolution_is_bit_identical_wherever_the_image_sits_in_the_batch():
    """The lessons perturb one image of a batch and compare outputs exactly: float64 must not depend on position."""
    x = np.repeat(random((1, 3, 9, 9), 40), 5, axis=0)
    w, b = random((4, 3, 3, 3), 41), random(4, 42)
    y = ops.conv2d_forward(x, w, b, 1, "same")
    assert all(np.array_equal(y[0], y[i]) for i in range(1, 5))
    pooled, _ = ops.conv2d_relu_maxpool_forward(x, w, b, 1, "same", 2, 2)
    assert all(np.array_equal(pooled[0], pooled[i]) for i in range(1, 5))


def test_layers_keep_float32_and_shapes():
    model = small_cnn(np.float32)
    x = random((2, 1, 11, 11), 28, np.float32)
    assert model.forward(x, True).dtype == np.float32
    assert [shape for _, shape in model.shapes()] == [
        (4, 11, 11), (4, 11, 11), (4, 6, 6), (6, 6, 6), (6, 6, 6), (6, 3, 3), (5, 3, 3), (5, 3, 3), (45,), (8,),
        (8,), (10,)]
    drop = Dropout(0.5, rng=np.random.default_rng(0))
    assert drop.forward(x, training=False) is x


def test_dense_relu_is_fused_and_equals_layer_by_layer():
    rng = np.random.default_rng(24)
    model = Sequential([
        Flatten(),  # as in the mlp presets: the first step with weights is not step 0
        Dense(12, 9, init="he_normal", rng=rng, dtype=np.float64, name="dense1"), ReLU(),
        Dense(9, 7, rng=rng, dtype=np.float64, name="dense2"), ReLU(),
        Dense(7, 10, rng=rng, dtype=np.float64, name="output"),
    ], input_shape=(3, 4))
    assert [type(s).__name__ for s in fused_steps(model.layers)] == ["Flatten", "_DenseRelu", "_DenseRelu", "Dense"]
    x = random((5, 3, 4), 25) - 0.5  # negative pre-activations too, so the ReLU masks something
    labels = np.array([0, 3, 9, 3, 1])
    h = x
    for layer in model.layers:
        h = layer.forward(h, True)
    _, dlogits, _ = ops.softmax_cross_entropy(h, labels)
    d = dlogits
    for layer in reversed(model.layers):
        d = layer.backward(d)
    ref_grads = {p.name: p.grad.copy() for p in model.params()}
    logits = model.forward(x, True)
    np.testing.assert_allclose(logits, h, rtol=1e-12, atol=1e-12)
    _, dlogits, _ = ops.softmax_cross_entropy(logits, labels)
    np.testing.assert_allclose(model.backward(dlogits), d, rtol=1e-10, atol=1e-12)
    for p in model.params():
        np.testing.assert_allclose(p.grad, ref_grads[p.name], rtol=1e-10, atol=1e-12, err_msg=p.name)
    assert model.backward(dlogits, input_grad=False) is None
    for p in model.params():  # the same gradients without the first dense layer's dx
        np.testing.assert_allclose(p.grad, ref_grads[p.name], rtol=1e-10, atol=1e-12, err_msg=p.name)
