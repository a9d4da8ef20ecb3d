"""Plain-loop NumPy references of the kernels in `convtui.core.ops`, with the same names.

Each one is written from the definition, as directly as possible, so that a test comparing it to the fast kernel
checks the fast kernel against the maths rather than against itself. They are slow: use small shapes.
Where the fast kernel takes a precomputed helper (the max-pool argmax), the reference recomputes it from x.
"""

from __future__ import annotations

import math

import numpy as np


def same_padding(n: int, f: int, s: int) -> tuple[int, int]:
    """TensorFlow's documented rule: pad_along = max(f - s, 0) if n % s == 0 else max(f - n % s, 0)."""
    pad_along = max(f - s, 0) if n % s == 0 else max(f - (n % s), 0)
    return pad_along // 2, pad_along - pad_along // 2


def _pads(padding, n_h, n_w, f_h, f_w, s_h, s_w):
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        return same_padding(n_h, f_h, s_h) + same_padding(n_w, f_w, s_w)
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    return tuple(padding)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_forward(x, w, b=None, stride=1, padding="valid"):
    """y[n, k, i, j] = b[k] + sum over the window of x_pad * w[k], one output cell at a time."""
    s_h, s_w = _pair(stride)
    n_batch, n_c, h, wd = x.shape
    n_k, _, f_h, f_w = w.shape
    top, bottom, left, right = _pads(padding, h, wd, f_h, f_w, s_h, s_w)
    x_pad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    o_h = (h + top + bottom - f_h) // s_h + 1
    o_w = (wd + left + right - f_w) // s_w + 1
    y = np.zeros((n_batch, n_k, o_h, o_w), dtype=np.float64)
    for n in range(n_batch):
        for k in range(n_k):
            for i in range(o_h):
                for j in range(o_w):
                    window = x_pad[n, :, i * s_h:i * s_h + f_h, j * s_w:j * s_w + f_w]
                    y[n, k, i, j] = np.sum(window * w[k]) + (0.0 if b is None else b[k])
    return y


def conv2d_backward(x, w, dy, stride=1, padding="valid"):
    """Scatter each dy[n, k, i, j] back over the window it came from (dx, dw) and sum it into db."""
    s_h, s_w = _pair(stride)
    n_batch, n_c, h, wd = x.shape
    n_k, _, f_h, f_w = w.shape
    top, bottom, left, right = _pads(padding, h, wd, f_h, f_w, s_h, s_w)
    x_pad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))).astype(np.float64)
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros(w.shape, dtype=np.float64)
    db = np.zeros(n_k, dtype=np.float64)
    for n in range(n_batch):
        for k in range(n_k):
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    g = dy[n, k, i, j]
                    rows, cols = slice(i * s_h, i * s_h + f_h), slice(j * s_w, j * s_w + f_w)
                    dx_pad[n, :, rows, cols] += g * w[k]
                    dw[k] += g * x_pad[n, :, rows, cols]
                    db[k] += g
    dx = dx_pad[:, :, top:top + h, left:left + wd]
    return dx, dw, db


def pool_output_size(n: int, f: int, s: int) -> int:
    """Count the window starts 0, s, 2s, ... inside the input, up to the first window that reaches its end."""
    count, start = 0, 0
    while start < n:  # a window must start inside the input to hold anything
        count += 1
        if start + f >= n:
            break
        start += s
    return count


def _windows(x, pool, stride):
    f_h, f_w = _pair(pool)
    s_h, s_w = _pair(stride if stride is not None else pool)
    h, wd = x.shape[2], x.shape[3]
    o_h, o_w = pool_output_size(h, f_h, s_h), pool_output_size(wd, f_w, s_w)
    for i in range(o_h):
        for j in range(o_w):
            yield i, j, slice(i * s_h, min(i * s_h + f_h, h)), slice(j * s_w, min(j * s_w + f_w, wd))


def _pool_out_shape(x, pool, stride):
    f_h, f_w = _pair(pool)
    s_h, s_w = _pair(stride if stride is not None else pool)
    return x.shape[:2] + (pool_output_size(x.shape[2], f_h, s_h), pool_output_size(x.shape[3], f_w, s_w))


def maxpool2d_forward(x, pool=2, stride=None):
    """y = max of each window; argmax = flat index r * W + q of its first maximum in x[n, c]."""
    y = np.zeros(_pool_out_shape(x, pool, stride), dtype=x.dtype)
    argmax = np.zeros(y.shape, dtype=np.int64)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i, j, rows, cols in _windows(x, pool, stride):
                window = x[n, c, rows, cols]
                r, q = np.unravel_index(np.argmax(window), window.shape)
                y[n, c, i, j] = window[r, q]
                argmax[n, c, i, j] = (rows.start + r) * x.shape[3] + cols.start + q
    return y, argmax


def maxpool2d_backward(dy, x, pool=2, stride=None):
    """Recompute each window's winner from x and add dy to it."""
    dx = np.zeros(x.shape, dtype=np.float64)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i, j, rows, cols in _windows(x, pool, stride):
                window = x[n, c, rows, cols]
                r, q = np.unravel_index(np.argmax(window), window.shape)
                dx[n, c, rows.start + r, cols.start + q] += dy[n, c, i, j]
    return dx


def meanpool2d_forward(x, pool=2, stride=None):
    """y = mean of each (possibly partial) window."""
    y = np.zeros(_pool_out_shape(x, pool, stride), dtype=np.float64)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i, j, rows, cols in _windows(x, pool, stride):
                y[n, c, i, j] = x[n, c, rows, cols].mean()
    return y


def meanpool2d_backward(dy, x_shape, pool=2, stride=None):
    """Each cell of a window receives dy / (cells in the window)."""
    dx = np.zeros(x_shape, dtype=np.float64)
    probe = np.empty(x_shape)
    for n in range(x_shape[0]):
        for c in range(x_shape[1]):
            for i, j, rows, cols in _windows(probe, pool, stride):
                cells = (rows.stop - rows.start) * (cols.stop - cols.start)
                dx[n, c, rows, cols] += dy[n, c, i, j] / cells
    return dx


def relu_forward(x):
    return np.array([v if v > 0 else 0.0 for v in x.ravel()], dtype=np.float64).reshape(x.shape)


def relu_backward(dy, y):
    return np.array([g if v > 0 else 0.0 for g, v in zip(dy.ravel(), y.ravel())]).reshape(dy.shape)


def sigmoid_forward(x):
    return np.array([1.0 / (1.0 + math.exp(-float(v))) for v in x.ravel()]).reshape(x.shape)


def sigmoid_backward(dy, y):
    return np.array([g * v * (1.0 - v) for g, v in zip(dy.ravel(), y.ravel())]).reshape(dy.shape)


def dense_forward(x, w, b):
    """y[n, o] = b[o] + sum_i x[n, i] w[i, o], summed in a loop."""
    y = np.zeros((x.shape[0], w.shape[1]))
    for n in range(x.shape[0]):
        for o in range(w.shape[1]):
            y[n, o] = b[o] + sum(float(x[n, i]) * float(w[i, o]) for i in range(x.shape[1]))
    return y


def dense_backward(x, w, dy):
    dx = np.zeros(x.shape)
    dw = np.zeros(w.shape)
    for n in range(x.shape[0]):
        for i in range(x.shape[1]):
            for o in range(w.shape[1]):
                dx[n, i] += dy[n, o] * w[i, o]
                dw[i, o] += x[n, i] * dy[n, o]
    return dx, dw, dy.sum(axis=0)


def softmax_cross_entropy(logits, labels):
    """loss = mean_n -log_softmax(logits)[n, label]; dlogits = (softmax - onehot) / N; probs = softmax."""
    z = logits.astype(np.float64)
    log_probs = z - z.max(axis=1, keepdims=True)
    log_probs = log_probs - np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
    probs = np.exp(log_probs)
    n = len(labels)
    loss = -sum(log_probs[i, labels[i]] for i in range(n)) / n
    onehot = np.zeros_like(probs)
    onehot[np.arange(n), labels] = 1.0
    return loss, (probs - onehot) / n, probs


def adam_update(param, grad, m, v, lr, t, beta1=0.9, beta2=0.999, eps=1e-7):
    """Kingma & Ba, Algorithm 1 with the paper's 'more efficient' ordering (eps added to sqrt(v), as Keras does):
    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; param -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)."""
    m[...] = beta1 * m + (1 - beta1) * grad
    v[...] = beta2 * v + (1 - beta2) * grad * grad
    alpha_t = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    param[...] = param - alpha_t * m / (np.sqrt(v) + eps)


def sgd_update(param, grad, velocity, lr, momentum=0.0):
    """velocity = momentum * velocity - lr * grad; param += velocity."""
    velocity[...] = momentum * velocity - lr * grad
    param[...] = param + velocity
