"""Weight initialisers. `fan_in` / `fan_out` count the inputs / outputs feeding one unit."""

from __future__ import annotations

import numpy as np


def he_normal(shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32):
    """He et al.: N(0, 2 / fan_in), truncated at 2 standard deviations as Keras does."""
    std = np.sqrt(2.0 / fan_in) / 0.87962566103423978  # the truncated normal's std correction, as in Keras
    w = rng.standard_normal(shape)
    bad = np.abs(w) > 2.0
    while bad.any():  # resample the tails so the draw is a true truncated normal
        w[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(w) > 2.0
    return (w * std).astype(dtype)


def glorot_uniform(shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32):
    """Glorot & Bengio: U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out))."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def zeros(shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32):
    """All zeros, drawing nothing: for a model whose weights are loaded next (a checkpoint, a copy)."""
    return np.zeros(shape, dtype=dtype)


INITIALIZERS = {"he_normal": he_normal, "glorot_uniform": glorot_uniform, "zeros": zeros}
