"""Model presets in the lecture's order: softmax -> mlp-sigmoid -> mlp-relu -> mlp -> cnn.

`build_model(name, seed)` is a contract: `convtui bench`, the trainer and the app's dashboard all call it.
Layers are named (`conv1`, `pool1`, `dense1`, ...) so checkpoints and the dashboard can find them.
Every model takes NCHW float32 images (N, 1, 28, 28) and returns logits (N, 10): softmax lives in the loss.
"""

from __future__ import annotations

import numpy as np

from convtui.core.config import MODELS, PRESETS
from convtui.core.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential, Sigmoid

INPUT_SHAPE = (1, 28, 28)  # (C, H, W) of one MNIST image
N_CLASSES = 10

# Independent random streams per seed, so that (for example) changing the dropout rate does not change the
# initial weights. The trainer's shuffling uses stream 2.
INIT_STREAM, DROPOUT_STREAM, SHUFFLE_STREAM = 0, 1, 2


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """The generator of one stream of one seed."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream]))


def _named(layer, name):
    layer.name = name
    return layer


def _dense_stack(sizes, activation, init, rng, dtype):
    """Flatten, then Dense+activation for each hidden size, then the 10-way output layer."""
    layers, n_in = [Flatten()], int(np.prod(INPUT_SHAPE))
    for i, size in enumerate(sizes, start=1):
        layers.append(Dense(n_in, size, init=init, rng=rng, dtype=dtype, name=f"dense{i}"))
        layers.append(_named(activation(), f"{activation.__name__.lower()}{i}"))
        n_in = size
    layers.append(Dense(n_in, N_CLASSES, init="glorot_uniform", rng=rng, dtype=dtype, name="output"))
    return layers


def _cnn(rng, dtype):
    """conv 5x5x32 same + ReLU, maxpool 2, conv 5x5x64 same + ReLU, maxpool 2, flatten, dense 1024 + ReLU, dense 10."""
    return [
        Conv2D(1, 32, 5, stride=1, padding="same", init="he_normal", rng=rng, dtype=dtype, name="conv1"),
        _named(ReLU(), "relu1"),
        MaxPool2D(2, 2, name="pool1"),  # (32, 28, 28) -> (32, 14, 14)
        Conv2D(32, 64, 5, stride=1, padding="same", init="he_normal", rng=rng, dtype=dtype, name="conv2"),
        _named(ReLU(), "relu2"),
        MaxPool2D(2, 2, name="pool2"),  # (64, 14, 14) -> (64, 7, 7)
        Flatten(),
        Dense(7 * 7 * 64, 1024, init="he_normal", rng=rng, dtype=dtype, name="dense1"),
        _named(ReLU(), "relu3"),
        Dense(1024, N_CLASSES, init="glorot_uniform", rng=rng, dtype=dtype, name="output"),
    ]


def build_model(name: str, seed: int, dropout: float | None = None, dtype=np.float32) -> Sequential:
    """A fresh, seeded model of preset `name`.

    `dropout=None` takes the preset's rate (0.2 for `mlp`, else none). A rate above 0 puts one Dropout layer
    before the output layer, which is where the lecture's `mlp` has it.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    rng = rng_for(seed, INIT_STREAM)
    if name == "softmax":
        layers = _dense_stack([], ReLU, "glorot_uniform", rng, dtype)
    elif name == "mlp-sigmoid":
        # Keras's default glorot_uniform init: the lecture changes the init only at the next step (mlp-relu).
        layers = _dense_stack([200, 100, 60, 30], Sigmoid, "glorot_uniform", rng, dtype)
    elif name == "mlp-relu":
        layers = _dense_stack([200, 100, 60, 30], ReLU, "he_normal", rng, dtype)
    elif name == "mlp":
        layers = _dense_stack([128], ReLU, "he_normal", rng, dtype)
    else:
        layers = _cnn(rng, dtype)
    rate = PRESETS[name].dropout if dropout is None else float(dropout)
    if rate > 0:
        layers.insert(len(layers) - 1, Dropout(rate, rng=rng_for(seed, DROPOUT_STREAM), name="dropout"))
    return Sequential(layers, input_shape=INPUT_SHAPE)


def dropout_layers(model: Sequential) -> list[Dropout]:
    """The model's Dropout layers, whose random state a checkpoint saves so a resumed run continues exactly."""
    return [layer for layer in model.layers if isinstance(layer, Dropout)]


def summary(model: Sequential) -> list[str]:
    """One line per layer: description, output shape and parameter count."""
    lines, params = [], {id(layer): sum(p.value.size for p in layer.params()) for layer in model.layers}
    for layer, (description, shape) in zip(model.layers, model.shapes()):
        count = params[id(layer)]
        lines.append(f"{description:<28} {str(shape):<16} {count:>9,}")
    lines.append(f"{'total parameters':<45} {sum(params.values()):>9,}")
    return lines
