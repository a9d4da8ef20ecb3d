"""Stacking multiple feature maps: the lecture's "one more example", worked cell by cell.

"A conv layer. Computes 2 feature maps. Filters: 3x3 with stride of 2. Input tensor shape: [7, 7, 3].
Output tensor shape: [3, 3, 2]." The [7, 7, 3] input is a 5x5x3 volume with one ring of zero padding
(as in the cs231n demo the slide links to). Each output cell is

    y[k, i, j] = b[k] + sum over channels c of sum(w[k, c] * x_pad[c, 2i:2i+3, 2j:2j+3])

and the whole output comes from the core's `conv2d_forward`; the per-channel working is shown beside it
and must add up to the kernel's number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convtui.core.ops import conv2d_forward

CHANNELS, SIZE, PAD, FILTERS, F, STRIDE = 3, 5, 1, 2, 3, 2
DEFAULT_SEED = 0


@dataclass(frozen=True)
class ChannelsExample:
    """Integer input, filters and biases from one seed, and the kernel's output."""

    seed: int
    x: np.ndarray  # (3, 5, 5) the input volume, values 0..2
    x_padded: np.ndarray  # (3, 7, 7) with one ring of zeros
    w: np.ndarray  # (2, 3, 3, 3) two filters, values -1..1
    b: np.ndarray  # (2,) biases
    y: np.ndarray  # (2, 3, 3) from conv2d_forward


@dataclass(frozen=True)
class CellWork:
    """The working for one output cell y[k, i, j]."""

    k: int
    i: int
    j: int
    rows: range  # rows of the padded input read by this cell
    cols: range
    patch: np.ndarray  # (3, 3, 3) the three channel slices of the padded input
    weights: np.ndarray  # (3, 3, 3) filter k
    products: np.ndarray  # (3, 3, 3) patch * weights, element by element
    channel_sums: np.ndarray  # (3,)
    bias: float
    total: float  # sum of channel_sums + bias
    kernel_value: float  # y[k, i, j] from conv2d_forward


def make_example(seed: int = DEFAULT_SEED) -> ChannelsExample:
    """Small integers (as on the slide's demo) so every product and sum can be checked by hand."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(CHANNELS, SIZE, SIZE)).astype(np.float64)
    w = rng.integers(-1, 2, size=(FILTERS, CHANNELS, F, F)).astype(np.float64)
    b = rng.integers(-1, 2, size=FILTERS).astype(np.float64)
    y = conv2d_forward(x[None], w, b, STRIDE, PAD)[0]  # (1, 3, 5, 5) -> (1, 2, 3, 3)
    x_padded = np.pad(x, ((0, 0), (PAD, PAD), (PAD, PAD)))
    return ChannelsExample(seed, x, x_padded, w, b, y)


def output_size() -> int:
    """(n + 2p - f) // s + 1 = (5 + 2 - 3) // 2 + 1 = 3."""
    return (SIZE + 2 * PAD - F) // STRIDE + 1


def cell_work(example: ChannelsExample, k: int, i: int, j: int) -> CellWork:
    """Slice the padded input under output cell (i, j), multiply by filter k channel by channel, add up."""
    rows = range(i * STRIDE, i * STRIDE + F)
    cols = range(j * STRIDE, j * STRIDE + F)
    patch = example.x_padded[:, rows.start:rows.stop, cols.start:cols.stop]
    weights = example.w[k]
    products = patch * weights
    channel_sums = products.sum(axis=(1, 2))
    bias = float(example.b[k])
    return CellWork(k, i, j, rows, cols, patch, weights, products, channel_sums, bias,
                    float(channel_sums.sum() + bias), float(example.y[k, i, j]))


def cell_order() -> list[tuple[int, int, int]]:
    """The order a learner steps through the output: map 0 row by row, then map 1."""
    n = output_size()
    return [(k, i, j) for k in range(FILTERS) for i in range(n) for j in range(n)]
