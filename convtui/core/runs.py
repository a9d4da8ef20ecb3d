"""A run folder (`convtui train --out DIR`): config.json, metrics.csv and checkpoint.npz, all written atomically.

`convtui.core.run_reader` reads them back, for the app's run viewer and the tests.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
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
