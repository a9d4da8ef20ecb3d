"""float64 central-difference gradient checks: x, w and b separately for every layer, and one whole network.

The scalar checked is L = sum(r * layer(x)) for a fixed random r, so dL/dy = r is what backward receives.
"""

from __future__ import annotations

import numpy as np
import pytest

from convtui.core import ops
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
