"""Where the shipped assets live, for a source checkout, an editable install and a wheel alike."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def assets_dir() -> Path:
    """The folder holding `mnist/` (IDX .gz files) and `xo/` (X/O text grids)."""
    try:
        # An installed wheel carries the top-level `assets/` as the package `convtui.assets`.
        return Path(str(resources.files("convtui.assets")))
    except ModuleNotFoundError:
        # A source checkout on sys.path (tests with pythonpath=".") sees `assets/` beside the package.
        return Path(__file__).resolve().parent.parent / "assets"


def mnist_dir() -> Path:
    return assets_dir() / "mnist"


def xo_dir() -> Path:
    return assets_dir() / "xo"
