"""Our architectures as the equivalent `torch.nn.Sequential`: its modules, its state_dict names and layouts.

convtui names weights by layer (`conv1.w`, `dense1.b`); an `nn.Sequential` names them by child index
(`0.weight`, `0.bias`, `7.weight`, ...). Layouts: a conv weight is (out, in, kh, kw) in both; our dense weight is
(in, out) because we compute `y = x @ w + b`, while `nn.Linear.weight` is (out, in) because it computes
`y = x @ W.T + b`, so the dense weights are transposed on the way out and back in.

Each of our layers becomes one child, except a Conv2D whose padding is uneven: TensorFlow's SAME padding puts the
odd pixel after (bottom, right), which `nn.Conv2d(padding=...)` cannot say, so an `nn.ZeroPad2d` child comes
first. Pooling keeps partial windows at the edge as `ceil_mode=True` does; `torch_modules` checks every
pooled size against PyTorch's rule and refuses an architecture where the two would differ.

`recognise` goes the other way: from a safetensors file's tensor names and shapes (or the architecture its
metadata records) to one of our architectures. No torch is imported: this is names, shapes and transposes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

from convtui.core import ops
from convtui.core.errors import ConvtuiError
from convtui.core.nn.architectures import preset_architecture
from convtui.core.nn.specs import check_architecture, check_spec
from convtui.core.training.config import MODELS, PRESETS

METADATA_FORMAT = "convtui"
LAYOUT = "torch.nn.Sequential state_dict: Conv2d.weight (out, in, kh, kw), Linear.weight (out, in)"
LECTURE_DROPOUT = 0.2  # the rate a recognised Dropout gets: it cannot be read from weights, and inference drops it


class ExportError(ConvtuiError):
    """An architecture that the target format cannot express exactly."""


class ImportMismatch(ConvtuiError):
    """Tensors that are not one of our architectures, or do not fit the one the file declares."""


@dataclass
class TorchModule:
    """One child of the nn.Sequential: its index, torch class, constructor arguments and weights."""

    index: int
    cls: str  # "Conv2d", "ZeroPad2d", "MaxPool2d", "AvgPool2d", "Linear", "ReLU", "Sigmoid", "Dropout", "Flatten"
    args: dict = field(default_factory=dict)  # keyword arguments, in the order the code shows them
    layer: str = ""  # our layer's name
    output_shape: tuple = ()  # (C, H, W) or (features,), per image
    params: dict = field(default_factory=dict)  # torch suffix ("weight") -> our state name ("dense1.w")

    def call(self) -> str:
        """The constructor as Python code: `nn.Conv2d(1, 32, kernel_size=(5, 5), ...)`."""
        positional = [repr(v) for k, v in self.args.items() if k.startswith("_")]
        keywords = [f"{k}={v!r}" for k, v in self.args.items() if not k.startswith("_")]
        return f"nn.{self.cls}({', '.join(positional + keywords)})"


def torch_pool_size(n: int, f: int, s: int) -> int:
    """PyTorch's (and ONNX's) pooled size with ceil_mode and no padding: out = ceil((n - f) / s) + 1, less one
    when the last window would start past the input."""
    out = -(-(n - f) // s) + 1
    if (out - 1) * s >= n:
        out -= 1
    return out


def torch_modules(architecture: dict) -> list[TorchModule]:
    """The children of the equivalent nn.Sequential, in order (ExportError if one cannot match exactly)."""
    checked = check_architecture(architecture)
    shape, modules = tuple(checked["input_shape"]), []

    def add(cls, layer, out, args=None, params=None):
        modules.append(TorchModule(len(modules), cls, args or {}, layer, tuple(out), params or {}))

    for spec in checked["layers"]:
        kind, name, args = spec["kind"], spec["name"], check_spec(spec)
        if kind == "Conv2D":
            (f_h, f_w), (s_h, s_w) = args["kernel_size"], args["stride"]
            top, bottom, left, right = ops.resolve_padding(args["padding"], shape[1], shape[2], f_h, f_w, s_h, s_w)
            out = (args["out_channels"], ops.conv_output_size(shape[1], f_h, s_h, top, bottom),
                   ops.conv_output_size(shape[2], f_w, s_w, left, right))
            padding = (top, left)
            if (top, left) != (bottom, right):  # uneven: pad first (ZeroPad2d takes left, right, top, bottom)
                add("ZeroPad2d", name, (shape[0], shape[1] + top + bottom, shape[2] + left + right),
                    {"_padding": (left, right, top, bottom)})
                padding = (0, 0)
            add("Conv2d", name, out, {"_in": args["in_channels"], "_out": args["out_channels"],
                                      "kernel_size": (f_h, f_w), "stride": (s_h, s_w), "padding": padding},
                {"weight": f"{name}.w", "bias": f"{name}.b"})
        elif kind in ("MaxPool2D", "MeanPool2D"):
            (f_h, f_w), (s_h, s_w) = args["pool"], args["stride"]
            out = (shape[0], ops.pool_output_size(shape[1], f_h, s_h), ops.pool_output_size(shape[2], f_w, s_w))
            theirs = (shape[0], torch_pool_size(shape[1], f_h, s_h), torch_pool_size(shape[2], f_w, s_w))
            if out != theirs:
                raise ExportError(f"layer {name!r} pools {shape[1]}x{shape[2]} to {out[1]}x{out[2]}; PyTorch and "
                                  f"ONNX would give {theirs[1]}x{theirs[2]}, so it cannot be exported exactly")
            pool_args = {"kernel_size": (f_h, f_w), "stride": (s_h, s_w), "ceil_mode": True}
            if kind == "MeanPool2D":
                # A partial edge window is averaged over the pixels it holds, as ours is.
                pool_args["count_include_pad"] = False
            add("MaxPool2d" if kind == "MaxPool2D" else "AvgPool2d", name, out, pool_args)
        elif kind == "Dense":
            out = (args["out_features"],)
            add("Linear", name, out, {"_in": args["in_features"], "_out": args["out_features"]},
                {"weight": f"{name}.w", "bias": f"{name}.b"})
        elif kind == "Flatten":
            add("Flatten", name, (int(np.prod(shape)),))
        elif kind == "Dropout":
            add("Dropout", name, shape, {"p": args["rate"]})
        else:  # ReLU, Sigmoid
            add(kind, name, shape)
        shape = modules[-1].output_shape
    return modules


def expected_shapes(architecture: dict) -> dict[str, tuple[int, ...]]:
    """torch state_dict name -> shape, in state_dict order."""
    shapes = {}
    for module in torch_modules(architecture):
        if module.cls == "Conv2d":
            f_h, f_w = module.args["kernel_size"]
            shapes[f"{module.index}.weight"] = (module.args["_out"], module.args["_in"], f_h, f_w)
            shapes[f"{module.index}.bias"] = (module.args["_out"],)
        elif module.cls == "Linear":
            shapes[f"{module.index}.weight"] = (module.args["_out"], module.args["_in"])
            shapes[f"{module.index}.bias"] = (module.args["_out"],)
    return shapes


def to_torch_state(architecture: dict, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our state_dict -> the nn.Sequential's (Linear weights transposed to (out, in)), in state_dict order."""
    torch_state = {}
    for module in torch_modules(architecture):
        for suffix, ours in module.params.items():
            value = state[ours]
            if module.cls == "Linear" and suffix == "weight":
                value = value.T
            torch_state[f"{module.index}.{suffix}"] = np.ascontiguousarray(value)
    return torch_state


def from_torch_state(architecture: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The nn.Sequential's state_dict -> ours, as float32; ImportMismatch names the first tensor that does not
    fit (names and shapes must match `expected_shapes` exactly)."""
    check_names_and_shapes(architecture, {name: np.shape(value) for name, value in tensors.items()})
    state = {}
    for module in torch_modules(architecture):
        for suffix, ours in module.params.items():
            value = tensors[f"{module.index}.{suffix}"]
            if module.cls == "Linear" and suffix == "weight":
                value = value.T
            state[ours] = np.ascontiguousarray(value, dtype=np.float32)
    return state


def check_names_and_shapes(architecture: dict, shapes: dict[str, tuple]) -> None:
    expected = expected_shapes(architecture)
    unknown = [name for name in shapes if name not in expected]
    if unknown:
        raise ImportMismatch(f"unknown tensor name {unknown[0][:60]!r} (expected {', '.join(list(expected)[:4])}"
                             f"{', ...' if len(expected) > 4 else ''})")
    missing = [name for name in expected if name not in shapes]
    if missing:
        raise ImportMismatch(f"tensor {missing[0]!r} is missing")
    for name, shape in expected.items():
        if tuple(shapes[name]) != shape:
            raise ImportMismatch(f"tensor {name!r} has shape {tuple(shapes[name])}, the model needs {shape}")


def export_metadata(model_name: str, architecture: dict, input_scaling: str) -> dict[str, str]:
    """The `__metadata__` our safetensors files carry: enough to rebuild the model without guessing."""
    return {"format": METADATA_FORMAT, "model": model_name, "architecture": json.dumps(_jsonable(architecture)),
            "input": input_scaling, "layout": LAYOUT}


def _jsonable(architecture: dict) -> dict:
    return {"input_shape": list(architecture["input_shape"]), "layers": list(architecture["layers"])}


def _candidates():
    """Every preset, with and without a dropout layer before the output: (model, dropout rate, architecture)."""
    for model in MODELS:
        for rate in dict.fromkeys((PRESETS[model].dropout, 0.0, LECTURE_DROPOUT)):
            yield model, rate, preset_architecture(model, rate)


# `nn.Sequential` inside a module (`net.0.weight`) or wrapped by DataParallel (`module.0.weight`): the prefix is
# dropped when every tensor shares it.
_PREFIXED = re.compile(r"((?:[A-Za-z_][A-Za-z0-9_]*\.)+)(\d+\.(?:weight|bias))")


def strip_prefix(names) -> dict[str, str]:
    """stored name -> Sequential name (a common `prefix.` before the child index removed)."""
    names = list(names)
    matches = [_PREFIXED.fullmatch(name) for name in names]
    if names and all(matches) and len({m.group(1) for m in matches}) == 1:
        return {name: m.group(2) for name, m in zip(names, matches)}
    return {name: name for name in names}


@dataclass(frozen=True)
class Recognised:
    model: str
    architecture: dict
    dropout: float
    how: str  # "metadata" or "names and shapes"
    names: dict  # stored tensor name -> Sequential name


def recognise(shapes: dict[str, tuple], metadata: dict[str, str], model_hint: str | None = None) -> Recognised:
    """Which of our architectures these tensors are: the one the metadata records (checked against the tensors),
    else the preset whose nn.Sequential has exactly these names and shapes. ImportMismatch when none fits, or
    when two presets fit and `model_hint` does not say which (mlp-sigmoid and mlp-relu differ only in the
    activation, which holds no weights)."""
    names = strip_prefix(shapes)
    renamed = {names[name]: tuple(shape) for name, shape in shapes.items()}
    if metadata.get("format") == METADATA_FORMAT and "architecture" in metadata:
        return _from_metadata(renamed, metadata, model_hint, names)
    fits, near_misses = [], []
    for model, rate, architecture in _candidates():
        try:
            check_names_and_shapes(architecture, renamed)
        except ImportMismatch as exc:
            if set(expected_shapes(architecture)) == set(renamed):  # the right names, a wrong shape
                near_misses.append((model, exc))
            continue
        fits.append((model, rate, architecture))
    if model_hint is not None:
        fits = [fit for fit in fits if fit[0] == model_hint]
    if not fits:
        if model_hint is not None:
            raise ImportMismatch(f"the tensors are not convtui's {model_hint} model as a torch.nn.Sequential "
                                 "state_dict")
        if near_misses:
            raise ImportMismatch(f"looks like {near_misses[0][0]}, but {near_misses[0][1]}")
        known = {name for _, _, architecture in _candidates() for name in expected_shapes(architecture)}
        strangers = [name for name in shapes if names[name] not in known]
        which = f"unknown tensor name {strangers[0][:60]!r}: " if strangers else ""
        raise ImportMismatch(f"{which}the tensor names and shapes match none of convtui's models "
                             f"({', '.join(MODELS)}) as a torch.nn.Sequential state_dict")
    models = sorted({fit[0] for fit in fits}, key=MODELS.index)
    if len(models) > 1:
        raise ImportMismatch(f"the tensors fit {' and '.join(models)} alike (they differ only in an activation); "
                             "say which with --model")
    model, rate, architecture = fits[0]
    return Recognised(model, architecture, rate, "names and shapes", names)


def _from_metadata(renamed, metadata, model_hint, names) -> Recognised:
    model = metadata.get("model")
    if model not in MODELS:
        raise ImportMismatch(f"its metadata names model {str(model)[:40]!r}, not one of {', '.join(MODELS)}")
    if model_hint is not None and model_hint != model:
        raise ImportMismatch(f"its metadata says model {model}, not {model_hint}")
    try:
        architecture = check_architecture(json.loads(metadata["architecture"]))
    except RecursionError:
        raise ImportMismatch("its metadata's architecture is nested too deeply") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # JSONDecodeError is a ValueError; the others are what a hostile structure may raise in the checks
        raise ImportMismatch(f"its metadata's architecture is not valid ({str(exc).splitlines()[0][:120]})") from None
    try:
        check_names_and_shapes(architecture, renamed)
    except ImportMismatch as exc:
        raise ImportMismatch(f"{exc} for the architecture its metadata records") from None
    rates = [spec["rate"] for spec in architecture["layers"] if spec["kind"] == "Dropout"]
    return Recognised(model, _jsonable(architecture), rates[0] if rates else 0.0, "metadata", names)


def load_torch_state(path, model_hint: str | None = None, input_scaling: str | None = None):
    """Read a PyTorch-named safetensors file for one of our architectures: (Recognised, our float32 state_dict).

    The header alone decides the architecture, so a file that is not one of ours is refused before its data is
    read; every problem is one ConvtuiError line naming the file."""
    from convtui.core.storage import safetensors_format

    header = safetensors_format.read_header(path)
    where = header.path
    scaling = header.metadata.get("input")
    if input_scaling is not None and scaling is not None and scaling != input_scaling:
        raise ImportMismatch(f"{where}: its inputs are scaled as {scaling[:80]!r}; convtui feeds {input_scaling!r}, "
                             "so its predictions would be wrong")
    try:
        recognised = recognise(header.shapes(), header.metadata, model_hint)
    except ImportMismatch as exc:
        raise ImportMismatch(f"{where}: {exc}") from None
    for name, entry in header.tensors.items():
        if entry.dtype not in ("F32", "F64", "F16", "BF16"):
            raise ImportMismatch(f"{where}: tensor {name!r} holds {entry.dtype}, not floating-point weights")
    raw = safetensors_format.read_tensors(header)
    tensors = {}
    for name, value in raw.items():
        value = safetensors_format.to_float32(value, header.tensors[name].dtype)
        if not np.isfinite(value).all():
            raise ImportMismatch(f"{where}: tensor {name!r} holds values that are not finite (NaN or infinity)")
        tensors[recognised.names[name]] = value
    return recognised, from_torch_state(recognised.architecture, tensors)
