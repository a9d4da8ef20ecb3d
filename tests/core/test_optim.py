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
