"""Optimisers against their hand-written formulas, step by step, in float64."""

import math

import numpy as np
import pytest

from convtui.core.nn.layers import Param
from convtui.core.nn.optimizers import SGD, Adam, make_optimizer


def make_param(values):
    return Param("layer.w", np.array(values, dtype=np.float64))


def test_plain_sgd_is_w_minus_lr_grad():
    p = make_param([1.0, -2.0, 0.5])
    opt = SGD([p])
    p.grad[...] = [0.5, 1.0, -4.0]
    opt.step(0.1)
    np.testing.assert_allclose(p.value, [0.95, -2.1, 0.9], rtol=1e-12)


def test_sgd_momentum_two_steps():
    p = make_param([1.0])
    opt = SGD([p], momentum=0.9)
    p.grad[...] = [2.0]
    opt.step(0.1)  # v = -0.2, w = 0.8
    p.grad[...] = [1.0]
    opt.step(0.1)  # v = 0.9 * -0.2 - 0.1 = -0.28, w = 0.52
    np.testing.assert_allclose(p.value, [0.52], rtol=1e-12)
    np.testing.assert_allclose(opt.velocity["layer.w"], [-0.28], rtol=1e-12)


def adam_reference(w, grads, lr, b1=0.9, b2=0.999, eps=1e-7):
    """Keras's Adam written out: bias-corrected step size, eps added to sqrt(v)."""
    m = v = 0.0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        w = w - lr_t * m / (math.sqrt(v) + eps)
    return w


def test_adam_matches_the_formula_over_several_steps():
    grads = [0.3, -1.2, 0.05, 2.0, -0.7]
    p = make_param([0.4])
    opt = Adam([p])
    for g in grads:
        p.grad[...] = [g]
        opt.step(0.01)
    assert p.value[0] == pytest.approx(adam_reference(0.4, grads, 0.01), rel=1e-12)
    assert opt.t == 5


def test_adam_first_step_moves_by_about_lr():
    # With bias correction, step 1 moves every weight by ~lr whatever |g| is (eps sits on the uncorrected sqrt(v)).
    p = make_param([0.0, 0.0])
    opt = Adam([p])
    p.grad[...] = [1e-2, -50.0]
    opt.step(0.001)
    np.testing.assert_allclose(p.value, [-0.001, 0.001], rtol=1e-3)


def test_optimizer_state_round_trip():
    p = make_param([1.0, 2.0])
    opt = Adam([p])
    p.grad[...] = [0.1, 0.2]
    opt.step(0.01)
    clone = Adam([make_param([1.0, 2.0])])
    clone.load_state_arrays({k: v.copy() for k, v in opt.state_arrays().items()})
    assert clone.t == 1
    np.testing.assert_array_equal(clone.m["layer.w"], opt.m["layer.w"])
    np.testing.assert_array_equal(clone.v["layer.w"], opt.v["layer.w"])


def test_make_optimizer():
    assert isinstance(make_optimizer("sgd", []), SGD)
    assert isinstance(make_optimizer("adam", []), Adam)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("adagrad", [])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 1001, 200_003])  # odd sizes: the vector loop's remainder; the last is split
def test_adam_kernel_is_bit_identical_to_the_elementwise_formula(dtype, size):
    """The vectorised update (error_model="numpy", sliced loops) rounds exactly as the formula evaluated one IEEE
    operation at a time, here by NumPy in the same order and dtype."""
    from convtui.core import ops

    rng = np.random.default_rng(size)
    param, grad = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    m, v = (rng.standard_normal(size) * 0.1).astype(dtype), rng.random(size).astype(dtype) * dtype(0.01)
    expected_p, expected_m, expected_v = param.copy(), m.copy(), v.copy()
    lr, t, b1, b2, eps = 1e-3, 3, 0.9, 0.999, 1e-7
    ops.adam_update(param, grad, m, v, lr, t, b1, b2, eps)

    s = np.dtype(dtype).type
    lr_t = s(lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t))
    expected_m[...] = s(b1) * expected_m + s(1.0 - b1) * grad
    expected_v[...] = s(b2) * expected_v + s(1.0 - b2) * grad * grad
    expected_p -= lr_t * expected_m / (np.sqrt(expected_v) + s(eps))
    assert np.array_equal(m, expected_m) and np.array_equal(v, expected_v)
    assert np.array_equal(param, expected_p)


@pytest.mark.parametrize("size", [1, 1001, 200_003])
def test_sgd_momentum_kernel_is_bit_identical_to_the_formula(size):
    from convtui.core import ops

    rng = np.random.default_rng(size)
    param, grad, velocity = (rng.standard_normal(size).astype(np.float32) for _ in range(3))
    expected_p, expected_vel = param.copy(), velocity.copy()
    ops.sgd_update(param, grad, velocity, np.float32(0.01), np.float32(0.9))
    expected_vel[...] = np.float32(0.9) * expected_vel - np.float32(0.01) * grad
    expected_p += expected_vel
    assert np.array_equal(velocity, expected_vel) and np.array_equal(param, expected_p)
