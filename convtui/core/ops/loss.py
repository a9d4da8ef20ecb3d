"""Softmax and the fused softmax cross-entropy loss: the one softmax of the package."""

from __future__ import annotations

import math

import numpy as np

from convtui.core.ops.jit import SERIAL, is_cached, run_range
from convtui.core.ops.kernel_cache import njit


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, shifted by each row's maximum so exp never overflows."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


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


def softmax_cross_entropy(logits, labels):
    """Fused softmax + mean cross-entropy: returns (loss, dlogits = (softmax - onehot) / N, probs)."""
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"softmax_cross_entropy wants logits (N, K) and labels (N,), got {logits.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        # The kernel indexes with each label unchecked: a label past the last class would write out of bounds.
        raise ValueError(f"labels must be 0 to {logits.shape[1] - 1} for {logits.shape[1]} classes, "
                         f"got {labels.min()} to {labels.max()}")
    logits = np.ascontiguousarray(logits)
    probs = np.empty_like(logits)
    dlogits = np.empty_like(logits)
    losses = np.empty(logits.shape[0], dtype=np.float64)
    run_range(_softmax_cross_entropy_range, logits.size, logits.shape[0], logits, labels.astype(np.int64), probs,
              dlogits, losses)
    return float(losses.mean()), dlogits, probs


def cross_entropy_kernel_cached(dtype) -> bool | None:
    """Whether Numba's on-disk cache holds the loss kernel for `dtype` logits, as `softmax_cross_entropy` calls it
    (`jit.is_cached`: nothing is compiled or loaded)."""
    logits = np.zeros((1, 2), dtype=dtype)
    return is_cached(_softmax_cross_entropy_range, logits, np.zeros(1, dtype=np.int64), logits, logits,
                     np.zeros(1, dtype=np.float64), 0, 1)
