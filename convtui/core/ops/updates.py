"""Optimiser updates, in place, one pass over the parameter (in parallel blocks when it is big)."""

from __future__ import annotations

import math

from numba import njit, prange

from convtui.core.ops.jit import BLOCK, JIT, SERIAL, run_blocks

@njit(**SERIAL)
def _adam_range(param, grad, m, v, lr_t, beta1, beta2, eps, start, stop):
    for i in range(start, stop):
        g = grad[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
        param[i] -= lr_t * m[i] / (math.sqrt(v[i]) + eps)


@njit(**JIT)
def _adam_kernel(param, grad, m, v, lr_t, beta1, beta2, eps):
    for block in prange((param.size + BLOCK - 1) // BLOCK):
        _adam_range(param, grad, m, v, lr_t, beta1, beta2, eps, block * BLOCK, min((block + 1) * BLOCK, param.size))


def adam_update(param, grad, m, v, lr, t, beta1=0.9, beta2=0.999, eps=1e-7):
    """Adam step t (from 1), in place; the bias correction is folded into lr_t = lr * sqrt(1-b2^t) / (1-b1^t)."""
    lr_t = lr * math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
    run_blocks(_adam_range, _adam_kernel, param.size, param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
         lr_t, beta1, beta2, eps)


@njit(**SERIAL)
def _sgd_momentum_range(param, grad, velocity, lr, momentum, start, stop):
    for i in range(start, stop):
        velocity[i] = momentum * velocity[i] - lr * grad[i]
        param[i] += velocity[i]


@njit(**JIT)
def _sgd_momentum_kernel(param, grad, velocity, lr, momentum):
    for block in prange((param.size + BLOCK - 1) // BLOCK):
        _sgd_momentum_range(param, grad, velocity, lr, momentum, block * BLOCK, min((block + 1) * BLOCK, param.size))


def sgd_update(param, grad, velocity, lr, momentum=0.0):
    """SGD with momentum, in place: velocity = momentum * velocity - lr * grad; param += velocity."""
    run_blocks(_sgd_momentum_range, _sgd_momentum_kernel, param.size, param.reshape(-1), grad.reshape(-1),
         velocity.reshape(-1), lr, momentum)
