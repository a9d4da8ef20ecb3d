"""The toy X/O images: 9x9 grids of -1/+1 kept as human-editable text files.

File format (assets/xo/*.txt and the learner's saved images):

    note: the lecture's X          <- optional, shown beside the image
    label: x                       <- x or o: what the image is meant to be (the vote lesson scores it)
    .........                      <- nine rows of nine cells: '#' is +1 (ink), '.' is -1 (paper);
    .#.....#.                         rows of numbers `-1 1 ...` work too; spaces are ignored

Shipped images live in `assets/xo/` (read-only once installed). The learner's edits are saved under
$CONVTUI_XO_DIR, or else $XDG_DATA_HOME/convtui/xo (default ~/.local/share/convtui/xo).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convtui.assets_path import xo_dir
from convtui.core.errors import ConvtuiError
from convtui.core.storage import atomic

SIZE = 9
LABELS = ("x", "o")
INK, PAPER = "#", "."


class ImageFormatError(ConvtuiError, ValueError):
    """A text grid that is not a 9x9 X/O image; the message says which line and why."""


@dataclass(frozen=True)
class XOImage:
    name: str
    label: str  # "x" or "o"
    pixels: np.ndarray = field(compare=False)  # (9, 9) float64 of -1.0 / +1.0
    note: str = ""
    source: str = "shipped"  # "shipped" or "yours"
    path: Path | None = field(default=None, compare=False)


def parse_image(text: str, name: str, source: str = "shipped", path: Path | None = None) -> XOImage:
    """Read the text format above; raises ImageFormatError with a clear reason."""
    meta: dict[str, str] = {}
    rows: list[list[float]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if ":" in line:
            key, _, value = line.partition(":")
            meta[key.strip().lower()] = value.strip()
            continue
        tokens = line.split()
        if all(re.fullmatch(r"[+-]?1", token) for token in tokens):
            rows.append([float(token) for token in tokens])
        elif set(line.replace(" ", "")) <= {INK, PAPER}:
            rows.append([1.0 if ch == INK else -1.0 for ch in line.replace(" ", "")])
        else:
            raise ImageFormatError(f"{name}: line {number} is neither '#'/'.' cells nor -1/1 numbers: {raw!r}")
    if len(rows) != SIZE or any(len(row) != SIZE for row in rows):
        widths = sorted({len(row) for row in rows})
        raise ImageFormatError(f"{name}: wants {SIZE} rows of {SIZE} cells, got {len(rows)} rows of {widths}")
    label = meta.get("label", "").lower()
    if label not in LABELS:
        raise ImageFormatError(f"{name}: needs a line 'label: x' or 'label: o', got {label or 'none'!r}")
    return XOImage(name, label, np.array(rows, dtype=np.float64), meta.get("note", ""), source, path)


def format_image(image: XOImage) -> str:
    """The text file for an image (the inverse of parse_image)."""
    lines = []
    if image.note:
        lines.append(f"note: {image.note}")
    lines.append(f"label: {image.label}")
    lines += ["".join(INK if v > 0 else PAPER for v in row) for row in image.pixels]
    return "\n".join(lines) + "\n"


def user_dir() -> Path:
    """Where the learner's images are saved: $CONVTUI_XO_DIR, else the XDG data dir."""
    if os.environ.get("CONVTUI_XO_DIR"):
        return Path(os.environ["CONVTUI_XO_DIR"]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "convtui" / "xo"


def _read_folder(folder: Path, source: str) -> tuple[list[XOImage], list[str]]:
    images, problems = [], []
    if not folder.is_dir():
        return images, problems
    for path in sorted(folder.glob("*.txt"), key=lambda p: p.stem):
        try:
            images.append(parse_image(path.read_text(encoding="utf-8"), path.stem, source, path))
        except (ImageFormatError, OSError, UnicodeDecodeError) as exc:
            problems.append(str(exc))
    return images, problems


def _shipped_order(image: XOImage) -> tuple:
    # The lecture's two images first, then each one's variants.
    return (image.label != "x", "-" in image.name, image.name)


def shipped_images() -> list[XOImage]:
    """The lecture's X and O and their trickier variants, X first."""
    images, problems = _read_folder(xo_dir(), "shipped")
    if problems:  # a broken shipped file is a packaging bug, not learner input
        raise ImageFormatError("; ".join(problems))
    return sorted(images, key=_shipped_order)


def user_images() -> tuple[list[XOImage], list[str]]:
    """The learner's saved images, and one message per file that could not be read."""
    return _read_folder(user_dir(), "yours")


def all_images() -> list[XOImage]:
    """Shipped images then the learner's (a learner image with a shipped name is listed as well)."""
    return shipped_images() + user_images()[0]


def find_image(name: str) -> XOImage | None:
    return next((image for image in all_images() if image.name == name), None)


def image_names() -> list[str]:
    return [image.name for image in all_images()]


def free_name(base: str, taken: set[str]) -> str:
    """`base-edit`, `base-edit-2`, ...: the first name not taken (saving never overwrites)."""
    stem = re.sub(r"[^a-z0-9_-]+", "-", base.lower()).strip("-") or "image"
    stem = stem if stem.endswith("-edit") or re.search(r"-edit-\d+$", stem) else f"{stem}-edit"
    stem = re.sub(r"-edit-\d+$", "-edit", stem)
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def save_user_image(pixels: np.ndarray, label: str, base_name: str, note: str = "") -> XOImage:
    """Save an edited image under user_dir() with a fresh name; returns it as loaded back from disk."""
    pixels = np.where(np.asarray(pixels) > 0, 1.0, -1.0)
    if pixels.shape != (SIZE, SIZE):
        raise ImageFormatError(f"an image is {SIZE}x{SIZE}, got {pixels.shape}")
    if label not in LABELS:
        raise ImageFormatError(f"label must be x or o, got {label!r}")
    folder = user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = free_name(base_name, set(image_names()))
    image = XOImage(name, label, pixels, note, "yours")
    path = folder / f"{name}.txt"
    atomic.write_text(path, format_image(image))  # a crash mid-save never leaves half an image behind
    return parse_image(path.read_text(encoding="utf-8"), name, "yours", path)


def mismatches(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Cells where two images differ: "computers are literal", one pixel off is a different image."""
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(np.asarray(a) != np.asarray(b)))]
