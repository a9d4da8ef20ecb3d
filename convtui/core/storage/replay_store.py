"""replay.npz in a run folder: the run's replay snapshots (`core/training/replay.py`), written and read back.

Members: `meta` (UTF-8 JSON as uint8: format, version, the sample's source and size, the parameter names and
the counts every other member's shape follows from), `digit_images` (D, H, W) uint8 and `digit_labels` (D,)
uint8 (stored once), then one row per snapshot: `epoch`, `step` (int32), `trained_steps` (int64),
`confusion` (S, classes, classes) int32, `predicted` (S, D) uint8, `confidence` (S, D) float16, `bands`
(S, params, 5) float32 and, for a model with a convolution, `filters` (S, K, FH, FW) float16.

float16 where it loses nothing a learner can see (a filter heatmap of ~10 shades, a confidence shown as a
truncated whole percent); the percentiles stay float32, as a bias's spread starts near 1e-4. Measured: a 10-epoch
run writes 15 snapshots, 68,880 bytes for the cnn and 42,760 to 45,256 for the dense presets.

The whole file is rewritten atomically at each snapshot, by the trainer under the run's lock, so a kill at any
moment leaves the previous file or the new one. Reading trusts nothing: the size is capped before reading,
the archive is read by `safe_npz` within a budget the meta's counts justify, and every member's dtype, shape
and range is checked against the meta. Every problem is one `ReplayError` line naming the file.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from convtui.core.errors import ConvtuiError
from convtui.core.storage import atomic
from convtui.core.storage.regular_files import NotRegularFile, TooLarge, read_bounded
from convtui.core.storage.safe_npz import read_npz
from convtui.core.training.replay import FORMAT, VERSION, Replay, ReplaySnapshot
from convtui.core.training.snapshots import BAND_PERCENTILES

# A 10-epoch cnn record is 69 KB and each further epoch adds 2.3 KB, so 10,000 epochs (TrainConfig's maximum)
# stay near 23 MB. Anything larger is not ours and is refused before a byte is read.
MAX_REPLAY_BYTES = 64 * 1024 * 1024
MAX_SNAPSHOTS, MAX_CLASSES, MAX_DIGITS, MAX_PARAMS = 20_000, 256, 1000, 1000
MAX_IMAGE_SIDE, MAX_FILTERS, MAX_FILTER_SIDE = 512, 4096, 64
MAX_META_BYTES = 1 << 20


class ReplayError(ConvtuiError):
    """A replay file that cannot be used; the run itself still opens, without replay. `problem` is what is wrong
    with the file, in words that fit after its path (a resumed run says it starts a new record instead)."""

    def __init__(self, message: str, problem: str):
        super().__init__(message)
        self.problem = problem


def write_replay(path: str | Path, replay: Replay) -> Path:
    """Write `replay` to `path` (a run folder's replay.npz), atomically; call it under the run's lock, as the
    trainer does."""
    path = Path(path)
    shots = replay.snapshots
    filters = shots[0].filters if shots else None
    meta = {"format": FORMAT, "version": VERSION, "source": replay.source, "sample_size": replay.sample_size,
            "params": replay.param_names, "percentiles": list(BAND_PERCENTILES), "snapshots": len(shots),
            "classes": int(shots[0].confusion.shape[0]) if shots else 0,
            "filters": list(map(int, filters.shape)) if filters is not None else None}
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
              "digit_images": replay.digit_images.astype(np.uint8),
              "digit_labels": replay.digit_labels.astype(np.uint8),
              "epoch": np.array([s.epoch for s in shots], dtype=np.int32),
              "step": np.array([s.step for s in shots], dtype=np.int32),
              "trained_steps": np.array([s.trained_steps for s in shots], dtype=np.int64)}
    columns = {"confusion": np.int32, "predicted": np.uint8, "confidence": np.float16, "bands": np.float32}
    for name, dtype in columns.items():
        arrays[name] = np.array([getattr(s, name) for s in shots], dtype=dtype).reshape(
            (len(shots), *_row_shape(name, meta, replay)))
    if filters is not None:
        arrays["filters"] = np.array([s.filters for s in shots], dtype=np.float16)
    atomic.write_with(path, lambda handle: np.savez(handle, **arrays))
    return path


def _row_shape(name: str, meta: dict, replay: Replay) -> tuple[int, ...]:
    """One snapshot's shape of member `name`, from the meta's counts."""
    digits = len(replay.digit_labels)
    return {"confusion": (meta["classes"], meta["classes"]), "predicted": (digits,), "confidence": (digits,),
            "bands": (len(meta["params"]), len(BAND_PERCENTILES))}[name]


def _whole(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_meta(array) -> dict:
    """The meta member as a dict, or ValueError saying what is wrong with it."""
    if array is None:
        raise ValueError("no meta member: not a convtui replay file")
    if array.dtype != np.uint8 or array.ndim != 1 or array.size > MAX_META_BYTES:
        raise ValueError("its meta member is not JSON text")
    try:
        meta = json.loads(array.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("its meta member is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("not a convtui replay file (no replay format in its meta)")
    if meta.get("version") != VERSION:
        raise ValueError(f"replay format version {str(meta.get('version'))[:20]} is not one this convtui reads "
                         f"(it reads {VERSION})")
    if meta.get("source") not in ("test", "train"):
        raise ValueError("its meta names no digit source (test or train)")
    params = meta.get("params")
    if not isinstance(params, list) or not 1 <= len(params) <= MAX_PARAMS or not all(
            isinstance(name, str) and 0 < len(name) <= 80 and name.isprintable() for name in params):
        raise ValueError("its meta's parameter names are not a list of names")
    if meta.get("percentiles") != list(BAND_PERCENTILES):
        raise ValueError(f"its percentiles are not {', '.join(f'{p:g}' for p in BAND_PERCENTILES)}")
    for key, low, high in (("snapshots", 0, MAX_SNAPSHOTS), ("classes", 0, MAX_CLASSES),
                           ("sample_size", 1, 10 ** 9)):
        if not _whole(meta.get(key), low, high):
            raise ValueError(f"its meta's {key} is not a whole number from {low} to {high:,}")
    filters = meta.get("filters")
    if filters is not None and not (isinstance(filters, list) and len(filters) == 3 and _whole(
            filters[0], 1, MAX_FILTERS) and all(_whole(side, 1, MAX_FILTER_SIDE) for side in filters[1:])):
        raise ValueError("its meta's filter shape is not (count, height, width)")
    return meta


def _budget(meta_array) -> int | None:
    """Bytes the members after `meta` may hold together, from its counts (None: the meta check will say why)."""
    try:
        meta = check_meta(meta_array)
    except ValueError:
        return None
    shots, classes, params = meta["snapshots"], meta["classes"], len(meta["params"])
    filters = math.prod(meta["filters"]) * 2 if meta["filters"] else 0
    per_digit = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE + 1
    per_snapshot = 4 + 4 + 8 + classes * classes * 4 + params * len(BAND_PERCENTILES) * 4 + filters
    return MAX_DIGITS * per_digit + shots * (per_snapshot + MAX_DIGITS * 3)


def _expect(arrays: dict, name: str, dtype, shape: tuple[int, ...]) -> np.ndarray:
    array = arrays.get(name)
    if array is None:
        raise ValueError(f"it has no {name} member")
    if array.dtype != np.dtype(dtype):
        raise ValueError(f"its {name} member holds {array.dtype}, not {np.dtype(dtype)}")
    if array.shape != shape:
        raise ValueError(f"its {name} member has shape {array.shape}, not {shape}")
    return array


def check_arrays(meta: dict, arrays: dict) -> Replay:
    """Check every member against the meta's counts and build the Replay, or ValueError saying what is wrong."""
    expected = {"meta", "digit_images", "digit_labels", "epoch", "step", "trained_steps", "confusion", "predicted",
                "confidence", "bands"} | ({"filters"} if meta["filters"] else set())
    unknown = sorted(set(arrays) - expected)
    if unknown:
        raise ValueError(f"it holds a member this format does not have ({unknown[0][:40]!r})")
    images = arrays.get("digit_images")
    if images is None or images.ndim != 3 or not 1 <= len(images) <= MAX_DIGITS or not all(
            1 <= side <= MAX_IMAGE_SIDE for side in images.shape[1:]):
        raise ValueError("its digit_images member is not (digits, height, width) images")
    digits, shots, classes = len(images), meta["snapshots"], meta["classes"]
    images = _expect(arrays, "digit_images", np.uint8, images.shape)
    labels = _expect(arrays, "digit_labels", np.uint8, (digits,))
    epoch = _expect(arrays, "epoch", np.int32, (shots,))
    step = _expect(arrays, "step", np.int32, (shots,))
    trained = _expect(arrays, "trained_steps", np.int64, (shots,))
    confusion = _expect(arrays, "confusion", np.int32, (shots, classes, classes))
    predicted = _expect(arrays, "predicted", np.uint8, (shots, digits))
    confidence = _expect(arrays, "confidence", np.float16, (shots, digits))
    bands = _expect(arrays, "bands", np.float32, (shots, len(meta["params"]), len(BAND_PERCENTILES)))
    filters = _expect(arrays, "filters", np.float16, (shots, *meta["filters"])) if meta["filters"] else None
    if shots and (labels.max(initial=0) >= classes or predicted.max(initial=0) >= classes):
        raise ValueError(f"a digit's label or prediction is not one of its {classes} classes")
    if (epoch < 0).any() or (step < 0).any() or (trained < 0).any():
        raise ValueError("a snapshot's epoch or step is negative")
    if (confusion < 0).any() or (confusion.sum(axis=(1, 2), dtype=np.int64) != meta["sample_size"]).any():
        raise ValueError(f"a confusion matrix does not count the {meta['sample_size']:,} digits of the sample")
    if not (np.isfinite(confidence).all() and ((confidence >= 0) & (confidence <= 1)).all()):
        raise ValueError("a confidence is not a probability from 0 to 1")
    if not np.isfinite(bands).all() or (filters is not None and not np.isfinite(filters).all()):
        raise ValueError("a weight percentile or filter value is not a finite number")
    snapshots = [ReplaySnapshot(int(epoch[k]), int(step[k]), int(trained[k]), confusion[k], predicted[k],
                                confidence[k], bands[k], filters[k] if filters is not None else None)
                 for k in range(shots)]
    return Replay(meta["source"], meta["sample_size"], images, labels, list(meta["params"]), snapshots)


def read_replay(path: str | Path) -> Replay:
    """Read and check a replay file; any problem becomes one ReplayError line naming the file."""
    path = Path(path)
    try:
        data = read_bounded(path, MAX_REPLAY_BYTES)
    except NotRegularFile:
        raise ReplayError(f"{path} is not a regular file: no replay for this run", "is not a regular file") from None
    except TooLarge as exc:
        size = "" if exc.size is None else f" {exc.size:,} bytes,"
        problem = f"is{size} over the {MAX_REPLAY_BYTES >> 20} MB a replay file may be"
        raise ReplayError(f"{path} {problem}", problem) from None
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}", f"cannot be read: {exc.strerror or exc}") \
            from None
    try:
        arrays = read_npz(io.BytesIO(data), first="meta", budget=_budget)
        meta = check_meta(arrays.get("meta"))
        return check_arrays(meta, arrays)
    except zipfile.BadZipFile:
        problem = "damaged replay file (not an .npz archive)"
        raise ReplayError(f"{path}: {problem}; the run opens without replay", problem) from None
    except Exception as exc:  # ValueError from the checks; zlib, struct, EOFError...: whatever damage raises
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        problem = f"damaged replay file ({reason})"
        raise ReplayError(f"{path}: {problem}; the run opens without replay", problem) from None
