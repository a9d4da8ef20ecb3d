"""The lecture's toy ConvNet for X's and O's: filter -> ReLU -> pool, every intermediate kept.

All arithmetic runs through the same kernels that train MNIST (`convtui.core.ops`), in float64.
The toy conv is the lecture's "Filtering: the math behind the match": line the 3x3 filter up with a patch,
multiply pixel by pixel, add up, divide by the number of pixels (9). A perfect match gives 1.00.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convtui.core.ops import conv2d_forward, maxpool2d_forward, meanpool2d_forward, relu_forward

FILTER_SIZE = 3
POOL, POOL_STRIDE = 2, 2


@dataclass(frozen=True)
class ToyFilter:
    name: str  # used on the command line: backslash, x, slash
    symbol: str  # how the lecture draws it: \ X /
    weights: np.ndarray  # (3, 3) of -1/+1


FILTERS: tuple[ToyFilter, ...] = (
    ToyFilter("backslash", "\\", np.array([[1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64)),
    ToyFilter("x", "X", np.array([[1, -1, 1], [-1, 1, -1], [1, -1, 1]], dtype=np.float64)),
    ToyFilter("slash", "/", np.array([[-1, -1, 1], [-1, 1, -1], [1, -1, -1]], dtype=np.float64)),
)
FILTER_ALIASES = {"\\": "backslash", "/": "slash", "X": "x", "diag-down": "backslash", "diag-up": "slash"}


def find_filter(name: str) -> ToyFilter | None:
    name = FILTER_ALIASES.get(name, name).lower()
    return next((f for f in FILTERS if f.name == name), None)


# ------------------------------------------------------------------------------------------ one window
@dataclass(frozen=True)
class WindowStep:
    """One position of the filter window: what the filters lesson shows beside the image."""

    row: int
    col: int
    patch: np.ndarray  # (3, 3) pixels under the window
    products: np.ndarray  # (3, 3) patch * filter: 1 where pixel and filter agree, -1 where not
    total: float  # sum of the products
    value: float  # total / 9, the output cell (row, col)


def window_step(image: np.ndarray, weights: np.ndarray, row: int, col: int) -> WindowStep:
    """The window whose top-left pixel is (row, col)."""
    size = weights.shape[0]
    patch = np.asarray(image, dtype=np.float64)[row:row + size, col:col + size]
    if patch.shape != weights.shape:
        raise ValueError(f"window at ({row}, {col}) runs off the image")
    products = patch * weights
    total = float(products.sum())
    return WindowStep(row, col, patch.copy(), products, total, total / weights.size)


def window_positions(image_size: int, filter_size: int = FILTER_SIZE) -> list[tuple[int, int]]:
    """Every top-left corner, row by row: out = n - f + 1 per side (VALID, stride 1)."""
    out = image_size - filter_size + 1
    return [(r, c) for r in range(out) for c in range(out)]


# ------------------------------------------------------------------------------------------ whole layers
def convolve(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One toy feature map: the kernel's sum of products at every position, divided by the filter size."""
    x = np.asarray(image, dtype=np.float64)[None, None]  # (N=1, C=1, H, W)
    w = np.asarray(weights, dtype=np.float64)[None, None]  # (K=1, C=1, 3, 3), kept at +-1 so sums are exact
    return conv2d_forward(x, w, stride=1, padding="valid")[0, 0] / weights.size


def convolve_all(image: np.ndarray, filters=FILTERS) -> np.ndarray:
    """Three filters here, so three images out: (3, 7, 7) for a 9x9 image."""
    x = np.asarray(image, dtype=np.float64)[None, None]
    w = np.stack([f.weights for f in filters])[:, None]  # (K, 1, 3, 3)
    return conv2d_forward(x, w, stride=1, padding="valid")[0] / (FILTER_SIZE * FILTER_SIZE)


def relu(maps: np.ndarray) -> np.ndarray:
    """Negatives become 0 (any shape)."""
    return relu_forward(np.ascontiguousarray(maps, dtype=np.float64))


def pool(maps: np.ndarray, mode: str = "max") -> np.ndarray:
    """2x2 pooling, stride 2, partial windows at the right and bottom edges kept: 7x7 -> 4x4."""
    maps = np.asarray(maps, dtype=np.float64)
    squeeze = maps.ndim == 2
    x = maps[None, None] if squeeze else maps[None]  # (1, C, H, W)
    if mode == "max":
        y = maxpool2d_forward(x, POOL, POOL_STRIDE)[0]
    elif mode == "mean":
        y = meanpool2d_forward(x, POOL, POOL_STRIDE)
    else:
        raise ValueError(f"pool mode is 'max' or 'mean', got {mode!r}")
    return y[0, 0] if squeeze else y[0]


def pool_window(i: int, j: int, size: int) -> tuple[int, int, int, int]:
    """Input rectangle (top, left, bottom, right), inclusive, feeding pooled cell (i, j); clipped at the edge."""
    top, left = i * POOL_STRIDE, j * POOL_STRIDE
    return top, left, min(top + POOL, size) - 1, min(left + POOL, size) - 1


def is_partial_window(i: int, j: int, size: int) -> bool:
    top, left, bottom, right = pool_window(i, j, size)
    return (bottom - top + 1) * (right - left + 1) < POOL * POOL


# ------------------------------------------------------------------------------------------ the toy net
@dataclass(frozen=True)
class ToyLayer:
    """One layer of the toy net: a conv (3 filters, each spanning every input channel) or a 2x2 max pool."""

    kind: str  # "conv" or "pool"
    size: int  # filter or window side
    stride: int
    padding: str = "valid"  # conv only


# The one toy network every X/O lesson, the vote and `convtui xo` use (the lecture's "Deep stacking"):
# 9x9 -> conv 3x3 VALID -> 3x7x7 -> ReLU -> pool -> 3x4x4 -> conv 3x3x3 SAME -> 3x4x4 -> ReLU -> pool -> 3x2x2,
# the 12 numbers the vote flattens. The second conv pads ("SAME") because a VALID one would leave 1x1 maps,
# too few numbers for the lecture's 12-number vote.
TOY_NET: tuple[ToyLayer, ...] = (
    ToyLayer("conv", FILTER_SIZE, 1, "valid"), ToyLayer("pool", POOL, POOL_STRIDE),
    ToyLayer("conv", FILTER_SIZE, 1, "same"), ToyLayer("pool", POOL, POOL_STRIDE))


def deep_filters(filters=FILTERS) -> np.ndarray:
    """The filters of every conv after the first, (K, C, 3, 3) with K = C = 3, as in the Channels lesson: each
    filter has one 3x3 slice per input map. Filter k's slice on map k is shape k again (so layer 2 looks for the
    same stroke at a coarser scale); its slices on the other maps are zero, so those maps add nothing."""
    k = len(filters)
    w = np.zeros((k, k, FILTER_SIZE, FILTER_SIZE))
    for index, each in enumerate(filters):
        w[index, index] = each.weights
    return w


def convolve_deep(maps: np.ndarray, filters=FILTERS) -> np.ndarray:
    """A later conv of the toy net: every filter runs over ALL input maps (sum over channels), zero padding
    keeps the size (SAME), and the sum is divided by 9, the pixels of one slice, as in layer 1."""
    x = np.asarray(maps, dtype=np.float64)[None]  # (N=1, C=3, H, W)
    spec = TOY_NET[2]
    return conv2d_forward(x, deep_filters(filters), stride=spec.stride, padding=spec.padding)[0] / (
        FILTER_SIZE * FILTER_SIZE)


@dataclass(frozen=True)
class Stage:
    """One step of the stack: a name like "conv 1", and the maps it produced, (C, H, W)."""

    name: str
    maps: np.ndarray


def stack(image: np.ndarray, depth: int = 2, pool_mode: str = "max", filters=FILTERS) -> list[Stage]:
    """TOY_NET's conv -> ReLU -> pool, `depth` times (a third module repeats the second). Layer 1 runs the three
    filters over the image; each later conv is `convolve_deep`: 9x9 -> 3x7x7 -> 3x4x4 -> 3x4x4 -> 3x2x2."""
    stages = [Stage("image", np.asarray(image, dtype=np.float64)[None])]
    maps = None
    for layer in range(1, depth + 1):
        maps = convolve_all(image, filters) if layer == 1 else convolve_deep(maps, filters)
        stages.append(Stage(f"conv {layer}", maps))
        maps = relu(maps)
        stages.append(Stage(f"relu {layer}", maps))
        maps = pool(maps, pool_mode)
        stages.append(Stage(f"pool {layer}", maps))
    return stages


def features(image: np.ndarray, depth: int = 2, pool_mode: str = "max") -> np.ndarray:
    """The final maps flattened into one vector, map by map, row by row (12 numbers at depth 2)."""
    return stack(image, depth, pool_mode)[-1].maps.reshape(-1)
