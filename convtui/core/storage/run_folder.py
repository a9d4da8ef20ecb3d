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
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from convtui.core.errors import ConvtuiError
from convtui.core.storage import atomic
from convtui.core.training.config import TrainConfig

CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE = "config.json", "metrics.csv", "checkpoint.npz"
# One row per epoch. `epoch` counts from 1; accuracies are fractions 0..1; `steps` < steps_per_epoch marks an
# epoch cut short by a stop (its validation columns are then empty).
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

    @property
    def epochs(self) -> list[float]:
        return self.metrics.get("epoch", [])

    @property
    def model_name(self) -> str:
        return str(self.config.get("model", "?"))

    def final(self, column: str) -> float | None:
        """The last finite value of a column, or None (e.g. no validation was run)."""
        values = [v for v in self.metrics.get(column, []) if not math.isnan(v)]
        return values[-1] if values else None

    def summary(self) -> str:
        """One line: name, model, epochs and the final test accuracy."""
        parts = [self.name, self.model_name, f"{len(self.epochs)} epoch{'' if len(self.epochs) == 1 else 's'}"]
        val = self.final("val_accuracy")
        if val is not None:
            parts.append(f"test {val * 100:.2f}%")
        if self.checkpoint is None:
            parts.append("no checkpoint")
        return " | ".join(parts)


def _number(text: str) -> float:
    # An empty cell means "not measured" (e.g. no validation set): NaN keeps the column aligned by epoch.
    return float(text) if text.strip() else math.nan


def read_metrics(path: Path) -> dict[str, list[float]]:
    """metrics.csv -> {column: [value per row]}; raises RunError on a missing column or a non-number."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not rows:
        raise RunError(f"{path} is empty")
    header = [name.strip() for name in rows[0]]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise RunError(f"{path} lacks the column(s) {', '.join(missing)}")
    columns: dict[str, list[float]] = {name: [] for name in header}
    for line_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise RunError(f"{path} line {line_number} has {len(row)} values, expected {len(header)}")
        try:
            for name, cell in zip(header, row):
                columns[name].append(_number(cell))
        except ValueError:
            raise RunError(f"{path} line {line_number} holds a value that is not a number") from None
    return columns


def read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
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
    path = Path(text).expanduser()
    if not path.exists():
        raise RunError(f"{path} does not exist")
    if path.is_file():
        if path.suffix != ".npz":
            raise RunError(f"{path} is not a run folder or a .npz checkpoint")
        folder, checkpoint = path.parent, path
    else:
        folder = path
        checkpoint = folder / CHECKPOINT_FILE if (folder / CHECKPOINT_FILE).is_file() else None
    metrics_path, config_path = folder / METRICS_FILE, folder / CONFIG_FILE
    if checkpoint is None and not metrics_path.is_file():
        raise RunError(f"{folder} holds neither {METRICS_FILE} nor {CHECKPOINT_FILE}: not a run folder")
    return Run(
        path=folder, name=folder.name or str(folder),
        config=read_config(config_path) if config_path.is_file() else {},
        metrics=read_metrics(metrics_path) if metrics_path.is_file() else {},
        checkpoint=checkpoint)


def find_runs(root: str | Path = "runs") -> list[Path]:
    """Run folders under `root` (any depth up to two), newest first; [] when `root` is missing."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = {p.parent for pattern in (f"*/{METRICS_FILE}", f"*/*/{METRICS_FILE}", f"*/{CHECKPOINT_FILE}",
                                      f"*/*/{CHECKPOINT_FILE}") for p in root.glob(pattern)}
    if (root / METRICS_FILE).is_file() or (root / CHECKPOINT_FILE).is_file():
        found.add(root)
    return sorted(found, key=lambda p: (-p.stat().st_mtime, str(p)))
