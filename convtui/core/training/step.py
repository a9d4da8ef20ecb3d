"""One training step, exactly as the trainer runs it: `convtui bench` times this same function."""

from __future__ import annotations

import math

import numpy as np

from convtui.core import ops
from convtui.core.training.evaluate import correct_count


def train_step(model, optimizer, x: np.ndarray, labels: np.ndarray, lr: float) -> tuple[float, int]:
    """Forward, fused softmax cross-entropy, backward (without the first layer's dx, which training never needs)
    and the optimiser's update, on float32 NCHW `x`. Returns (mean loss, correct predictions).

    The parameters are left untouched when the loss is not finite, so the caller can stop on divergence with
    the last good weights."""
    # Overflow is detected by the loss check below (and by the trainer's check of the weights before it saves),
    # so NumPy's warnings would only be noise on stderr.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        logits = model.forward(x, training=True)
        loss, dlogits, probs = ops.softmax_cross_entropy(logits, labels)
        if not math.isfinite(loss):
            return loss, 0
        model.backward(dlogits, input_grad=False)
        optimizer.step(lr)
    return loss, correct_count(probs, labels)
