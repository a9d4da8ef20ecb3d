"""A run folder (`convtui train --out DIR`): config.json, metrics.csv and checkpoint.npz, all written atomically.

The app's run viewer reads the same files back with `read_run`.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from convtui.core import atomic
from convtui.core.config import TrainConfig

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


def read_metrics(path: str | Path) -> list[dict]:
    """metrics.csv back as dicts of numbers (None for an empty cell)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = []
        for row in csv.DictReader(handle):
            parsed = {}
            for key, value in row.items():
                if value in ("", None):
                    parsed[key] = None
                elif key in ("epoch", "steps"):
                    parsed[key] = int(value)
                else:
                    parsed[key] = float(value)
            rows.append(parsed)
        return rows


@dataclass(frozen=True)
class Run:
    folder: Path
    config: TrainConfig
    metrics: list[dict]
    checkpoint: Path | None


def read_run(folder: str | Path) -> Run:
    """Read a run folder; raises FileNotFoundError / ValueError with the file's name on a bad folder."""
    folder = Path(folder)
    manifest = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    metrics_path, checkpoint = folder / METRICS_FILE, folder / CHECKPOINT_FILE
    return Run(folder, TrainConfig.from_dict(manifest["config"]),
               read_metrics(metrics_path) if metrics_path.exists() else [],
               checkpoint if checkpoint.exists() else None)
