"""Max and mean pooling over NCHW arrays, with partial windows at the right and bottom edges kept.

`out = (n - f) // s + 1` full windows, plus one partial window when the stride leaves pixels over
(see `shapes.pool_output_size`). Reference: `tests/core/naive.py`.
"""

from __future__ import annotations

import numpy as np

from convtui.core.ops.jit import SERIAL, run_range
from convtui.core.ops.kernel_cache import njit
from convtui.core.ops.shapes import pair, pool_output_size

# Each kernel is a serial body over a range of (image, channel) planes; `jit.run_range` splits the planes of big
# inputs over the threads, and the lessons' small grids run on the calling thread alone.

@njit(**SERIAL)
def _maxpool2d_forward_planes(x, f_h, f_w, s_h, s_w, y, argmax, start, stop):
    n_c, h, wd = x.shape[1], x.shape[2], x.shape[3]
    o_h, o_w = y.shape[2], y.shape[3]
    for nc in range(start, stop):
        n = nc // n_c
        c = nc % n_c
        for i in range(o_h):
            for j in range(o_w):
                best = -np.inf
                best_at = -1
                for u in range(f_h):
                    r = i * s_h + u
                    if r >= h:
                        break
                    for v in range(f_w):
                        q = j * s_w + v
                        if q >= wd:
                            break
                        val = x[n, c, r, q]
                        if val > best or best_at < 0:
                            best = val
                            best_at = r * wd + q
                y[n, c, i, j] = best
                argmax[n, c, i, j] = best_at


@njit(**SERIAL)
def _maxpool2d_backward_planes(dy, argmax, dx, start, stop):
    n_c, o_h, o_w = dy.shape[1], dy.shape[2], dy.shape[3]
    wd = dx.shape[3]
    for nc in range(start, stop):
        n = nc // n_c
        c = nc % n_c
        for i in range(o_h):
            for j in range(o_w):
                at = argmax[n, c, i, j]
                dx[n, c, at // wd, at % wd] += dy[n, c, i, j]


@njit(**SERIAL)
def _meanpool2d_forward_planes(x, f_h, f_w, s_h, s_w, y, start, stop):
    n_c, h, wd = x.shape[1], x.shape[2], x.shape[3]
    o_h, o_w = y.shape[2], y.shape[3]
    for nc in range(start, stop):
        n = nc // n_c
        c = nc % n_c
        for i in range(o_h):
            for j in range(o_w):
                acc = 0.0
                count = 0
                for r in range(i * s_h, min(i * s_h + f_h, h)):
                    for q in range(j * s_w, min(j * s_w + f_w, wd)):
                        acc += x[n, c, r, q]
                        count += 1
                y[n, c, i, j] = acc / count


@njit(**SERIAL)
def _meanpool2d_backward_planes(dy, f_h, f_w, s_h, s_w, dx, start, stop):
    n_c, h, wd = dx.shape[1], dx.shape[2], dx.shape[3]
    o_h, o_w = dy.shape[2], dy.shape[3]
    for nc in range(start, stop):
        n = nc // n_c
        c = nc % n_c
        for i in range(o_h):
            for j in range(o_w):
                r_end = min(i * s_h + f_h, h)
                q_end = min(j * s_w + f_w, wd)
                share = dy[n, c, i, j] / ((r_end - i * s_h) * (q_end - j * s_w))
                for r in range(i * s_h, r_end):
                    for q in range(j * s_w, q_end):
                        dx[n, c, r, q] += share


def _planes(array):
    return array.shape[0] * array.shape[1]


def _pool_shape(x, pool, stride):
    if x.ndim != 4:
        raise ValueError(f"pooling wants x (N, C, H, W), got shape {x.shape}")
    f_h, f_w = pair(pool)
    s_h, s_w = pair(stride if stride is not None else pool)
    if min(f_h, f_w, s_h, s_w) < 1:
        raise ValueError(f"pool window and stride must be >= 1, got {pool!r} and {stride!r}")
    return f_h, f_w, s_h, s_w, pool_output_size(x.shape[2], f_h, s_h), pool_output_size(x.shape[3], f_w, s_w)


def maxpool2d_forward(x, pool=2, stride=None):
    """y[n, c, i, j] = max of the (possibly partial) window; argmax holds its flat index r * W + q in x[n, c]."""
    f_h, f_w, s_h, s_w, o_h, o_w = _pool_shape(x, pool, stride)
    y = np.empty((x.shape[0], x.shape[1], o_h, o_w), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int32)
    x = np.ascontiguousarray(x)
    run_range(_maxpool2d_forward_planes, x.size, _planes(x), x, f_h, f_w, s_h, s_w, y, argmax)
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape):
    """Route each dy to the input that won its window."""
    dx = np.zeros(x_shape, dtype=dy.dtype)
    run_range(_maxpool2d_backward_planes, dx.size, _planes(dy), np.ascontiguousarray(dy), argmax, dx)
    return dx


def meanpool2d_forward(x, pool=2, stride=None):
    """y = mean of the (possibly partial) window: a partial edge window divides by the cells it covers."""
    f_h, f_w, s_h, s_w, o_h, o_w = _pool_shape(x, pool, stride)
    y = np.empty((x.shape[0], x.shape[1], o_h, o_w), dtype=x.dtype)
    x = np.ascontiguousarray(x)
    run_range(_meanpool2d_forward_planes, x.size, _planes(x), x, f_h, f_w, s_h, s_w, y)
    return y


def meanpool2d_backward(dy, x_shape, pool=2, stride=None):
    """Share each dy equally over the cells of its window."""
    f_h, f_w = pair(pool)
    s_h, s_w = pair(stride if stride is not None else pool)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    run_range(_meanpool2d_backward_planes, dx.size, _planes(dy), np.ascontiguousarray(dy), f_h, f_w, s_h, s_w, dx)
    return dx
