"""MNIST-layout IDX files: read, check and batch them.

IDX format (yann.lecun.com/exdb/mnist): a big-endian header `0x00 0x00 <type> <ndim>`, then `ndim` uint32
sizes, then the data. Images are type 0x08 (unsigned byte), 3 dims (N, 28, 28); labels 0x08, 1 dim (N,).

Images stay uint8 (N, 28, 28) in memory (47 MB for all of MNIST as float32 would be 188 MB); `to_float`
scales one batch at a time to float32 NCHW in [0, 1]. Any folder with the four standard file names works,
gzipped or not, so Fashion-MNIST drops in with `--data DIR`.
"""

from __future__ import annotations

import gzip
import stat
import struct
import zlib
from functools import cached_property
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convtui.assets_path import mnist_dir
from convtui.core.errors import ConvtuiError
from convtui.core.storage.regular_files import file_kind

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = 28
MNIST_CLASSES = 10
UBYTE = 0x08
# What a header may claim before a byte of data is read: Fashion-MNIST, EMNIST and other IDX sets fit well
# inside, and a damaged or hostile header is refused before it costs memory.
MAX_EXAMPLES = 10_000_000
MAX_SIDE = 4096
MAX_BYTES = 1 << 30
_CHUNK = 4 << 20  # bytes read (and, for gzip, inflated) per call
_GZIP_LOOKAHEAD = 16 << 20  # inflated past a bad header in search of the gzip damage that explains it


class DataError(ConvtuiError):
    """A data folder or file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Dataset:
    """images uint8 (N, H, W) (one channel, as IDX holds them), labels uint8 (N,).

    `classes` is the class count the data set declares (10 for MNIST-like folders), or 0 to take it from the
    labels alone; see `n_classes`."""

    images: np.ndarray
    labels: np.ndarray
    classes: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One example's (C, H, W) as `to_float` gives it to a model: (1, 28, 28) for MNIST."""
        if self.images.ndim == 3:
            return (1, *map(int, self.images.shape[1:]))
        return tuple(map(int, self.images.shape[1:]))

    @cached_property
    def n_classes(self) -> int:
        """How many scores a model needs: the declared class count, but never fewer than the labels need (the
        highest label + 1). A subset that happens to lack class 9 (`head(300)`) still has 10 classes, so a model
        built for it fits the test split too."""
        needed = int(self.labels.max()) + 1 if len(self.labels) else 0
        return max(self.classes, needed)

    def head(self, limit: int | None) -> "Dataset":
        """The first `limit` examples (all of them when limit is None), with the same class count."""
        if limit is None or limit >= len(self):
            return self
        return Dataset(self.images[:limit], self.labels[:limit], self.n_classes)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1], the models' NCHW input; (N, C, H, W) keeps its
    channels."""
    scaled = images.astype(np.float32) * np.float32(1.0 / 255.0)
    return scaled[:, None, :, :] if images.ndim == 3 else scaled


def _find(folder: Path, stem: str) -> Path:
    """The folder's `stem.gz`, else `stem`; a name that is there but is no regular file (a folder, a FIFO, a link
    to /dev/zero) is named as such rather than called missing."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        try:
            mode = candidate.stat().st_mode
        except OSError:  # missing, or a dangling link: try the other name
            continue
        if not stat.S_ISREG(mode):
            raise DataError(f"{candidate}: is {file_kind(mode)}, not a data file")
        return candidate
    raise DataError(f"{folder}: missing {stem}.gz (expected MNIST's four IDX files in this folder)")


def _check_shape(path: Path, shape: tuple[int, ...]) -> int:
    """The data's byte count for `shape`, checked against the maxima before anything is allocated. Python ints:
    a header whose dimensions multiply past 2^64 is refused rather than wrapped around."""
    count, limits = 1, (MAX_EXAMPLES,) + (MAX_SIDE,) * (len(shape) - 1)
    for axis, (size, limit) in enumerate(zip(shape, limits)):
        if size > limit:
            what = "examples" if axis == 0 else f"dimension {axis + 1}"
            raise DataError(f"{path}: header says shape {shape}: {size:,} {what}, more than the {limit:,} allowed")
        if axis > 0 and size == 0:
            raise DataError(f"{path}: header says shape {shape}: dimension {axis + 1} is 0")
        count *= size
    if count > MAX_BYTES:
        raise DataError(f"{path}: header says shape {shape} ({count:,} bytes), more than the "
                        f"{MAX_BYTES >> 20} MB allowed")
    return count


def _read_into(handle, buffer: memoryview) -> int:
    """Fill `buffer` from `handle` in bounded chunks; return how many bytes there were (fewer at the end)."""
    filled = 0
    while filled < len(buffer):
        got = handle.readinto(buffer[filled:filled + _CHUNK])
        if not got:
            break
        filled += got
    return filled


def _read_idx(path: Path, handle, ndim: int) -> np.ndarray:
    magic = handle.read(4)
    if len(magic) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(magic)} bytes)")
    if magic[0] != 0 or magic[1] != 0 or magic[2] != UBYTE:
        raise DataError(f"{path}: wrong IDX magic number 0x{magic.hex()} "
                        f"(expected 0x000008{ndim:02x}, unsigned bytes)")
    if magic[3] != ndim:
        raise DataError(f"{path}: has {magic[3]} dimensions, expected {ndim} (magic 0x{magic.hex()})")
    sizes = handle.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", sizes)
    count = _check_shape(path, shape)
    header = 4 + 4 * ndim
    # np.empty reserves address space only: pages are committed as the data arrives, so a short file that
    # claims a large shape costs no more memory than it holds.
    data = np.empty(count, dtype=np.uint8)
    filled = _read_into(handle, memoryview(data))
    if filled < count or handle.read(1):
        held = f"{header + filled} bytes" if filled < count else "more bytes than that"
        raise DataError(f"{path}: header says shape {shape} ({header + count} bytes) but the file holds {held}")
    return data.reshape(shape)


def _drain(handle, budget: int) -> None:
    while budget > 0 and (chunk := handle.read(min(budget, 1 << 20))):
        budget -= len(chunk)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read one unsigned-byte IDX file with `ndim` dimensions. The header is read and checked first (magic,
    dimensions, their product against the maxima); then exactly the bytes it promises are read, and not one more:
    a gzip file inflates no further than its header says, so a bomb fails fast in bounded memory."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as handle:
                try:
                    return _read_idx(path, handle, ndim)
                except DataError:
                    # A damaged deflate stream inflates to a nonsense header long before its checksum is
                    # reached: name the damage, not the nonsense, when it shows within a bounded look further.
                    _drain(handle, _GZIP_LOOKAHEAD)
                    raise
        with open(path, "rb") as handle:
            return _read_idx(path, handle, ndim)
    except EOFError:
        raise DataError(f"{path}: truncated gzip file (it ends before the compressed data does)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def check_saved_data_folder(folder: str | None, checkpoint: str | Path) -> None:
    """A run trained on `folder` (its --data) is read on it again: say so if it is not there (another machine,
    another working folder for a path saved relative before 2026-12), rather than only "no such data folder"."""
    if folder and not Path(folder).is_dir():
        raise DataError(f"{checkpoint}: was trained on the data folder {folder}, which is not there; pass --data "
                        "DIR to name it")


def load_split(split: str, folder: str | Path | None = None, limit: int | None = None,
               image_size: tuple[int, int] | None = (IMAGE_SIZE, IMAGE_SIZE),
               n_classes: int = MNIST_CLASSES) -> Dataset:
    """Load "train" or "test" from `folder` (default: the bundled MNIST), optionally only the first `limit`.

    `image_size` is the (H, W) the caller's models take; None accepts any size within the reader's maxima (the
    model is then built from `Dataset.input_shape`). Labels must lie in 0..n_classes-1."""
    folder = Path(folder) if folder is not None else mnist_dir()
    if not folder.is_dir():
        raise DataError(f"{folder}: is not a folder" if folder.exists() else f"{folder}: no such data folder")
    image_stem, label_stem = FILES[split]
    images_path, labels_path = _find(folder, image_stem), _find(folder, label_stem)
    images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if image_size is not None and images.shape[1:] != tuple(image_size):
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, "
                        f"expected {image_size[0]}x{image_size[1]}")
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels)} labels for the {len(images)} images of {images_path.name}")
    if len(labels) == 0:
        raise DataError(f"{labels_path}: holds no examples")
    if labels.max() >= n_classes:
        where = int(np.argmax(labels >= n_classes))
        raise DataError(f"{labels_path}: label {labels[where]} at index {where} is outside 0-{n_classes - 1}")
    return Dataset(images, labels, n_classes).head(limit)
