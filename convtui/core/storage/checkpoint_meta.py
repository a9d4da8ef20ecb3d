"""The checkpoint's schema: what `meta` and the arrays must hold, checked before any of it is used.

Each check raises ValueError with a short reason; `checkpoint.load_checkpoint` adds the file's name. A file that
passes here can be evaluated and resumed alike: nothing is checked later, lazily, on one path only.
"""

from __future__ import annotations

import json
import math

import numpy as np

from convtui.core.errors import ConvtuiError
from convtui.core.nn.architectures import preset_architecture
from convtui.core.nn.specs import check_architecture, walk_shapes
from convtui.core.storage.datasets import MAX_EXAMPLES
from convtui.core.training.config import MODELS, OPTIMIZERS, TrainConfig

FORMAT, VERSION = "convtui-checkpoint", 2
READABLE_VERSIONS = (1, 2)
MAX_META_BYTES = 8 << 20
MAX_EPOCH = 1_000_000
MAX_HISTORY = 100_000
MAX_ACTIVATION = 1 << 24  # values one layer may output per image (64 MB of float32); the cnn's largest is 25,088
# What the project's own validators raise on values of the wrong type or size (a list where a name belongs, an
# integer too large for a float): all of them mean "damaged", none may escape as a traceback.
_CHECK_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)


def _decode(raw) -> dict:
    if raw is None:
        raise ValueError("not a convtui checkpoint (no 'meta' entry)")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError("damaged checkpoint metadata (not a UTF-8 byte string)")
    if raw.size > MAX_META_BYTES:
        raise ValueError(f"damaged checkpoint metadata ({raw.size:,} bytes, more than the {MAX_META_BYTES >> 20} MB "
                         "allowed)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"damaged checkpoint metadata ({str(exc)[:80]})") from None
    except RecursionError:
        raise ValueError("damaged checkpoint metadata (nested too deeply)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("not a convtui checkpoint")
    return meta


def _whole(meta: dict, key: str, high: int) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ValueError(f"damaged checkpoint metadata ({key} must be a whole number from 0 to {high})")
    return value


# A history row is one completed epoch's metrics.csv row: each column's range. `None` marks a value that may be
# missing (no validation set; rows written before `steps` and `elapsed_s` were kept).
_UNIT, _AT_LEAST_0 = (0.0, 1.0), (0.0, math.inf)
HISTORY_COLUMNS = {"epoch": None, "loss": _AT_LEAST_0, "accuracy": _UNIT, "val_loss": _AT_LEAST_0,
                   "val_accuracy": _UNIT, "lr": _AT_LEAST_0, "steps": _AT_LEAST_0, "elapsed_s": _AT_LEAST_0}
HISTORY_REQUIRED = ("epoch", "loss", "accuracy", "lr")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_history(history, epochs: int) -> None:
    """Rows for epochs 1, 2, ... up to the saved epoch, each column a finite number in its range: they are copied
    into a resumed run's metrics.csv and drawn by the Runs screen as they are."""
    if not isinstance(history, list) or len(history) > min(MAX_HISTORY, epochs):
        raise ValueError("damaged checkpoint metadata (history must be a list of at most one row per epoch)")
    for number, row in enumerate(history, start=1):
        if not isinstance(row, dict) or not set(HISTORY_REQUIRED) <= row.keys() <= HISTORY_COLUMNS.keys():
            raise ValueError(f"damaged checkpoint metadata (history row {number} does not hold "
                             f"{', '.join(HISTORY_REQUIRED)} and only metrics.csv's columns)")
        if row["epoch"] != number or not _number(row["epoch"]):
            raise ValueError(f"damaged checkpoint metadata (history row {number} is for epoch {row['epoch']!r})")
        for column, value in row.items():
            if column == "epoch" or (value is None and column not in HISTORY_REQUIRED):
                continue
            low, high = HISTORY_COLUMNS[column]
            if not _number(value) or not math.isfinite(value) or not low <= value <= high:
                raise ValueError(f"damaged checkpoint metadata (history row {number}: {column} {value!r} is not "
                                 f"a finite number from {low:g} to {high:g})")


def _check_generator_state(state, what: str) -> None:
    try:
        np.random.PCG64().state = state  # numpy's own check of every field, on a throw-away generator
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
        raise ValueError(f"damaged checkpoint metadata ({what} random state is not a PCG64 state)") from None


def _check_rng(rng) -> None:
    if not isinstance(rng, dict):
        raise ValueError("damaged checkpoint metadata (rng must be an object)")
    if "shuffle" in rng:
        _check_generator_state(rng["shuffle"], "the shuffle")
    dropout = rng.get("dropout", [])
    if not isinstance(dropout, list) or len(dropout) > 64:
        raise ValueError("damaged checkpoint metadata (dropout random states must be a list)")
    for state in dropout:
        _check_generator_state(state, "a dropout")


def check_meta(raw) -> tuple[dict, TrainConfig, dict]:
    """Decode and check `meta`; return it with its TrainConfig and its (checked) architecture."""
    meta = _decode(raw)
    version = meta.get("version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"checkpoint format version {version!r} is not supported "
                         f"(this convtui reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    for key in ("model", "config", "epoch"):
        if key not in meta:
            raise ValueError(f"damaged checkpoint metadata (no {key!r})")
    if meta["model"] not in MODELS:
        raise ValueError(f"unknown model {str(meta['model'])[:40]!r}")
    _whole(meta, "epoch", MAX_EPOCH)
    if meta.get("optimizer", "adam") not in OPTIMIZERS:
        raise ValueError("damaged checkpoint metadata (unknown optimizer)")
    if not isinstance(meta["config"], dict):
        raise ValueError("damaged checkpoint metadata (config must be an object)")
    try:
        config = TrainConfig.from_dict(meta["config"])
    except (ConvtuiError, *_CHECK_ERRORS) as exc:
        raise ValueError(f"its saved config is not valid ({_first_line(exc)})") from None
    if config.model != meta["model"]:
        raise ValueError("damaged checkpoint metadata (config and model disagree)")
    _check_history(meta.get("history", []), meta["epoch"])
    if "steps_into_epoch" in meta:  # steps of an epoch cut short; an epoch has at most MAX_EXAMPLES steps
        _whole(meta, "steps_into_epoch", MAX_EXAMPLES)
    _check_rng(meta.get("rng", {}))
    architecture = meta.get("architecture") if version >= 2 else preset_architecture(config.model, config.dropout)
    try:
        architecture = check_architecture(architecture)
    except _CHECK_ERRORS as exc:
        raise ValueError(f"its architecture is not valid ({_first_line(exc)})") from None
    _check_activations(architecture)
    return meta, config, architecture


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _check_activations(architecture: dict) -> None:
    """Each layer's output for one image must stay within MAX_ACTIVATION values: the weights are bounded by
    `specs`, but a huge input shape pooled down to a few features would pass there and then need gigabytes for
    a single image in `eval`."""
    shape, where = architecture["input_shape"], "its input is"
    for spec in [None, *architecture["layers"]]:
        if spec is not None:
            shape, where = walk_shapes(shape, [spec]), f"layer {spec['name']!r} gives"
        if math.prod(shape) > MAX_ACTIVATION:
            raise ValueError(f"its architecture is not valid ({where} {tuple(shape)} per image, "
                             f"more than {MAX_ACTIVATION:,} values)")


def weight_count(architecture: dict) -> int:
    """How many numbers the weights of a checked architecture hold (w and b of every Conv2D and Dense)."""
    total = 0
    for spec in architecture["layers"]:
        if spec["kind"] == "Conv2D":
            f_h, f_w = (spec["kernel_size"],) * 2 if isinstance(spec["kernel_size"], int) else spec["kernel_size"]
            total += spec["out_channels"] * (spec["in_channels"] * f_h * f_w + 1)
        elif spec["kind"] == "Dense":
            total += spec["out_features"] * (spec["in_features"] + 1)
    return total


def member_budget(raw) -> int | None:
    """For `safe_npz.read_npz(first="meta")`: the most bytes the other members of a checkpoint whose `meta` is
    `raw` may hold: the weights plus two optimiser slots per weight (Adam's m and v), at 8 bytes per number so
    float64 files still load, and a little for `opt/t`. None when `meta` itself is bad: read nothing more, and
    `check_meta` says what is wrong."""
    try:
        _, _, architecture = check_meta(raw)
    except ValueError:
        return None
    return 3 * 8 * weight_count(architecture) + (64 << 10)


def _finite_floats(name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind != "f":
        raise ValueError(f"{name} holds {array.dtype}, not floating-point numbers")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds values that are not finite (NaN or infinity)")
    return array


def check_arrays(arrays: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
    """Split the members into params, buffers and optimiser state, checking names, dtypes and finiteness."""
    params, buffers, optimizer_state = {}, {}, {}
    for key, array in arrays.items():
        room, _, name = key.partition("/")
        if not name:
            raise ValueError(f"unexpected member {key[:60]!r}")
        if room == "param":
            params[name] = _finite_floats(key, array)
        elif room == "buffer":
            buffers[name] = _finite_floats(key, array)
        elif room == "opt" and name == "t":
            if array.shape != () or array.dtype.kind not in "iu" or not 0 <= int(array) < 2 ** 53:
                raise ValueError("opt/t must be one whole number, the optimiser's step count")
            optimizer_state[name] = array
        elif room == "opt":
            optimizer_state[name] = _finite_floats(key, array)
        else:
            raise ValueError(f"unexpected member {key[:60]!r}")
    if not params:
        raise ValueError("it holds no weights")
    return params, buffers, optimizer_state
