"""Element-wise kernels: ReLU, sigmoid and inverted dropout.

Each body is a serial `_..._range(..., start, stop)` function; a parallel driver splits big arrays into blocks
over the threads, and small arrays call the body directly (see `jit.run_blocks`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from convtui.core.ops.jit import BLOCK, JIT, SERIAL, run_blocks

@njit(**SERIAL)
def _relu_forward_range(x, y, start, stop):
    for i in range(start, stop):
        y[i] = x[i] if x[i] > 0 else 0.0


@njit(**JIT)
def _relu_forward_kernel(x, y):
    for block in prange((x.size + BLOCK - 1) // BLOCK):
        _relu_forward_range(x, y, block * BLOCK, min((block + 1) * BLOCK, x.size))


@njit(**SERIAL)
def _relu_backward_range(dy, y, dx, start, stop):
    for i in range(start, stop):
        dx[i] = dy[i] if y[i] > 0 else 0.0


@njit(**JIT)
def _relu_backward_kernel(dy, y, dx):
    for block in prange((dy.size + BLOCK - 1) // BLOCK):
        _relu_backward_range(dy, y, dx, block * BLOCK, min((block + 1) * BLOCK, dy.size))


@njit(**SERIAL)
def _sigmoid_forward_range(x, y, start, stop):
    for i in range(start, stop):
        v = x[i]
        # Two branches so that exp never overflows for large |v|.
        if v >= 0:
            y[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            y[i] = e / (1.0 + e)


@njit(**JIT)
def _sigmoid_forward_kernel(x, y):
    for block in prange((x.size + BLOCK - 1) // BLOCK):
        _sigmoid_forward_range(x, y, block * BLOCK, min((block + 1) * BLOCK, x.size))


@njit(**SERIAL)
def _sigmoid_backward_range(dy, y, dx, start, stop):
    for i in range(start, stop):
        dx[i] = dy[i] * y[i] * (1.0 - y[i])


@njit(**JIT)
def _sigmoid_backward_kernel(dy, y, dx):
    for block in prange((dy.size + BLOCK - 1) // BLOCK):
        _sigmoid_backward_range(dy, y, dx, block * BLOCK, min((block + 1) * BLOCK, dy.size))


def relu_forward(x):
    """y = max(x, 0)."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    run_blocks(_relu_forward_range, _relu_forward_kernel, x.size, x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, y):
    """dx = dy where the unit was active (y > 0), else 0."""
    dx = np.empty_like(dy)
    run_blocks(_relu_backward_range, _relu_backward_kernel, dx.size, np.ascontiguousarray(dy).reshape(-1),
         np.ascontiguousarray(y).reshape(-1), dx.reshape(-1))
    return dx


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x))."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    run_blocks(_sigmoid_forward_range, _sigmoid_forward_kernel, x.size, x.reshape(-1), y.reshape(-1))
    return y


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y)."""
    dx = np.empty_like(dy)
    run_blocks(_sigmoid_backward_range, _sigmoid_backward_kernel, dx.size, np.ascontiguousarray(dy).reshape(-1),
         np.ascontiguousarray(y).reshape(-1), dx.reshape(-1))
    return dx



def dropout_forward(x, rate, rng):
    """Inverted dropout: keep each unit with probability 1 - rate and scale it by 1 / (1 - rate)."""
    if rate <= 0.0:
        return x, None
    keep = 1.0 - rate
    mask = (rng.random(x.shape, dtype=np.float32) < keep).astype(x.dtype) / x.dtype.type(keep)
    return x * mask, mask


def dropout_backward(dy, mask):
    """dx = dy * mask (the mask already holds the 1 / (1 - rate) scale)."""
    return dy if mask is None else dy * mask
