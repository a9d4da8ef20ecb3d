"""Optimiser updates, in place, one pass over the parameter (split over the threads when it is big, see `jit`)."""

from __future__ import annotations

import math

import numpy as np

from convtui.core.ops.jit import SERIAL, run_blocks
from convtui.core.ops.kernel_cache import njit


# Two things kept LLVM from vectorising these loops, each enough on its own (measured on the cnn's 3.2M dense1
# weights, one thread: 9.5 ms per Adam update with one scalar sqrtss and divss per weight, 1.8 ms vectorised):
# - Numba's default error model ("python") checks every float division for a zero divisor, to raise
#   ZeroDivisionError. Adam's divisor is sqrt(v) + eps, never zero for eps > 0, so error_model="numpy" (IEEE
#   semantics) changes no result.
# - Indexing with a loop variable that starts at a run-time `start` makes Numba handle negative indices
#   (wraparound) on every access. Slicing [start:stop] first lets the loop count from 0.
# IEEE division and square root are correctly rounded in SIMD lanes as in scalar ones, so the results are
# bit-identical to the scalar loop (tests/core/test_optim.py compares them).
@njit(**SERIAL, error_model="numpy")
def _adam_range(param, grad, m, v, lr_t, beta1, beta2, eps, one_minus_beta1, one_minus_beta2, start, stop):
    # The scalars arrive in the parameter's dtype (adam_update), so a float32 model updates in float32 SIMD lanes:
    # with Python floats every element was widened to float64 and back, twice as slow on the 3.2M dense1 weights
    # (measured 15.3 -> 7.1 ms per step, one thread); float64 results are bit-identical to before.
    p, g_, m_, v_ = param[start:stop], grad[start:stop], m[start:stop], v[start:stop]
    for i in range(p.shape[0]):
        g = g_[i]
        m_[i] = beta1 * m_[i] + one_minus_beta1 * g
        v_[i] = beta2 * v_[i] + one_minus_beta2 * g * g
        p[i] -= lr_t * m_[i] / (np.sqrt(v_[i]) + eps)


def adam_update(param, grad, m, v, lr, t, beta1=0.9, beta2=0.999, eps=1e-7):
    """Adam step t (from 1), in place; the bias correction is folded into lr_t = lr * sqrt(1-b2^t) / (1-b1^t)."""
    lr_t = lr * math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
    s = param.dtype.type
    run_blocks(_adam_range, param.size, param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
               s(lr_t), s(beta1), s(beta2), s(eps), s(1.0 - beta1), s(1.0 - beta2))


@njit(**SERIAL)
def _sgd_momentum_range(param, grad, velocity, lr, momentum, start, stop):
    p, g, vel = param[start:stop], grad[start:stop], velocity[start:stop]  # from 0: no wraparound (see Adam)
    for i in range(p.shape[0]):
        vel[i] = momentum * vel[i] - lr * g[i]
        p[i] += vel[i]


def sgd_update(param, grad, velocity, lr, momentum=0.0):
    """SGD with momentum, in place: velocity = momentum * velocity - lr * grad; param += velocity."""
    run_blocks(_sgd_momentum_range, param.size, param.reshape(-1), grad.reshape(-1), velocity.reshape(-1), lr,
               momentum)
