"""Shape arithmetic shared by the kernels, the layers and the lessons: output sizes and padding rules."""

from __future__ import annotations

import numpy as np


def conv_output_size(n: int, f: int, s: int, pad_before: int = 0, pad_after: int = 0) -> int:
    """out = (n + 2p - f) // s + 1, with the padding possibly uneven (pad_before + pad_after = 2p)."""
    return (n + pad_before + pad_after - f) // s + 1


def same_padding(n: int, f: int, s: int) -> tuple[int, int]:
    """TensorFlow's SAME rule: out = ceil(n / s), total = max((out - 1) * s + f - n, 0), the odd pixel after."""
    out = -(-n // s)
    total = max((out - 1) * s + f - n, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, n_h: int, n_w: int, f_h: int, f_w: int, s_h: int, s_w: int) -> tuple[int, int, int, int]:
    """'valid', 'same', an int p, (p_h, p_w) or (top, bottom, left, right) -> (top, bottom, left, right)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return 0, 0, 0, 0
        if mode == "same":
            return same_padding(n_h, f_h, s_h) + same_padding(n_w, f_w, s_w)
        raise ValueError(f"padding must be 'valid', 'same' or a number, not {padding!r}")
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        pads = (p, p, p, p)
    elif len(padding) == 2:
        pads = (int(padding[0]), int(padding[0]), int(padding[1]), int(padding[1]))
    elif len(padding) == 4:
        pads = tuple(int(p) for p in padding)
    else:
        raise ValueError(f"padding must have 1, 2 or 4 values, not {padding!r}")
    if min(pads) < 0:
        raise ValueError(f"padding must not be negative: {padding!r}")
    return pads


def pool_output_size(n: int, f: int, s: int) -> int:
    """Pooling keeps partial windows at the edge: out = ceil((n - f) / s) + 1 (7x7, 2x2, stride 2 -> 4x4).

    A window must also start inside the input, which caps out at ceil(n / s) when the stride exceeds the window.
    """
    if n <= f:
        return 1
    return min(-(-(n - f) // s) + 1, -(-n // s))


def pair(v) -> tuple[int, int]:
    """An int n -> (n, n); a pair -> a tuple of two ints."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)
