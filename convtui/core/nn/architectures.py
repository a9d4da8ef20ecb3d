"""Model presets in the lecture's order, softmax -> mlp-sigmoid -> mlp-relu -> mlp -> cnn, as architectures: data.

An architecture is {"input_shape": [C, H, W], "layers": [spec, ...]} (see `specs`). `preset_architecture(name)`
gives a preset's; `build_from_architecture` builds any checked architecture with seeded weights, and
`build_model(name, seed)` is the two together: `convtui bench`, the trainer and the app's dashboard all call it.
Layers are named (`conv1`, `pool1`, `dense1`, ...) so checkpoints and the dashboard can find them.
Every model takes NCHW float32 images (N, C, H, W) and returns logits (N, classes): softmax lives in the loss.
"""

from __future__ import annotations

import numpy as np

from convtui.core import ops
from convtui.core.nn.sequential import Sequential
from convtui.core.nn.specs import check_architecture, layer_from_spec
from convtui.core.training.config import MODELS, PRESETS

MNIST_SHAPE = (1, 28, 28)  # (C, H, W) of one MNIST image
MNIST_CLASSES = 10

# Independent random streams per seed, so that (for example) changing the dropout rate does not change the
# initial weights. The trainer's shuffling uses stream 2.
INIT_STREAM, DROPOUT_STREAM, SHUFFLE_STREAM = 0, 1, 2


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """The generator of one stream of one seed."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream]))


def _dense_stack(sizes, activation: str, init: str, n_in: int, n_classes: int) -> list[dict]:
    """Flatten, then Dense+activation for each hidden size, then the output layer."""
    specs = [{"kind": "Flatten", "name": "flatten"}]
    for i, size in enumerate(sizes, start=1):
        specs.append({"kind": "Dense", "name": f"dense{i}", "in_features": n_in, "out_features": size, "init": init})
        specs.append({"kind": activation, "name": f"{activation.lower()}{i}"})
        n_in = size
    specs.append({"kind": "Dense", "name": "output", "in_features": n_in, "out_features": n_classes,
                  "init": "glorot_uniform"})
    return specs


def _conv(name, in_channels, out_channels):
    return {"kind": "Conv2D", "name": name, "in_channels": in_channels, "out_channels": out_channels,
            "kernel_size": [5, 5], "stride": [1, 1], "padding": "same", "init": "he_normal"}


def _cnn(input_shape, n_classes) -> list[dict]:
    """conv 5x5x32 same + ReLU, maxpool 2, conv 5x5x64 same + ReLU, maxpool 2, flatten, dense 1024 + ReLU,
    dense (classes)."""
    channels, height, width = input_shape
    pool = {"pool": [2, 2], "stride": [2, 2]}
    after_pools = [ops.pool_output_size(ops.pool_output_size(n, 2, 2), 2, 2) for n in (height, width)]
    flat = 64 * after_pools[0] * after_pools[1]  # 'same' convs keep the size; two 2x2 pools halve it (28 -> 7)
    return [
        _conv("conv1", channels, 32), {"kind": "ReLU", "name": "relu1"},
        {"kind": "MaxPool2D", "name": "pool1", **pool},  # (32, 28, 28) -> (32, 14, 14)
        _conv("conv2", 32, 64), {"kind": "ReLU", "name": "relu2"},
        {"kind": "MaxPool2D", "name": "pool2", **pool},  # (64, 14, 14) -> (64, 7, 7)
        {"kind": "Flatten", "name": "flatten"},
        {"kind": "Dense", "name": "dense1", "in_features": flat, "out_features": 1024, "init": "he_normal"},
        {"kind": "ReLU", "name": "relu3"},
        {"kind": "Dense", "name": "output", "in_features": 1024, "out_features": n_classes, "init": "glorot_uniform"},
    ]


def preset_architecture(name: str, dropout: float | None = None, input_shape=MNIST_SHAPE,
                        n_classes: int = MNIST_CLASSES) -> dict:
    """Preset `name` as data. `dropout=None` takes the preset's rate (0.2 for `mlp`, else none); a rate above 0
    puts one Dropout layer before the output layer, which is where the lecture's `mlp` has it."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    n_in = int(np.prod(input_shape))
    if name == "softmax":
        layers = _dense_stack([], "ReLU", "glorot_uniform", n_in, n_classes)
    elif name == "mlp-sigmoid":
        # Keras's default glorot_uniform init: the lecture changes the init only at the next step (mlp-relu).
        layers = _dense_stack([200, 100, 60, 30], "Sigmoid", "glorot_uniform", n_in, n_classes)
    elif name == "mlp-relu":
        layers = _dense_stack([200, 100, 60, 30], "ReLU", "he_normal", n_in, n_classes)
    elif name == "mlp":
        layers = _dense_stack([128], "ReLU", "he_normal", n_in, n_classes)
    else:
        layers = _cnn(input_shape, n_classes)
    rate = PRESETS[name].dropout if dropout is None else float(dropout)
    if rate > 0:
        layers.insert(len(layers) - 1, {"kind": "Dropout", "name": "dropout", "rate": rate})
    return {"input_shape": list(input_shape), "layers": layers}


def build_from_architecture(architecture: dict, seed: int = 0, dtype=np.float32,
                            init_weights: bool = True) -> Sequential:
    """A model built from `architecture` (checked first: ValueError names a problem). Weights are drawn from
    the seed's init stream in layer order; with `init_weights=False` they are zeros, to be loaded next."""
    checked = check_architecture(architecture)
    rng, dropout_rng = rng_for(seed, INIT_STREAM), rng_for(seed, DROPOUT_STREAM)
    layers = [layer_from_spec(spec, rng, dropout_rng, dtype, init_weights) for spec in checked["layers"]]
    return Sequential(layers, input_shape=checked["input_shape"])


def build_model(name: str, seed: int, dropout: float | None = None, dtype=np.float32, input_shape=MNIST_SHAPE,
                n_classes: int = MNIST_CLASSES) -> Sequential:
    """A fresh, seeded model of preset `name`, for images of `input_shape` and `n_classes` classes."""
    return build_from_architecture(preset_architecture(name, dropout, input_shape, n_classes), seed, dtype)


def dropout_layers(model: Sequential) -> list:
    """The model's Dropout layers, whose random state a checkpoint saves so a resumed run continues exactly."""
    return [layer for layer in model.layers if type(layer).__name__ == "Dropout"]
