"""The public kernels of the core, on plain arrays: `from convtui.core import kernels`.

Layout: NCHW float32 for training (float64 works everywhere, for gradient checks and the lessons' small grids).
`stride` is an int or (s_h, s_w); `padding` is 'valid', 'same' (TensorFlow's, odd pixel after), an int, (p_h, p_w)
or (top, bottom, left, right). Each public function validates its input and calls private Numba kernels jitted
with `@njit(nogil=True, parallel=True, cache=True)`; convolution lives in `conv` (im2col + BLAS GEMM) and
`conv_kernels`, shape rules in `shapes`. `tests/core/naive.py` holds a plain-loop reference of each kernel.

Fused paths, which `Sequential` uses for Conv2D -> ReLU (-> MaxPool2D): `conv2d_forward(..., relu=True)` with
`conv2d_backward(..., relu_y=y)`, and `conv2d_relu_maxpool_forward` / `conv2d_relu_maxpool_backward`, whose
backward adds each pooling winner's patch directly instead of running dense GEMMs over mostly-zero gradients.
The conv functions take an optional `workspace` dict that keeps their big buffers between calls.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from convtui.core.conv import (conv2d_backward, conv2d_forward, conv2d_relu_maxpool_backward,  # noqa: F401
                               conv2d_relu_maxpool_forward)
from convtui.core.shapes import (conv_output_size, pair, pool_output_size, resolve_padding,  # noqa: F401
                                 same_padding)

_pair = pair  # the name layers.py and older callers use

JIT = dict(nogil=True, parallel=True, cache=True)


# ----------------------------------------------------------------------------------------------------
# Pooling, with partial windows at the right and bottom edges kept
# ----------------------------------------------------------------------------------------------------

@njit(**JIT)
def _maxpool2d_forward_kernel(x, f_h, f_w, s_h, s_w, y, argmax):
    n_batch, n_c, h, wd = x.shape
    _, _, o_h, o_w = y.shape
    for nc in prange(n_batch * n_c):
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


@njit(**JIT)
def _maxpool2d_backward_kernel(dy, argmax, dx):
    n_batch, n_c, o_h, o_w = dy.shape
    wd = dx.shape[3]
    for nc in prange(n_batch * n_c):
        n = nc // n_c
        c = nc % n_c
        for i in range(o_h):
            for j in range(o_w):
                at = argmax[n, c, i, j]
                dx[n, c, at // wd, at % wd] += dy[n, c, i, j]


@njit(**JIT)
def _meanpool2d_forward_kernel(x, f_h, f_w, s_h, s_w, y):
    n_batch, n_c, h, wd = x.shape
    _, _, o_h, o_w = y.shape
    for nc in prange(n_batch * n_c):
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


@njit(**JIT)
def _meanpool2d_backward_kernel(dy, f_h, f_w, s_h, s_w, dx):
    n_batch, n_c, h, wd = dx.shape
    _, _, o_h, o_w = dy.shape
    for nc in prange(n_batch * n_c):
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


def _pool_shape(x, pool, stride):
    if x.ndim != 4:
        raise ValueError(f"pooling wants x (N, C, H, W), got shape {x.shape}")
    f_h, f_w = _pair(pool)
    s_h, s_w = _pair(stride if stride is not None else pool)
    if min(f_h, f_w, s_h, s_w) < 1:
        raise ValueError(f"pool window and stride must be >= 1, got {pool!r} and {stride!r}")
    return f_h, f_w, s_h, s_w, pool_output_size(x.shape[2], f_h, s_h), pool_output_size(x.shape[3], f_w, s_w)


def maxpool2d_forward(x, pool=2, stride=None):
    """y[n, c, i, j] = max of the (possibly partial) window; argmax holds its flat index r * W + q in x[n, c]."""
    f_h, f_w, s_h, s_w, o_h, o_w = _pool_shape(x, pool, stride)
    y = np.empty((x.shape[0], x.shape[1], o_h, o_w), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int32)
    _maxpool2d_forward_kernel(np.ascontiguousarray(x), f_h, f_w, s_h, s_w, y, argmax)
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape):
    """Route each dy to the input that won its window."""
    dx = np.zeros(x_shape, dtype=dy.dtype)
    _maxpool2d_backward_kernel(np.ascontiguousarray(dy), argmax, dx)
    return dx


def meanpool2d_forward(x, pool=2, stride=None):
    """y = mean of the (possibly partial) window: a partial edge window divides by the cells it covers."""
    f_h, f_w, s_h, s_w, o_h, o_w = _pool_shape(x, pool, stride)
    y = np.empty((x.shape[0], x.shape[1], o_h, o_w), dtype=x.dtype)
    _meanpool2d_forward_kernel(np.ascontiguousarray(x), f_h, f_w, s_h, s_w, y)
    return y


def meanpool2d_backward(dy, x_shape, pool=2, stride=None):
    """Share each dy equally over the cells of its window."""
    f_h, f_w = _pair(pool)
    s_h, s_w = _pair(stride if stride is not None else pool)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    _meanpool2d_backward_kernel(np.ascontiguousarray(dy), f_h, f_w, s_h, s_w, dx)
    return dx


# ----------------------------------------------------------------------------------------------------
# Element-wise kernels. Each body is a serial `_..._range(..., start, stop)` function; a parallel driver splits
# big arrays into blocks over the threads, and small arrays call the body directly, because waking the
# thread pool costs tens of microseconds per parallel region: more than a whole 100 x 128 ReLU or a bias update.
# ----------------------------------------------------------------------------------------------------

SERIAL = dict(nogil=True, cache=True)
PARALLEL_MIN_SIZE = 1 << 16  # elements; below this one thread finishes before two would have started
BLOCK = 1 << 14


def _run(body, driver, size, *args):
    """Call `body(*args, 0, size)` directly for a small array, else the parallel `driver(*args)`."""
    if size < PARALLEL_MIN_SIZE:
        body(*args, 0, size)
    else:
        driver(*args)


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
    _run(_relu_forward_range, _relu_forward_kernel, x.size, x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, y):
    """dx = dy where the unit was active (y > 0), else 0."""
    dx = np.empty_like(dy)
    _run(_relu_backward_range, _relu_backward_kernel, dx.size, np.ascontiguousarray(dy).reshape(-1),
         np.ascontiguousarray(y).reshape(-1), dx.reshape(-1))
    return dx


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x))."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _run(_sigmoid_forward_range, _sigmoid_forward_kernel, x.size, x.reshape(-1), y.reshape(-1))
    return y


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y)."""
    dx = np.empty_like(dy)
    _run(_sigmoid_backward_range, _sigmoid_backward_kernel, dx.size, np.ascontiguousarray(dy).reshape(-1),
         np.ascontiguousarray(y).reshape(-1), dx.reshape(-1))
    return dx


# ----------------------------------------------------------------------------------------------------
# Dense (BLAS through NumPy), softmax cross-entropy, dropout
# ----------------------------------------------------------------------------------------------------

def dense_forward(x, w, b):
    """y = x @ w + b.  x (N, I), w (I, O), b (O,)."""
    return x @ w + b


def dense_backward(x, w, dy):
    """dx = dy @ w.T, dw = x.T @ dy, db = sum_n dy."""
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


@njit(**SERIAL)
def _softmax_cross_entropy_range(logits, labels, probs, dlogits, losses, start, stop):
    n_batch, n_class = logits.shape
    for n in range(start, stop):
        top = logits[n, 0]
        for k in range(1, n_class):
            top = max(top, logits[n, k])
        total = 0.0
        for k in range(n_class):
            e = math.exp(logits[n, k] - top)
            probs[n, k] = e
            total += e
        for k in range(n_class):
            probs[n, k] /= total
            dlogits[n, k] = probs[n, k] / n_batch
        dlogits[n, labels[n]] -= 1.0 / n_batch
        # log p[label] computed from the shifted logits, so it stays finite when p underflows.
        losses[n] = math.log(total) - (logits[n, labels[n]] - top)


@njit(**JIT)
def _softmax_cross_entropy_kernel(logits, labels, probs, dlogits, losses):
    rows = max(1, BLOCK // logits.shape[1])
    n_batch = logits.shape[0]
    for block in prange((n_batch + rows - 1) // rows):
        _softmax_cross_entropy_range(logits, labels, probs, dlogits, losses, block * rows,
                                     min((block + 1) * rows, n_batch))


def softmax_cross_entropy(logits, labels):
    """Fused softmax + mean cross-entropy: returns (loss, dlogits = (softmax - onehot) / N, probs)."""
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"softmax_cross_entropy wants logits (N, K) and labels (N,), got {logits.shape} and {labels.shape}")
    logits = np.ascontiguousarray(logits)
    probs = np.empty_like(logits)
    dlogits = np.empty_like(logits)
    losses = np.empty(logits.shape[0], dtype=np.float64)
    args = (logits, labels.astype(np.int64), probs, dlogits, losses)
    if logits.size < PARALLEL_MIN_SIZE:
        _softmax_cross_entropy_range(*args, 0, logits.shape[0])
    else:
        _softmax_cross_entropy_kernel(*args)
    return float(losses.mean()), dlogits, probs


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


# ----------------------------------------------------------------------------------------------------
# Optimiser updates, in place, one pass over the parameter (in parallel blocks when it is big)
# ----------------------------------------------------------------------------------------------------

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
    _run(_adam_range, _adam_kernel, param.size, param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
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
    _run(_sgd_momentum_range, _sgd_momentum_kernel, param.size, param.reshape(-1), grad.reshape(-1),
         velocity.reshape(-1), lr, momentum)
