"""A run folder (`convtui train --out DIR`): config.json, metrics.csv and checkpoint.npz, all written atomically.

Writing (the trainer) and reading (`convtui eval`, the app's Runs screen) live here together. A path may also
name a checkpoint file directly; its folder's metrics and config are then used if present. Every reading
problem becomes a `RunError` with one clear sentence, never a traceback in the app.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from convtui.core.errors import ConvtuiError
from convtui.core.storage import atomic
from convtui.core.storage.regular_files import NotRegularFile, TooLarge, read_bounded
from convtui.core.training.config import TrainConfig
from convtui.core.training.text import plural

CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE = "config.json", "metrics.csv", "checkpoint.npz"
REPLAY_FILE = "replay.npz"  # the run's replay snapshots (storage/replay_store.py); runs before issue 13 lack it
# One row per epoch. `epoch` counts from 1; accuracies are fractions 0..1; `steps` < steps_per_epoch marks an
# epoch cut short by a stop (its validation columns are then empty).
MNIST_TRAIN_IMAGES = 60_000  # the bundled training set, for an old run whose only metrics row was cut short
METRICS_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "steps", "elapsed_s")


def package_versions() -> dict[str, str]:
    import numba
    import numpy

    from convtui import __version__

    return {"convtui": __version__, "numpy": numpy.__version__, "numba": numba.__version__,
            "python": platform.python_version()}


def default_run_dir(model: str, root: str | Path = "runs") -> Path:
    """runs/<YYYYmmdd-HHMMSS>-<model>, with -2, -3, ... if two runs start in the same second."""
    base = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{model}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def write_config(folder: Path, config: TrainConfig, **extra) -> Path:
    manifest = {"config": config.to_dict(), "seed": config.seed, "versions": package_versions(),
                "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
    path = Path(folder) / CONFIG_FILE
    atomic.write_text(path, json.dumps(manifest, indent=2) + "\n")
    return path


def write_metrics(folder: Path, rows: list[dict]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRICS_COLUMNS})
    path = Path(folder) / METRICS_FILE
    atomic.write_text(path, buffer.getvalue())
    return path

# The columns the train command promises (issue 2); more columns are kept, fewer is an error.
REQUIRED_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr")
# Run folders are passed between classmates and copied off servers: read them as untrusted. A real metrics.csv
# is ~60 bytes per epoch (4 MB is 60,000 epochs) and a config.json a few KB; larger files are refused before
# they are read, so a wrong or hostile file costs no memory.
MAX_METRICS_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
# Fractions 0..1 in metrics.csv (an empty cell is "not measured"): outside that they would be drawn as nonsense.
FRACTION_COLUMNS = ("accuracy", "val_accuracy")


class RunError(ConvtuiError):
    """A run folder or checkpoint that cannot be read; the message is meant for the user as is."""


@dataclass
class Run:
    """One training run: its curves per epoch, its config and where its checkpoint is."""

    path: Path
    name: str
    config: dict = field(default_factory=dict)
    metrics: dict[str, list[float]] = field(default_factory=dict)  # column -> one value per epoch
    checkpoint: Path | None = None
    replay_file: Path | None = None  # replay.npz, when the run recorded snapshots (runs since issue 13 do)

    def read_replay(self):
        """The run's replay snapshots (`training.replay.Replay`), or None for a run that recorded none. A damaged
        file raises ReplayError (one line); the rest of the run is unaffected."""
        from convtui.core.storage.replay_store import read_replay  # NumPy and the kernels: only when replaying

        return read_replay(self.replay_file) if self.replay_file is not None else None

    @property
    def epochs(self) -> list[float]:
        return self.metrics.get("epoch", [])

    @property
    def model_name(self) -> str:
        model = self.config.get("model")
        return model if isinstance(model, str) and 0 < len(model) <= 40 and model.isprintable() else "?"

    def final(self, column: str) -> float | None:
        """The last finite value of a column, or None (e.g. no validation was run)."""
        values = [v for v in self.metrics.get(column, []) if math.isfinite(v)]
        return values[-1] if values else None

    @property
    def steps_per_epoch(self) -> int | None:
        """Steps in one whole epoch of this run, or None when nothing tells. config.json says it (runs written
        since it was recorded); else the other metrics rows do, since only the last row can be cut short; else a
        run of one cut-short row on the bundled MNIST gives ceil(images / batch size)."""
        recorded = self.config.get("steps_per_epoch")
        if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded > 0:
            return recorded
        steps = [v for v in self.metrics.get("steps", []) if math.isfinite(v) and v > 0]
        if len(steps) >= 2:
            return int(max(steps[:-1]))
        batch, data, limit = self.config.get("batch_size"), self.config.get("data"), self.config.get("limit")
        if not isinstance(batch, int) or batch < 1 or data is not None:
            return None
        images = min(limit, MNIST_TRAIN_IMAGES) if isinstance(limit, int) and limit > 0 else MNIST_TRAIN_IMAGES
        return math.ceil(images / batch)

    def epoch_positions(self) -> list[float]:
        """Where each metrics row sits on the epoch axis: a whole epoch at its number, an epoch cut short after
        297 of 600 steps at 1.495 (epoch 2's row), never at 2.00 as if it had finished."""
        epochs, steps, whole = self.epochs, self.metrics.get("steps", []), self.steps_per_epoch
        positions = list(epochs)
        if epochs and whole and len(steps) == len(epochs) and math.isfinite(steps[-1]) and 0 < steps[-1] < whole:
            positions[-1] = epochs[-1] - 1 + steps[-1] / whole
        return positions

    def trained(self) -> str:
        """How much the run trained, for a person: "2 epochs", or "1 epoch + 297 steps" when a stop cut the last
        one short (the count `convtui eval` reads from the checkpoint)."""
        positions, epochs = self.epoch_positions(), self.epochs
        if not epochs:
            return "0 epochs"
        if positions[-1] == epochs[-1]:
            return plural(len(epochs), "epoch")
        done, steps = len(epochs) - 1, int(self.metrics["steps"][-1])
        if done == 0:
            return f"{plural(steps, 'step')} of epoch 1"
        return f"{plural(done, 'epoch')} + {plural(steps, 'step')}"

    def summary(self) -> str:
        """One line: name, model, how much it trained and the final test accuracy."""
        parts = [self.name, self.model_name, self.trained()]
        val = self.final("val_accuracy")
        if val is not None:
            parts.append(f"test {val * 100:.2f}%")
        if self.checkpoint is None:
            parts.append("no checkpoint")
        return " | ".join(parts)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _file_kind(path: Path) -> str | None:
    """"file", "folder", "other" (FIFO, device, ...) or None when nothing is there; RunError when the path
    cannot be looked at (no permission on a folder on the way, a symlink loop)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            raise RunError(f"{path} is a symlink to nothing") from None
        return None
    except OSError as exc:
        raise RunError(f"cannot read {path}: {_reason(exc)}") from None
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def _read_text(path: Path, limit: int) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes, or RunError naming the file and the problem.

    The kind and size are checked before reading, and the open is non-blocking, so a FIFO or /dev/zero under
    the expected name neither hangs nor fills memory."""
    try:
        data = read_bounded(path, limit)
    except NotRegularFile:
        raise RunError(f"{path} is not a regular file") from None
    except TooLarge as exc:
        size = "" if exc.size is None else f" {exc.size:,} bytes,"
        raise RunError(f"{path} is{size} over the {limit // 1024:,} KB a run file may be") from None
    except OSError as exc:
        raise RunError(f"cannot read {path}: {_reason(exc)}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunError(f"{path} is not UTF-8 text (byte {exc.start}): damaged or not written by convtui") from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise RunError(f"{path} line {line} holds a NUL byte: the file is damaged")
    return text


def _number(text: str) -> float:
    # An empty cell means "not measured" (e.g. no validation set): NaN keeps the column aligned by epoch.
    return float(text) if text.strip() else math.nan


def read_metrics(path: Path) -> dict[str, list[float]]:
    """metrics.csv -> {column: [value per row]}; raises RunError on anything that is not a convtui metrics file."""
    reader = csv.reader(io.StringIO(_read_text(path, MAX_METRICS_BYTES), newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:  # e.g. "field larger than field limit (131072)"
        raise RunError(f"{path} line {reader.line_num} is not valid CSV: {exc}") from None
    if not rows:
        raise RunError(f"{path} is empty")
    header = [name.strip() for name in rows[0]]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise RunError(f"{path} lacks the column(s) {', '.join(missing)}")
    if len(set(header)) != len(header):
        raise RunError(f"{path} names a column twice")
    columns: dict[str, list[float]] = {name: [] for name in header}
    for line_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise RunError(f"{path} line {line_number} has {len(row)} values, expected {len(header)}")
        try:
            values = {name: _number(cell) for name, cell in zip(header, row)}
        except ValueError:
            raise RunError(f"{path} line {line_number} holds a value that is not a number") from None
        # A diverged loss may be inf or nan (the plots leave those points out); the epoch is the x axis and
        # an accuracy is a fraction, so those must be real numbers.
        if not math.isfinite(values["epoch"]):
            raise RunError(f"{path} line {line_number}: the epoch is {values['epoch']}, not a number of epochs")
        for name in FRACTION_COLUMNS:
            if not (math.isnan(values[name]) or 0.0 <= values[name] <= 1.0):
                raise RunError(f"{path} line {line_number}: {name} is {values[name]}, not a fraction 0..1")
        for name, value in values.items():
            columns[name].append(value)
    return columns


def read_config(path: Path) -> dict:
    """config.json -> a flat dict of settings; raises RunError on anything that is not a JSON object."""
    text = _read_text(path, MAX_CONFIG_BYTES)
    try:
        config = json.loads(text)
    except RecursionError:
        raise RunError(f"{path} is nested too deeply to be a convtui config") from None
    except ValueError:  # JSONDecodeError, and an integer of more than 4300 digits
        raise RunError(f"{path} is not valid JSON") from None
    if not isinstance(config, dict):
        raise RunError(f"{path} does not hold a JSON object")
    # The train command may nest the TrainConfig fields under "config"; flatten so `model` is always on top.
    nested = config.get("config")
    return {**config, **nested} if isinstance(nested, dict) else config


def read_run(path: str | Path) -> Run:
    """Open a run folder, or a checkpoint file (with its folder's metrics and config when present)."""
    text = str(path).strip()
    if not text:
        raise RunError("give a run folder or a checkpoint path")
    if "\0" in text:
        raise RunError(f"{text!r} is not a path")
    path = Path(text).expanduser()
    kind = _file_kind(path)
    if kind is None:
        raise RunError(f"{path} does not exist")
    if kind == "file":
        if path.suffix != ".npz":
            raise RunError(f"{path} is not a run folder or a .npz checkpoint")
        folder, checkpoint = path.parent, path
    elif kind == "folder":
        folder = path
        checkpoint_kind = _file_kind(folder / CHECKPOINT_FILE)
        if checkpoint_kind not in (None, "file"):
            raise RunError(f"{folder / CHECKPOINT_FILE} is not a regular file")
        checkpoint = folder / CHECKPOINT_FILE if checkpoint_kind == "file" else None
    else:
        raise RunError(f"{path} is not a run folder or a .npz checkpoint")
    metrics_path, config_path = folder / METRICS_FILE, folder / CONFIG_FILE
    has_metrics, has_config = _file_kind(metrics_path) is not None, _file_kind(config_path) is not None
    if checkpoint is None and not has_metrics:
        raise RunError(f"{folder} holds neither {METRICS_FILE} nor {CHECKPOINT_FILE}: not a run folder")
    replay_file = folder / REPLAY_FILE  # anything under that name is read (and refused) only when replayed
    return Run(
        path=folder, name=folder.name or str(folder),
        config=read_config(config_path) if has_config else {},
        metrics=read_metrics(metrics_path) if has_metrics else {},
        checkpoint=checkpoint, replay_file=replay_file if _quiet_kind(replay_file) is not None else None)


def _subfolders(folder: Path) -> list[Path]:
    """The folders in `folder` (following symlinks), or [] when it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries]
    except OSError:
        return []
    return [folder / name for name in sorted(names) if _quiet_kind(folder / name) == "folder"]


def _quiet_kind(path: Path) -> str | None:
    try:
        return _file_kind(path)
    except RunError:
        return "unreadable"


def _looks_like_run(folder: Path) -> bool:
    return any(_quiet_kind(folder / name) is not None for name in (METRICS_FILE, CHECKPOINT_FILE))


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def find_runs(root: str | Path = "runs") -> list[Path]:
    """Run folders under `root` (any depth up to two), newest first; [] when `root` is missing.

    A folder that cannot be looked into (no permission, a symlink loop) at the first level is listed too, so
    opening it says why; raises RunError when `root` itself cannot be listed."""
    root = Path(root)
    if _quiet_kind(root) != "folder":
        return []
    found = {root} if _looks_like_run(root) else set()
    try:
        with os.scandir(root) as entries:
            first_level = sorted(root / entry.name for entry in entries)
    except OSError as exc:
        raise RunError(f"cannot list {root}: {_reason(exc)}") from None
    for entry in first_level:
        kind = _quiet_kind(entry)
        if kind == "unreadable":
            found.add(entry)
        elif kind == "folder":
            if _looks_like_run(entry):
                found.add(entry)
            else:
                found.update(sub for sub in _subfolders(entry) if _looks_like_run(sub))
    return sorted(found, key=lambda p: (-_mtime(p), str(p)))
