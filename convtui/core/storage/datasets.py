"""MNIST-layout IDX files: read, check and batch them.

IDX format (yann.lecun.com/exdb/mnist): a big-endian header `0x00 0x00 <type> <ndim>`, then `ndim` uint32
sizes, then the data. Images are type 0x08 (unsigned byte), 3 dims (N, 28, 28); labels 0x08, 1 dim (N,).

Images stay uint8 (N, 28, 28) in memory (47 MB for all of MNIST as float32 would be 188 MB); `to_float`
scales one batch at a time to float32 NCHW in [0, 1]. Any folder with the four standard file names works,
gzipped or not, so Fashion-MNIST drops in with `--data DIR`.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convtui.assets_path import mnist_dir
from convtui.core.errors import ConvtuiError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = 28
UBYTE = 0x08


class DataError(ConvtuiError):
    """A data folder or file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Dataset:
    """images uint8 (N, 28, 28), labels uint8 (N,) in 0..9."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, limit: int | None) -> "Dataset":
        """The first `limit` examples (all of them when limit is None)."""
        if limit is None or limit >= len(self):
            return self
        return Dataset(self.images[:limit], self.labels[:limit])


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], the models' NCHW input."""
    return (images.astype(np.float32) * np.float32(1.0 / 255.0))[:, None, :, :]


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: missing {stem}.gz (expected MNIST's four IDX files in this folder)")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except EOFError:
        raise DataError(f"{path}: truncated gzip file (it ends before the compressed data does)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read one unsigned-byte IDX file with `ndim` dimensions, checking its header against its length."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != UBYTE:
        raise DataError(f"{path}: wrong IDX magic number 0x{raw[:4].hex()} "
                        f"(expected 0x000008{ndim:02x}, unsigned bytes)")
    if raw[3] != ndim:
        raise DataError(f"{path}: has {raw[3]} dimensions, expected {ndim} (magic 0x{raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(f"{path}: header says shape {shape} ({expected} bytes) but the file holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_split(split: str, folder: str | Path | None = None, limit: int | None = None) -> Dataset:
    """Load "train" or "test" from `folder` (default: the bundled MNIST), optionally only the first `limit`."""
    folder = Path(folder) if folder is not None else mnist_dir()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such data folder")
    image_stem, label_stem = FILES[split]
    images_path, labels_path = _find(folder, image_stem), _find(folder, label_stem)
    images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    if len(labels) == 0:
        raise DataError(f"{labels_path}: holds no examples")
    if labels.max() > 9:
        where = int(np.argmax(labels > 9))
        raise DataError(f"{labels_path}: label {labels[where]} at index {where} is outside 0-9")
    return Dataset(images, labels).head(limit)
