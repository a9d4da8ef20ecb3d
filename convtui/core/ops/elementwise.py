"""Element-wise kernels: bias and ReLU, sigmoid and inverted dropout.

Each kernel is one serial pass, `_..._range(..., start, stop)`, called over the whole array. None has a parallel
driver: one pass over at most a few MB is bound by memory, not arithmetic. The largest call
of cnn training, the dense layer's ReLU backward at batch 100 (102,400 values), took 0.068 ms serially and
0.091 ms on two threads, while its parallel driver cost 0.44 s of CPU to compile on every cold start
(benchmarks/compile_time.py). Numba's parallel compile is the expensive part (see `jit`).
"""

from __future__ import annotations

import math

import numpy as np

from convtui.core.ops.jit import SERIAL
from convtui.core.ops.kernel_cache import njit


@njit(**SERIAL)
def _relu_forward_range(x, y, start, stop):
    # Loops over [start:stop] views from 0, like the optimiser updates: an index that starts at a run-time
    # `start` makes numba check it for negative wraparound on every access, and that check keeps LLVM from
    # vectorising (a 20,000-value ReLU: 18 us scalar, 2 us in SIMD lanes).
    xs, ys = x[start:stop], y[start:stop]
    for i in range(xs.size):
        v = xs[i]
        ys[i] = v if v > 0 else 0.0


@njit(**SERIAL)
def _relu_backward_range(dy, y, dx, start, stop):
    dys, ys, dxs = dy[start:stop], y[start:stop], dx[start:stop]
    for i in range(dxs.size):
        dxs[i] = dys[i] if ys[i] > 0 else 0.0


@njit(**SERIAL)
def _add_bias_rows(y, b, floor_at_zero):
    # One pass over the GEMM's output instead of numpy's broadcast `y += b` and a second ReLU pass: for mlp-relu's
    # layers at batch 100 the two passes took 50 us of a 370 us forward, the one pass about 5 us.
    for i in range(y.shape[0]):
        row = y[i]
        for j in range(row.size):
            v = row[j] + b[j]
            row[j] = 0.0 if floor_at_zero and v < 0 else v  # NaN stays NaN, as in np.maximum(y, 0)


@njit(**SERIAL)
def _sigmoid_forward_range(x, y, start, stop):
    xs, ys = x[start:stop], y[start:stop]
    for i in range(xs.size):
        v = xs[i]
        # Two branches so that exp never overflows for large |v|.
        if v >= 0:
            ys[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            ys[i] = e / (1.0 + e)


@njit(**SERIAL)
def _sigmoid_backward_range(dy, y, dx, start, stop):
    dys, ys, dxs = dy[start:stop], y[start:stop], dx[start:stop]
    for i in range(dxs.size):
        dxs[i] = dys[i] * ys[i] * (1.0 - ys[i])


def relu_forward(x):
    """y = max(x, 0)."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _relu_forward_range(x.reshape(-1), y.reshape(-1), 0, x.size)
    return y


def add_bias_in_place(y, b, relu=False):
    """y += b over y's last axis, then y = max(y, 0) when `relu`, in y itself (C-contiguous); returns y.

    The dense layers use it on the GEMM's own output. It gives exactly `y += b` and np.maximum(y, 0, out=y), NaN
    included, so a NaN from a diverging layer still reaches the loss instead of turning into a silent 0."""
    if not y.flags.c_contiguous:
        raise ValueError("add_bias_in_place needs a C-contiguous array")
    if b.shape != y.shape[-1:]:
        raise ValueError(f"bias of shape {b.shape} does not match rows of length {y.shape[-1]}")
    _add_bias_rows(y.reshape(-1, b.size), b, relu)
    return y


def relu_backward(dy, y):
    """dx = dy where the unit was active (y > 0), else 0."""
    dx = np.empty(dy.shape, dtype=dy.dtype)  # C order, so that reshape(-1) is a view the kernel writes through
    _relu_backward_range(np.ascontiguousarray(dy).reshape(-1), np.ascontiguousarray(y).reshape(-1), dx.reshape(-1),
                         0, dx.size)
    return dx


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x))."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _sigmoid_forward_range(x.reshape(-1), y.reshape(-1), 0, x.size)
    return y


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y)."""
    dx = np.empty(dy.shape, dtype=dy.dtype)  # C order, so that reshape(-1) is a view the kernel writes through
    _sigmoid_backward_range(np.ascontiguousarray(dy).reshape(-1), np.ascontiguousarray(y).reshape(-1),
                            dx.reshape(-1), 0, dx.size)
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
