"""Central-difference gradient checks: x, w and b separately for every layer, and whole networks.

float64 first: the scalar checked is L = sum(r * layer(x)) for a fixed random r, so dL/dy = r is what backward
receives; float64 runs the direct loops. Then float32, through the paths training really runs (im2col + GEMM in
one chunk or several, the fused Conv+ReLU(+MaxPool) steps on both of their layouts, fused Dense+ReLU): central
differences in float32 would drown in rounding, so the float32 analytic gradient is compared with the float64
numeric gradient of a "shadow" model holding the very same weight values.
"""

from __future__ import annotations

import numpy as np
import pytest

from convtui.core import ops
from convtui.core.ops import conv
from convtui.core.nn.architectures import build_from_architecture
from convtui.core.nn.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, MeanPool2D, ReLU, Sigmoid
from convtui.core.nn.sequential import Sequential

RTOL, ATOL, EPS = 1e-4, 1e-5, 1e-6


def numerical_gradient(f, array):
    """dL/d(array) by central differences, perturbing the array in place one entry at a time."""
    grad = np.zeros_like(array)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + EPS
        plus = f()
        flat[i] = keep - EPS
        minus = f()
        flat[i] = keep
        grad_flat[i] = (plus - minus) / (2 * EPS)
    return grad


def check_layer(layer, x, training=False, before_forward=lambda: None):
    """Compare backward's dx and every Param.grad with central differences of sum(r * forward(x))."""
    before_forward()
    y = layer.forward(x, training)
    r = np.random.default_rng(99).standard_normal(y.shape)

    def loss():
        before_forward()
        return float(np.sum(r * layer.forward(x, training)))

    before_forward()
    layer.forward(x, training)
    dx = layer.backward(r.copy())
    analytic = {p.name: p.grad.copy() for p in layer.params()}
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=RTOL, atol=ATOL, err_msg="dx")
    for p in layer.params():
        np.testing.assert_allclose(analytic[p.name], numerical_gradient(loss, p.value), rtol=RTOL, atol=ATOL,
                                   err_msg=p.name)
    return dx


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


CONV_CASES = [  # (C, H, W, K, kernel, stride, padding)
    (1, 6, 6, 2, 3, 1, "same"),
    (2, 7, 7, 3, 3, 1, "valid"),
    (2, 8, 8, 2, 5, 2, "same"),  # asymmetric SAME padding
    (1, 7, 7, 2, 2, 2, "same"),
    (3, 7, 6, 2, 3, (2, 1), (1, 0, 2, 1)),
    (2, 9, 9, 2, 3, 3, 1),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_gradients(case):
    c, h, w, k, kernel, stride, padding = case
    layer = Conv2D(c, k, kernel, stride, padding, rng=np.random.default_rng(1), dtype=np.float64)
    layer.b.value[...] = random(k, 2)
    check_layer(layer, random((2, c, h, w), 3))


@pytest.mark.parametrize("n_in,n_out", [(1, 1), (7, 4), (12, 10)])
def test_dense_gradients(n_in, n_out):
    layer = Dense(n_in, n_out, rng=np.random.default_rng(4), dtype=np.float64)
    layer.b.value[...] = random(n_out, 5)
    check_layer(layer, random((3, n_in), 6))


@pytest.mark.parametrize("shape,pool,stride", [((2, 2, 6, 6), 2, 2), ((1, 2, 7, 7), 2, 2), ((2, 1, 7, 8), 3, 2)])
def test_maxpool2d_gradients(shape, pool, stride):
    # A permutation spaced 0.1 apart keeps every window's winner unique, so EPS never flips an argmax.
    x = np.random.default_rng(7).permutation(np.prod(shape)).reshape(shape) * 0.1
    check_layer(MaxPool2D(pool, stride), x.astype(np.float64))


@pytest.mark.parametrize("shape,pool,stride", [((2, 2, 6, 6), 2, 2), ((1, 2, 7, 7), 2, 2), ((2, 1, 7, 8), 3, 2)])
def test_meanpool2d_gradients(shape, pool, stride):
    check_layer(MeanPool2D(pool, stride), random(shape, 8))


def test_relu_gradients():
    x = random((3, 2, 4, 5), 9)
    x[np.abs(x) < 0.01] = 0.5  # keep away from the kink, where the derivative is not defined
    check_layer(ReLU(), x)


def test_sigmoid_gradients():
    check_layer(Sigmoid(), random((4, 9), 10) * 3)


def test_dropout_gradients_with_a_fixed_mask():
    layer = Dropout(0.4)

    def reseed():
        layer.rng = np.random.default_rng(11)

    dx = check_layer(layer, random((5, 8), 12), training=True, before_forward=reseed)
    assert np.any(dx == 0.0), "some units should have been dropped"


def test_flatten_gradients():
    check_layer(Flatten(), random((2, 3, 4, 5), 13))


def test_softmax_cross_entropy_gradient():
    logits = random((6, 5), 14) * 2
    labels = np.array([0, 4, 2, 2, 1, 3])
    _, dlogits, _ = ops.softmax_cross_entropy(logits, labels)

    def loss():
        return ops.softmax_cross_entropy(logits, labels)[0]

    np.testing.assert_allclose(dlogits, numerical_gradient(loss, logits), rtol=RTOL, atol=ATOL)


def test_whole_network_gradients():
    """conv -> ReLU -> maxpool -> flatten -> dense -> softmax cross-entropy, every parameter and the input."""
    rng = np.random.default_rng(15)
    model = Sequential([
        Conv2D(1, 3, 3, 1, "same", rng=rng, dtype=np.float64),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(3 * 4 * 4, 4, rng=rng, dtype=np.float64),
    ], input_shape=(1, 7, 7))
    model.layers[0].b.value[...] = 0.1 * random(3, 16)
    x = random((2, 1, 7, 7), 17)
    labels = np.array([1, 3])

    def loss():
        return ops.softmax_cross_entropy(model.forward(x, True), labels)[0]

    _, dlogits, _ = ops.softmax_cross_entropy(model.forward(x, True), labels)
    dx = model.backward(dlogits)
    analytic = {p.name: p.grad.copy() for p in model.params()}
    assert set(analytic) == {"conv.w", "conv.b", "dense.w", "dense.b"}
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=RTOL, atol=ATOL, err_msg="dx")
    for p in model.params():
        np.testing.assert_allclose(analytic[p.name], numerical_gradient(loss, p.value), rtol=RTOL, atol=ATOL,
                                   err_msg=p.name)


# ----------------------------------------------------------------------------------------------------------
# float32 through the training paths, against a float64 shadow of the same values
# ----------------------------------------------------------------------------------------------------------

# A float32 gradient is right to about 1e-6 of the sums behind it; 1e-3 relative (plus 1e-4 of the largest entry,
# for the entries near zero) leaves a wide margin and still catches a 1% error in any entry that matters.
F32_RTOL, F32_ATOL_FRACTION = 1e-3, 1e-4


def assert_float32_close(analytic, numeric, what):
    assert analytic.dtype == np.float32, f"{what}: the float32 path should give float32 gradients"
    np.testing.assert_allclose(analytic, numeric, rtol=F32_RTOL, atol=F32_ATOL_FRACTION * np.abs(numeric).max(),
                               err_msg=what)


def lecture_like_float32(seed):
    """The cnn preset in miniature: Conv+ReLU+MaxPool, Conv+ReLU, Flatten, Dense+ReLU, Dense: every fused step."""
    rng = np.random.default_rng(seed)
    return Sequential([
        Conv2D(1, 3, 3, 1, "same", rng=rng, name="conv1"), ReLU(), MaxPool2D(2),  # (3, 4, 4)
        Conv2D(3, 4, 3, 1, "same", rng=rng, name="conv2"), ReLU(),  # (4, 4, 4)
        Flatten(),
        Dense(4 * 4 * 4, 5, init="he_normal", rng=rng, name="dense1"), ReLU(),
        Dense(5, 4, rng=rng, name="output"),
    ], input_shape=(1, 8, 8))


def strided_float32(seed):
    """A plain conv (no ReLU after it: its own layer, not fused), stride 2 with asymmetric SAME padding, then a
    fused Conv+ReLU+MaxPool with overlapping and partial windows, and a plain Dense."""
    rng = np.random.default_rng(seed)
    return Sequential([
        Conv2D(2, 8, 3, 2, "same", rng=rng, name="conv1"), Sigmoid(),  # (8, 5, 5)
        Conv2D(8, 4, 2, 1, "valid", rng=rng, name="conv2"), ReLU(), MaxPool2D(3, 2),  # (4, 4, 4) -> (4, 2, 2)
        Flatten(),
        Dense(4 * 2 * 2, 3, rng=rng, name="output"),
    ], input_shape=(2, 10, 10))


FLOAT32_MODELS = {"lecture-like": (lecture_like_float32, 3), "strided": (strided_float32, 4)}


def fused_kinds(model):
    from convtui.core.nn.sequential import fused_steps

    return [type(step).__name__ for step in fused_steps(model.layers)]


def shadow_numeric_gradients(model, x, labels):
    """dL/dx and dL/dparam by central differences on a float64 copy of the same values (direct loops)."""
    shadow = build_from_architecture(model.architecture(), dtype=np.float64, init_weights=False)
    shadow.load_state_dict({name: value.astype(np.float64) for name, value in model.state_dict().items()})
    x64 = x.astype(np.float64)

    def loss():
        return ops.softmax_cross_entropy(shadow.forward(x64, training=True), labels)[0]

    numeric = {"x": numerical_gradient(loss, x64)}
    numeric.update({p.name: numerical_gradient(loss, p.value) for p in shadow.params()})
    return numeric


@pytest.mark.parametrize("budget", ["one chunk", "chunks of one image"])
@pytest.mark.parametrize("layout", ["channels-first", "channels-last"])
@pytest.mark.parametrize("name", list(FLOAT32_MODELS))
def test_float32_training_paths_match_the_float64_shadow(name, layout, budget, monkeypatch):
    """One training step's forward and backward (Sequential's fused steps on the float32 im2col kernels) against
    float64 central differences of the same weights, for every parameter and the input."""
    # channels-last: the fused Conv+ReLU+MaxPool's NHWC forward and its sparse backward from the pooling winners.
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", 1 if layout == "channels-last" else 10**6)
    if budget != "one chunk":  # im2col in chunks: dw summed over them, cols rebuilt in backward
        monkeypatch.setattr(conv, "COLS_BUDGET_BYTES", 1)
        monkeypatch.setattr(conv, "CHANNELS_LAST_BUDGET_BYTES", 1)
    build, seed = FLOAT32_MODELS[name]
    model = build(seed)
    for layer in model.layers:  # non-zero biases, so a bias gradient that went to the wrong place shows
        if isinstance(layer, (Conv2D, Dense)):
            layer.b.value[...] = 0.1 * random(layer.b.value.shape, seed + 10)
    assert {"_ConvReluMaxPool"} <= set(fused_kinds(model))
    x = np.random.default_rng(seed + 20).random((2,) + model.input_shape, dtype=np.float32)
    labels = np.array([0, 2])

    _, dlogits, _ = ops.softmax_cross_entropy(model.forward(x, training=True), labels)
    dx = model.backward(dlogits, input_grad=True)
    analytic = {"x": dx, **{p.name: p.grad.copy() for p in model.params()}}
    numeric = shadow_numeric_gradients(model, x, labels)
    assert set(analytic) == set(numeric)
    for key in numeric:
        assert_float32_close(analytic[key], numeric[key], key)

    # The trainer's own call skips the first layer's dx; the parameter gradients must not change.
    _, dlogits, _ = ops.softmax_cross_entropy(model.forward(x, training=True), labels)
    assert model.backward(dlogits, input_grad=False) is None
    for p in model.params():
        np.testing.assert_allclose(p.grad, analytic[p.name], rtol=1e-5, atol=1e-7, err_msg=p.name)


def test_the_float32_models_cover_every_fused_step():
    kinds = {kind for build, _ in FLOAT32_MODELS.values() for kind in fused_kinds(build(0))}
    assert {"_ConvReluMaxPool", "_ConvRelu", "_DenseRelu", "Conv2D", "Dense"} <= kinds


def test_the_float32_tolerance_catches_a_one_percent_error():
    numeric = random((4, 5), 30)
    analytic = numeric.astype(np.float32)
    assert_float32_close(analytic, numeric, "exact")
    wrong = analytic.copy()
    wrong.flat[np.abs(numeric).argmax()] *= 1.01
    with pytest.raises(AssertionError):
        assert_float32_close(wrong, numeric, "one entry 1% off")


# ----------------------------------------------------------------------------------------------------------
# The direct few-channel path (conv_few_channels): the same float64 shadow, and a deliberately broken kernel
# ----------------------------------------------------------------------------------------------------------

def few_channels_gradients(name, monkeypatch, input_grad=True):
    """The analytic float32 gradients of one training step with the direct few-channel path on (every fused
    stride-1 Conv+ReLU+MaxPool of these models takes it), and the float64 shadow's numeric ones."""
    from convtui.core.ops import conv_few_channels

    monkeypatch.setattr(conv, "FEW_CHANNELS_MAX_CHANNELS", 8)
    monkeypatch.setattr(conv, "SPARSE_MIN_CHANNELS", 10**6)
    calls = []
    kernel = conv_few_channels.conv_maxpool_weight_grad_kernel
    monkeypatch.setattr(conv_few_channels, "conv_maxpool_weight_grad_kernel",
                        lambda *args: (calls.append(1), kernel(*args))[1])
    build, seed = FLOAT32_MODELS[name]
    model = build(seed)
    for layer in model.layers:
        if isinstance(layer, (Conv2D, Dense)):
            layer.b.value[...] = 0.1 * random(layer.b.value.shape, seed + 10)
    x = np.random.default_rng(seed + 20).random((2,) + model.input_shape, dtype=np.float32)
    labels = np.array([0, 2])
    _, dlogits, _ = ops.softmax_cross_entropy(model.forward(x, training=True), labels)
    dx = model.backward(dlogits, input_grad=input_grad)
    assert calls, "the direct few-channel backward should have run"
    analytic = {p.name: p.grad.copy() for p in model.params()}
    if input_grad:
        analytic["x"] = dx
    numeric = shadow_numeric_gradients(model, x, labels)
    return analytic, numeric


@pytest.mark.parametrize("name", list(FLOAT32_MODELS))
def test_float32_few_channels_path_matches_the_float64_shadow(name, monkeypatch):
    analytic, numeric = few_channels_gradients(name, monkeypatch)
    assert set(analytic) == set(numeric)
    for key in numeric:
        assert_float32_close(analytic[key], numeric[key], key)


def test_the_gradient_check_fails_on_a_broken_few_channels_kernel(monkeypatch):
    """A weight-gradient kernel that drops the last filter row's taps must not pass the check above."""
    from convtui.core.ops import conv_few_channels

    kernel = conv_few_channels.conv_maxpool_weight_grad_kernel

    def broken(xp, dpooled, argmax, o_h, o_w, padded_at, dw, db):
        kernel(xp, dpooled, argmax, o_h, o_w, padded_at, dw, db)
        dw[:, :, -1, :] = 0.0

    monkeypatch.setattr(conv_few_channels, "conv_maxpool_weight_grad_kernel", broken)
    analytic, numeric = few_channels_gradients("lecture-like", monkeypatch)
    with pytest.raises(AssertionError):
        assert_float32_close(analytic["conv1.w"], numeric["conv1.w"], "conv1.w")
