"""Layer specs: a layer as plain data ({"kind": "Conv2D", "name": "conv1", "out_channels": 32, ...}), checked.

A checkpoint's architecture may come from anywhere (a classmate, an import from PyTorch), so every spec is checked
for kind, types and ranges, and the whole stack for fitting shapes, before a single weight is allocated.
"""

from __future__ import annotations

import re

import numpy as np

from convtui.core import ops
from convtui.core.nn.initializers import INITIALIZERS
from convtui.core.nn.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, MeanPool2D, ReLU, Sigmoid

LAYER_KINDS = {cls.__name__: cls for cls in (Conv2D, MaxPool2D, MeanPool2D, Dense, ReLU, Sigmoid, Dropout, Flatten)}
WEIGHTED_KINDS = ("Conv2D", "Dense")
MAX_LAYERS = 64
MAX_SIZE = 4096  # any one dimension: channels, pixels, units, window
MAX_LAYER_WEIGHTS = 1 << 26  # 256 MB of float32 in one layer; the cnn's biggest has 3.2 million
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")


def _whole(spec: dict, key: str, low: int = 1, high: int = MAX_SIZE) -> int:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"layer {spec.get('name')!r}: {key} must be a whole number from {low} to {high}, "
                         f"not {value!r}")
    return value


def _pair(spec: dict, key: str, low: int = 1) -> tuple[int, int]:
    value = spec.get(key)
    values = [value, value] if isinstance(value, int) else value
    if not isinstance(values, list) or len(values) != 2:
        raise ValueError(f"layer {spec.get('name')!r}: {key} must be a number or a pair, not {value!r}")
    return tuple(_whole({"name": spec.get("name"), key: v}, key, low) for v in values)


def _padding(spec: dict):
    value = spec.get("padding")
    if value in ("same", "valid"):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _whole(spec, "padding", 0)
    if isinstance(value, list) and len(value) in (2, 4):
        return tuple(_whole({"name": spec.get("name"), "padding": v}, "padding", 0) for v in value)
    raise ValueError(f"layer {spec.get('name')!r}: padding must be 'same', 'valid' or pixel counts, not {value!r}")


def _init(spec: dict) -> str:
    value = spec.get("init", "zeros")
    if not isinstance(value, str) or value not in INITIALIZERS:
        raise ValueError(f"layer {spec.get('name')!r}: unknown initialiser {value!r}")
    return value


def check_spec(spec) -> dict:
    """Return the constructor's keyword arguments for `spec`; ValueError names what is wrong."""
    if not isinstance(spec, dict):
        raise ValueError(f"a layer must be described by an object, not {type(spec).__name__}")
    kind, name = spec.get("kind"), spec.get("name")
    if not isinstance(kind, str) or kind not in LAYER_KINDS:
        raise ValueError(f"unknown layer kind {kind!r}")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"a {kind} layer has an invalid name {name!r}")
    if kind == "Conv2D":
        return dict(in_channels=_whole(spec, "in_channels"), out_channels=_whole(spec, "out_channels"),
                    kernel_size=_pair(spec, "kernel_size"), stride=_pair(spec, "stride"), padding=_padding(spec),
                    init=_init(spec), name=name)
    if kind in ("MaxPool2D", "MeanPool2D"):
        return dict(pool=_pair(spec, "pool"), stride=_pair(spec, "stride"), name=name)
    if kind == "Dense":
        return dict(in_features=_whole(spec, "in_features", high=MAX_LAYER_WEIGHTS),
                    out_features=_whole(spec, "out_features", high=MAX_LAYER_WEIGHTS), init=_init(spec), name=name)
    if kind == "Dropout":
        rate = spec.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"layer {name!r}: rate must be at least 0 and below 1, not {rate!r}")
        return dict(rate=float(rate), name=name)
    return {}


def check_input_shape(shape) -> tuple[int, int, int]:
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise ValueError(f"input_shape must be [channels, height, width], not {shape!r}")
    return tuple(_whole({"name": "input", "input_shape": v}, "input_shape") for v in shape)


def walk_shapes(input_shape: tuple, specs: list[dict]) -> tuple:
    """Check that each layer fits the shape the one before it gives, without building anything; return the
    output shape."""
    shape = tuple(input_shape)
    for spec in specs:
        kind, args, name = spec["kind"], check_spec(spec), spec["name"]
        if kind == "Conv2D":
            if len(shape) != 3 or shape[0] != args["in_channels"]:
                raise ValueError(f"layer {name!r} expects {args['in_channels']} input channels, gets shape {shape}")
            (f_h, f_w), (s_h, s_w) = args["kernel_size"], args["stride"]
            if args["out_channels"] * args["in_channels"] * f_h * f_w > MAX_LAYER_WEIGHTS:
                raise ValueError(f"layer {name!r} is too large")
            top, bottom, left, right = ops.resolve_padding(args["padding"], shape[1], shape[2], f_h, f_w, s_h, s_w)
            o_h = ops.conv_output_size(shape[1], f_h, s_h, top, bottom)
            o_w = ops.conv_output_size(shape[2], f_w, s_w, left, right)
            if o_h < 1 or o_w < 1:
                raise ValueError(f"layer {name!r}: its {f_h}x{f_w} filter does not fit the {shape[1]}x{shape[2]} input")
            shape = (args["out_channels"], o_h, o_w)
        elif kind in ("MaxPool2D", "MeanPool2D"):
            if len(shape) != 3:
                raise ValueError(f"layer {name!r} pools images, gets shape {shape}")
            (f_h, f_w), (s_h, s_w) = args["pool"], args["stride"]
            shape = (shape[0], ops.pool_output_size(shape[1], f_h, s_h), ops.pool_output_size(shape[2], f_w, s_w))
        elif kind == "Flatten":
            shape = (int(np.prod(shape)),)
        elif kind == "Dense":
            if len(shape) != 1 or shape[0] != args["in_features"]:
                raise ValueError(f"layer {name!r} expects {args['in_features']} inputs, gets shape {shape}")
            if args["in_features"] * args["out_features"] > MAX_LAYER_WEIGHTS:
                raise ValueError(f"layer {name!r} is too large")
            shape = (args["out_features"],)
    return shape


def check_architecture(architecture) -> dict:
    """An architecture read from a file, checked: kinds, names, hyper-parameters, unique names, fitting shapes.
    Returns it with the input shape as a tuple; raises ValueError naming the first problem."""
    if not isinstance(architecture, dict):
        raise ValueError("the architecture must be an object")
    input_shape = check_input_shape(architecture.get("input_shape"))
    specs = architecture.get("layers")
    if not isinstance(specs, list) or not 1 <= len(specs) <= MAX_LAYERS:
        raise ValueError(f"the architecture must list 1 to {MAX_LAYERS} layers")
    for spec in specs:
        check_spec(spec)
    names = [spec["name"] for spec in specs if spec["kind"] in WEIGHTED_KINDS]
    if len(set(names)) != len(names):
        raise ValueError("two layers with weights share a name")  # their weights would overwrite each other
    output = walk_shapes(input_shape, specs)
    if len(output) != 1:
        raise ValueError(f"the last layer must give one score per class, not shape {output}")
    return {"input_shape": input_shape, "layers": specs}


def layer_from_spec(spec: dict, rng: np.random.Generator, dropout_rng: np.random.Generator, dtype=np.float32,
                    init_weights: bool = True):
    """Build one layer. `init_weights=False` allocates zeros instead of drawing (its weights are loaded next)."""
    args = check_spec(spec)
    kind = spec["kind"]
    if kind in WEIGHTED_KINDS:
        if not init_weights:
            args["init"] = "zeros"
        return LAYER_KINDS[kind](**args, rng=rng, dtype=dtype)
    if kind == "Dropout":
        return Dropout(**args, rng=dropout_rng)
    layer = LAYER_KINDS[kind](**args)
    layer.name = spec["name"]  # activations and Flatten take no arguments; their name is set on the instance
    return layer
