"""Receptive fields across layers: trace one neuron of a conv/pool stack back to the input image.

A conv neuron at row i reads rows i*s - p_top .. i*s - p_top + f - 1 of its input (the lecture's
i*s_h .. i*s_h + f_h - 1 in padded coordinates, shifted back by the top padding); a pooling neuron reads
rows i*s .. i*s + f - 1, and the core keeps partial windows at the edge. Composing these layer by layer,
from the selected neuron down to the image, gives its footprint. Rows outside the image are padding
zeros and are clipped away, which is why edge neurons have smaller footprints.

The stacks are built from the core's own layers (`convtui.core.nn.layers`), so the shapes shown are the
shapes training uses; by default the lecture's MNIST CNN (conv 5x5 SAME, pool 2, conv 5x5 SAME, pool 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convtui.core.storage.datasets import DataError, load_split
from convtui.core.ops import resolve_padding
from convtui.core.nn.layers import Conv2D, MaxPool2D
from convtui.core.nn.sequential import Sequential
from convtui.toy.images import find_image
from convtui.toy.xo import FILTERS, TOY_NET


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the stack: a conv (with filters and padding) or a max pool."""

    kind: str  # "conv" or "pool"
    f: int
    s: int
    padding: object = "valid"  # conv only: 'valid', 'same' or an int
    channels: int = 1  # conv only: feature maps out

    def label(self) -> str:
        if self.kind == "conv":
            pad = self.padding.upper() if isinstance(self.padding, str) else f"p={self.padding}"
            return f"conv {self.f}x{self.f}x{self.channels} s{self.s} {pad}"
        return f"pool {self.f}x{self.f} s{self.s}"


@dataclass(frozen=True)
class Stack:
    """A named stack of layers on a square single-channel input."""

    name: str
    input_size: int
    layers: tuple[LayerSpec, ...]


# The lecture's "CNN in TensorFlow" for MNIST: 32 maps 5x5 SAME, pool 2/2, 64 maps 5x5 SAME, pool 2/2.
MNIST_CNN = Stack("MNIST CNN (lecture)", 28, (
    LayerSpec("conv", 5, 1, "same", 32), LayerSpec("pool", 2, 2),
    LayerSpec("conv", 5, 1, "same", 64), LayerSpec("pool", 2, 2)))
MNIST_VALID = Stack("MNIST CNN, VALID convs", 28, (
    LayerSpec("conv", 5, 1, "valid", 32), LayerSpec("pool", 2, 2),
    LayerSpec("conv", 5, 1, "valid", 64), LayerSpec("pool", 2, 2)))
STRIDED = Stack("three 3x3 convs, stride 2", 28, (
    LayerSpec("conv", 3, 2, 1, 8), LayerSpec("conv", 3, 2, 1, 16), LayerSpec("conv", 3, 2, 1, 32)))
# The X/O lessons' one network (convtui.toy.xo.TOY_NET), so this lesson traces the net the vote uses.
XO_TOY = Stack("X/O toy net (9x9)", 9, tuple(
    LayerSpec(layer.kind, layer.size, layer.stride, layer.padding, len(FILTERS)) if layer.kind == "conv"
    else LayerSpec(layer.kind, layer.size, layer.stride) for layer in TOY_NET))
PRESETS: tuple[Stack, ...] = (MNIST_CNN, MNIST_VALID, STRIDED, XO_TOY)


def build_model(stack: Stack) -> Sequential:
    """The stack as the core's layers (weights unused here: only the shapes and geometry matter)."""
    layers, channels = [], 1
    for index, spec in enumerate(stack.layers):
        if spec.kind == "conv":
            layers.append(Conv2D(channels, spec.channels, spec.f, spec.s, spec.padding, name=f"conv{index}"))
            channels = spec.channels
        else:
            layers.append(MaxPool2D(spec.f, spec.s, name=f"pool{index}"))
    return Sequential(layers, input_shape=(1, stack.input_size, stack.input_size))


def layer_shapes(stack: Stack) -> list[tuple[int, int, int]]:
    """(C, H, W) of the input and of each layer's output, from the core layers' own `output_shape`."""
    return [(1, stack.input_size, stack.input_size)] + [shape for _, shape in build_model(stack).shapes()]


@dataclass(frozen=True)
class Footprint:
    """The rows and columns (inclusive, clipped to real cells) one neuron reads at one level of the stack."""

    level: int  # 0 = the input image, k = the output of layer k
    rows: tuple[int, int]
    cols: tuple[int, int]
    size: tuple[int, int]  # rows and columns covered on this level (after clipping)
    reach: int  # unclipped extent: the theoretical receptive-field size on this level


def _step_back(spec: LayerSpec, n_in: int, lo: int, hi: int, reach_lo: int, reach_hi: int):
    """Map an inclusive interval of a layer's output rows to its input rows (clipped, and unclipped)."""
    if spec.kind == "conv":
        top = resolve_padding(spec.padding, n_in, n_in, spec.f, spec.f, spec.s, spec.s)[0]
    else:
        top = 0
    clipped = (max(lo * spec.s - top, 0), min(hi * spec.s - top + spec.f - 1, n_in - 1))
    unclipped = (reach_lo * spec.s - top, reach_hi * spec.s - top + spec.f - 1)
    return clipped, unclipped


def trace(stack: Stack, layer: int, i: int, j: int) -> list[Footprint]:
    """The footprint of neuron (i, j) in the output of `layer` (1-based) on every level down to the input.

    Returned from the selected level itself (a single cell) down to level 0, the image.
    """
    shapes = layer_shapes(stack)
    if not 1 <= layer <= len(stack.layers):
        raise ValueError(f"layer must be 1..{len(stack.layers)}, got {layer}")
    _, height, width = shapes[layer]
    if not (0 <= i < height and 0 <= j < width):
        raise ValueError(f"cell ({i}, {j}) is outside layer {layer}'s {height}x{width} output")
    rows = reach_rows = (i, i)
    cols = reach_cols = (j, j)
    result = [Footprint(layer, rows, cols, (1, 1), 1)]
    for level in range(layer, 0, -1):
        spec = stack.layers[level - 1]
        n_in = shapes[level - 1][1]
        rows, reach_rows = _step_back(spec, n_in, *rows, *reach_rows)
        cols, reach_cols = _step_back(spec, n_in, *cols, *reach_cols)
        size = (rows[1] - rows[0] + 1, cols[1] - cols[0] + 1)
        result.append(Footprint(level - 1, rows, cols, size, reach_rows[1] - reach_rows[0] + 1))
    return result


def receptive_field_size(stack: Stack, layer: int) -> int:
    """The unclipped receptive-field side on the input of any neuron of `layer`: r += (f - 1) * jump."""
    reach, jump = 1, 1
    for spec in stack.layers[:layer]:
        reach += (spec.f - 1) * jump
        jump *= spec.s
    return reach


def mnist_test_digit(index: int = 0) -> np.ndarray | None:
    """One 28x28 test digit in [0, 1] from the shipped MNIST, or None if the files are missing or damaged."""
    try:
        test = load_split("test")
    except DataError:
        return None
    if not 0 <= index < len(test.labels):
        return None
    return test.images[index] / 255.0


def sample_image(stack: Stack) -> np.ndarray | None:
    """Something real to trace footprints on: an MNIST digit for 28x28 stacks, the lecture's X for the 9x9 one."""
    if stack.input_size == 28:
        return mnist_test_digit(0)
    if stack.input_size == 9:
        image = find_image("x")
        return None if image is None else image.pixels
    return None
