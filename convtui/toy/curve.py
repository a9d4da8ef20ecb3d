"""The lecture's "Filters Example": a 7x7 curve-detector filter (values 30) over two receptive fields.

On the receptive field that has the same curve the products add up to
(50*30) + (50*30) + (50*30) + (20*30) + (50*30) = 6600, "a large number!"; elsewhere the curve is absent and
the sum is 0. Computed with the core's conv kernel: one 7x7 window is a 1x1 convolution output.
"""

from __future__ import annotations

import numpy as np

from convtui.core.ops import conv2d_forward

CURVE_FILTER = np.array([
    [0, 0, 0, 0, 0, 30, 0],
    [0, 0, 0, 0, 30, 0, 0],
    [0, 0, 0, 30, 0, 0, 0],
    [0, 0, 0, 30, 0, 0, 0],
    [0, 0, 0, 30, 0, 0, 0],
    [0, 0, 0, 30, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
], dtype=np.float64)

# The receptive field on the mouse drawing's back, where its outline curves like the filter.
MATCHING_FIELD = np.array([
    [0, 0, 0, 0, 0, 0, 30],
    [0, 0, 0, 0, 50, 50, 50],
    [0, 0, 0, 20, 50, 0, 0],
    [0, 0, 0, 50, 50, 0, 0],
    [0, 0, 0, 50, 50, 0, 0],
    [0, 0, 0, 50, 50, 0, 0],
    [0, 0, 0, 50, 50, 0, 0],
], dtype=np.float64)

# Another receptive field, near the mouse's ear: a curve bending the other way, nothing on the filter's path.
NON_MATCHING_FIELD = np.array([
    [0, 0, 0, 0, 0, 0, 0],
    [0, 40, 0, 0, 0, 0, 0],
    [40, 0, 40, 0, 0, 0, 0],
    [40, 20, 0, 0, 0, 0, 0],
    [0, 50, 0, 0, 0, 0, 0],
    [0, 0, 50, 0, 0, 0, 0],
    [25, 25, 0, 50, 0, 0, 0],
], dtype=np.float64)

FIELDS = {"matching": MATCHING_FIELD, "non-matching": NON_MATCHING_FIELD}


def filter_response(field: np.ndarray, weights: np.ndarray = CURVE_FILTER) -> float:
    """Multiplication and summation over one receptive field, through the conv kernel (no bias)."""
    x = np.asarray(field, dtype=np.float64)[None, None]  # (1, 1, 7, 7)
    w = np.asarray(weights, dtype=np.float64)[None, None]
    return float(conv2d_forward(x, w, stride=1, padding="valid")[0, 0, 0, 0])


def products(field: np.ndarray, weights: np.ndarray = CURVE_FILTER) -> np.ndarray:
    return np.asarray(field, dtype=np.float64) * weights


def sum_formula(field: np.ndarray, weights: np.ndarray = CURVE_FILTER) -> str:
    """The lecture's way of writing the sum: only the terms that are not zero, e.g. (50 * 30) + ... = 6600."""
    terms = [f"({int(p)} * {int(w)})" for p, w in zip(np.asarray(field).reshape(-1), weights.reshape(-1))
             if p * w != 0]
    total = int(filter_response(field, weights))
    return f"{' + '.join(terms)} = {total}" if terms else f"every product is 0, so the sum = {total}"
