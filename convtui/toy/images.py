"""The toy X/O images: 9x9 grids of -1/+1 kept as human-editable text files.

File format (assets/xo/*.txt and the learner's saved images):

    note: the lecture's X          <- optional, shown beside the image
    label: x                       <- x or o: what the image is meant to be (the vote lesson scores it)
    .........                      <- nine rows of nine cells: '#' is +1 (ink), '.' is -1 (paper);
    .#.....#.                         rows of numbers `-1 1 ...` work too; spaces are ignored

Shipped images live in `assets/xo/` (read-only once installed). The learner's edits are saved under
$CONVTUI_XO_DIR, or else $XDG_DATA_HOME/convtui/xo (default ~/.local/share/convtui/xo). That folder is
untrusted: only regular files of at most 64 KB are read, every file that is not an image is reported with a
reason (`Skipped`), saving never overwrites a file, and a learner file never takes a lecture image's name.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from convtui.assets_path import xo_dir
from convtui.core.errors import ConvtuiError
from convtui.core.storage.regular_files import NotRegularFile, TooLarge, read_bounded

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
    row_lines: list[int] = []  # the file's line number of each grid row, for messages
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
        row_lines.append(number)
    if not rows:
        raise ImageFormatError(f"{name}: has no grid rows; an image is {SIZE} rows of {SIZE} cells, "
                               f"'{INK}' for ink and '{PAPER}' for paper")
    for number, row in zip(row_lines, rows):
        if len(row) != SIZE:
            raise ImageFormatError(f"{name}: line {number} has {len(row)} cell{'s' * (len(row) != 1)}; "
                                   f"each row of an image has {SIZE}")
    if len(rows) != SIZE:
        raise ImageFormatError(f"{name}: has {len(rows)} grid row{'s' * (len(rows) != 1)}; an image has {SIZE}")
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


# A 9x9 image written as `-1 ` numbers with a note is under 1 KB; anything much bigger is not an image, and
# reading it whole (a symlink to /dev/zero, a log file renamed .txt) would only cost memory.
MAX_IMAGE_BYTES = 64 * 1024
# More files than this in the learner's folder are not read: each costs a parse on every screen visit.
MAX_USER_IMAGES = 1000
# A learner file named like a lecture image is listed as `x-yours` so it never replaces the lecture's X.
SHADOW_SUFFIX = "-yours"
class Skipped(NamedTuple):
    """A file in the learner's folder that was not read, and why (shown rather than silently dropped)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        shown = str(self.path)
        return f"{shown if shown.isprintable() else repr(shown)}: {self.reason}"


def _name_problem(name: str) -> str | None:
    """Why a file name cannot be an image name, or None. Names appear in one-line messages, in `--image`
    and in the app, whose text is markup: `[` would be read as a style and a newline would split a line."""
    if all(ch.isalnum() or ch in " -_.+" for ch in name) and name.strip():
        return None
    return "the name may hold letters, digits, spaces and - _ . + only: rename the file"


def read_image_text(path: Path) -> str:
    """The text of one image file, read only if it is a regular file of at most MAX_IMAGE_BYTES.

    Raises ImageFormatError naming the file. A FIFO would block a plain open() forever and /dev/zero would
    never end, so the kind and size are checked first, and the open is non-blocking in case the file is swapped
    for a FIFO between the check and the open.
    """
    try:
        data = read_bounded(path, MAX_IMAGE_BYTES)
    except NotRegularFile as exc:
        raise ImageFormatError(f"{path}: is {exc.kind}, not an image file") from None
    except TooLarge as exc:
        size = "over" if exc.size is None else f"{exc.size:,} bytes;"
        raise ImageFormatError(f"{path}: is {size} an image file is at most {MAX_IMAGE_BYTES // 1024} KB") from None
    except OSError as exc:
        raise ImageFormatError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImageFormatError(f"{path}: is not UTF-8 text (byte {exc.start})") from None


def _image_files(folder: Path, limit: int | None) -> tuple[list[Path], list[Skipped]]:
    """The `*.txt` entries of a folder (of any kind: the reader checks each), sorted by name. Hidden files are
    left out, as `ls` does."""
    try:
        with os.scandir(folder) as entries:
            names = sorted((entry.name for entry in entries
                            if entry.name.endswith(".txt") and not entry.name.startswith(".")),
                           key=lambda name: name.removesuffix(".txt"))
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [Skipped(folder, f"cannot list the folder: {exc.strerror or exc}")]
    skipped = []
    if limit is not None and len(names) > limit:
        skipped.append(Skipped(folder, f"holds {len(names):,} .txt files; only the first {limit:,} are read"))
        names = names[:limit]
    return [folder / name for name in names], skipped


def _read_folder(folder: Path, source: str, limit: int | None = None) -> tuple[list[XOImage], list[Skipped]]:
    paths, skipped = _image_files(folder, limit)
    images = []
    for path in paths:
        if (problem := _name_problem(path.stem)) is not None:
            skipped.append(Skipped(path, problem))
            continue
        try:
            images.append(parse_image(read_image_text(path), path.stem, source, path))
        except ImageFormatError as exc:
            # The messages start with the path or the name; the Skipped entry carries the path already.
            reason = str(exc)
            for prefix in (f"{path}: ", f"{path.stem}: "):
                reason = reason.removeprefix(prefix)
            skipped.append(Skipped(path, reason))
    return images, skipped


def _shipped_order(image: XOImage) -> tuple:
    # The lecture's two images first, then each one's variants.
    return (image.label != "x", "-" in image.name, image.name)


def shipped_images() -> list[XOImage]:
    """The lecture's X and O and their trickier variants, X first."""
    images, skipped = _read_folder(xo_dir(), "shipped")
    if skipped:  # a broken shipped file is a packaging bug, not learner input
        raise ImageFormatError("; ".join(map(str, skipped)))
    return sorted(images, key=_shipped_order)


def _unshadowed(images: list[XOImage], reserved: set[str]) -> list[XOImage]:
    """Rename learner images whose name a lecture image already has: `x` becomes `x-yours` (then `x-yours-2`),
    and its note says why, so `--image x` and the lessons always mean the lecture's X."""
    taken = reserved | {image.name for image in images}
    renamed = []
    for image in images:
        if image.name in reserved:
            candidate, n = f"{image.name}{SHADOW_SUFFIX}", 2
            while candidate in taken:
                candidate, n = f"{image.name}{SHADOW_SUFFIX}-{n}", n + 1
            taken.add(candidate)
            why = f"your {image.name}.txt, renamed: the lecture's image is called {image.name}"
            image = replace(image, name=candidate, note=f"{image.note} ({why})" if image.note else why)
        renamed.append(image)
    return renamed


def load_images() -> tuple[list[XOImage], list[Skipped]]:
    """Shipped images then the learner's, and the learner's files that could not be read (with reasons)."""
    shipped = shipped_images()
    yours, skipped = _read_folder(user_dir(), "yours", MAX_USER_IMAGES)
    return shipped + _unshadowed(yours, {image.name for image in shipped}), skipped


def user_images() -> tuple[list[XOImage], list[Skipped]]:
    """The learner's saved images (renamed where a lecture image has the name), and the files not read."""
    images, skipped = load_images()
    return [image for image in images if image.source == "yours"], skipped


def all_images() -> list[XOImage]:
    """Shipped images then the learner's; every name is unique (see `_unshadowed`)."""
    return load_images()[0]


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


def _taken_names(folder: Path) -> set[str]:
    """Every name in use: the images listed, and every entry in the folder, including the files that do not
    parse (saving over one of those would lose the learner's work) and names differing only in case."""
    taken = set(image_names())
    try:
        taken |= {name.lower().removesuffix(".txt") for name in os.listdir(folder)}
    except OSError:
        pass
    return taken


def _link_new(tmp: Path, folder: Path, name: str) -> Path | None:
    """Give the finished temporary file the name `name`.txt unless that name exists; None if it does.

    os.link fails rather than replace an existing file, so a file that appeared since the names were listed
    (another save, another program) is never overwritten. Where links are not supported, an exclusive create
    does the same, without the atomicity."""
    path = folder / f"{name}.txt"
    try:
        os.link(tmp, path)
        return path
    except FileExistsError:
        return None
    except OSError:
        pass
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except FileExistsError:
        return None
    with os.fdopen(fd, "wb") as handle:
        handle.write(tmp.read_bytes())
    return path


def save_user_image(pixels: np.ndarray, label: str, base_name: str, note: str = "") -> XOImage:
    """Save an edited image under user_dir() with a fresh name; returns it as loaded back from disk.

    Saving never overwrites any file: the name is the first free `<base>-edit-N`, and the file is created so
    that it fails if the name was taken meanwhile (then the next name is tried)."""
    pixels = np.where(np.asarray(pixels) > 0, 1.0, -1.0)
    if pixels.shape != (SIZE, SIZE):
        raise ImageFormatError(f"an image is {SIZE}x{SIZE}, got {pixels.shape}")
    if label not in LABELS:
        raise ImageFormatError(f"label must be x or o, got {label!r}")
    folder = user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    taken = _taken_names(folder)
    text = format_image(XOImage("", label, pixels, note, "yours"))
    # Write the whole file under a hidden temporary name first, so a crash never leaves half an image behind.
    tmp = folder / f".saving-{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        for _ in range(MAX_USER_IMAGES + 10):
            name = free_name(base_name, taken)
            path = _link_new(tmp, folder, name)
            if path is not None:
                break
            taken.add(name)
        else:
            raise ImageFormatError(f"{folder}: found no free name for {base_name!r}")
    finally:
        tmp.unlink(missing_ok=True)
    return parse_image(read_image_text(path), name, "yours", path)


def mismatches(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Cells where two images differ: "computers are literal", one pixel off is a different image."""
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(np.asarray(a) != np.asarray(b)))]
