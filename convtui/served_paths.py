"""Which files a session of `convtui serve` may open: only those under the server's run folder.

A served session is a browser tab, not the person who started the server, so it must not read the server's
other files through the Runs screen's path input ("/etc/...", "~/.ssh/...", "../../", or a symlink inside
runs/ pointing out). The serve command sets `CONVTUI_SERVED_RUNS=<absolute runs folder>` in each session's
environment; every path a session reads a run from is then resolved (symlinks followed) and refused unless it
lies inside that folder. Outside `convtui serve` the variable is unset and nothing is restricted.

What a served session can read or write, all under the server's ./runs (see `convtui serve --help`):
- the dashboard writes runs/<time>-<model>/ (config.json, metrics.csv, checkpoint.npz);
- the Runs screen lists runs/ and opens run folders and checkpoints inside it (this module's check);
- the Runs screen's export writes runs/<run>/export/ (model.py, model.safetensors, model.onnx);
- the X/O lessons save and read the learner's images in runs/xo (CONVTUI_XO_DIR, set by the serve command);
- read-only: the images and MNIST files shipped inside the package.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TypeVar

SERVED_RUNS_VARIABLE = "CONVTUI_SERVED_RUNS"
RUN_FILES = ("checkpoint.npz", "metrics.csv", "config.json", "replay.npz")  # what reading a run opens

T = TypeVar("T")


def served_runs_root() -> Path | None:
    """The run folder a served session is confined to, or None outside `convtui serve`."""
    text = os.environ.get(SERVED_RUNS_VARIABLE)
    return Path(text).resolve() if text else None


def _inside(path: Path, root: Path) -> bool:
    try:
        resolved = path.resolve()  # follows every symlink, `..` included: the real file is what counts
    except (OSError, RuntimeError):  # a symlink loop: nothing to open anyway
        return False
    return resolved == root or root in resolved.parents


def outside_served_runs(path: str | Path) -> str | None:
    """Why a served session may not open `path` (one line), or None when it may (or when not served).

    A run is read from the folder and the files in it, each of which could be a symlink: all must resolve
    inside the served run folder."""
    root = served_runs_root()
    if root is None:
        return None
    text = str(path).strip()
    if not text or "\0" in text:
        return None  # the reader words these itself ("give a run folder ...")
    path = Path(text).expanduser()
    folder = path.parent if path.suffix == ".npz" else path
    refusal = f"{text}: this served session can only open runs under {root}/"
    # The path itself is judged whether or not it exists, so a session cannot probe for files elsewhere.
    if not _inside(path, root):
        return refusal
    for candidate in (folder, *(folder / name for name in RUN_FILES), *_entries(folder, root)):
        if (candidate.exists() or candidate.is_symlink()) and not _inside(candidate, root):
            return refusal
    return None


def _entries(folder: Path, root: Path, limit: int = 1000) -> list[Path]:
    """The files a run folder holds beyond RUN_FILES (replay.npz, export/, whatever comes next): any of them
    may be read once the run is open. The served root itself is a listing, not a run: its entries are not."""
    if not _inside(folder, root) or folder.resolve() == root:
        return []
    try:
        with os.scandir(folder) as entries:
            return [folder / entry.name for _, entry in zip(range(limit), entries, strict=False)]
    except OSError:
        return []


def confine_to_served_runs(read: Callable[..., T], error: Callable[[str], Exception] | None = None) -> Callable[..., T]:
    """`read(path, ...)` that first refuses paths outside the served run folder, raising `error(message)`
    (the reader's own error class, a RunError by default, so callers handle it as any unreadable run)."""

    @wraps(read)
    def read_inside(path, *args, **kwargs):
        refusal = outside_served_runs(path)
        if refusal is not None:
            if error is None:
                from convtui.core.storage.run_folder import RunError

                raise RunError(refusal)
            raise error(refusal)
        return read(path, *args, **kwargs)

    return read_inside
