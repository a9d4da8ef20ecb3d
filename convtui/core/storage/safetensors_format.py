"""safetensors files, read and written with NumPy alone, the reader trusting nothing in the file.

The format (huggingface/safetensors): an 8-byte little-endian unsigned header length `n`, then `n` bytes of UTF-8
JSON, then the raw little-endian bytes of every tensor. The header maps each tensor's name to
`{"dtype": "F32", "shape": [out, in], "data_offsets": [begin, end]}` (offsets into the data that follows the
header) and may hold `"__metadata__"`, an object of string values. The data must be covered exactly: no holes,
no overlaps, nothing after the last tensor.

Files come from classmates and from the internet, so the reader checks the header's size before reading it, the
JSON's shape, every dtype against a whitelist, every shape against its byte range, and the ranges against the
file's real size, before it allocates a single array. Every problem is a `SafetensorsError` line naming the
file.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convtui.core.storage.regular_files import NotRegularFile, open_regular
from convtui.core.errors import ConvtuiError
from convtui.core.storage import atomic

# safetensors dtype name -> NumPy dtype (little-endian). BF16 has no NumPy type: it is read as its 16 raw bits
# and widened to float32 by `to_float32` (bf16 is the top half of a float32).
DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES_OF = {np.dtype("<f8"): "F64", np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64",
             np.dtype("<i4"): "I32", np.dtype("<i2"): "I16", np.dtype("i1"): "I8", np.dtype("<u8"): "U64",
             np.dtype("<u4"): "U32", np.dtype("<u2"): "U16", np.dtype("u1"): "U8", np.dtype("?"): "BOOL"}

# The safetensors library refuses headers over 100 MB; a model of our kind needs a few KB (the cnn's is ~1 KB).
MAX_HEADER_BYTES = 16 << 20
MAX_TENSORS = 4096
MAX_DIMS = 8
MAX_NAME = 256
MAX_METADATA_VALUE = 1 << 20
HEADER_ALIGN = 8  # the library pads the header with spaces so the data starts 8-byte aligned


class SafetensorsError(ConvtuiError):
    """A file that is not a valid safetensors file, or holds something convtui cannot use."""


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str  # safetensors' name: "F32", ...
    shape: tuple[int, ...]
    begin: int  # byte offsets into the data section
    end: int


@dataclass(frozen=True)
class Header:
    """What a safetensors file declares, checked: its tensors (in file order) and its string metadata."""

    path: Path
    tensors: dict[str, TensorEntry]
    metadata: dict[str, str]
    data_start: int  # file offset of the data section (8 + header length)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: entry.shape for name, entry in self.tensors.items()}


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the header names {key[:60]!r} twice")
        seen[key] = value
    return seen


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_entry(name: str, entry, data_size: int) -> TensorEntry:
    what = f"tensor {name[:60]!r}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"{what} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"{what} has dtype {str(dtype)[:20]!r}, not one of {', '.join(DTYPES)}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_whole(n) for n in shape):
        raise ValueError(f"{what} has an invalid shape (a list of at most {MAX_DIMS} whole numbers)")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_whole(n) for n in offsets):
        raise ValueError(f"{what} has invalid data_offsets (two whole numbers)")
    begin, end = offsets
    if not begin <= end <= data_size:
        raise ValueError(f"{what} lies at bytes {begin}..{end}, outside the {data_size:,} bytes of data")
    if math.prod(shape) * DTYPES[dtype].itemsize != end - begin:  # prod is exact on Python ints: no overflow
        raise ValueError(f"{what} of shape {tuple(shape)} {dtype} does not fill its {end - begin:,} bytes")
    return TensorEntry(name, dtype, tuple(shape), begin, end)


def _check_metadata(metadata) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_METADATA_VALUE for k, v in metadata.items()):
        raise ValueError("__metadata__ must map names to strings")
    return metadata


def parse_header(raw: bytes, data_size: int, path: Path) -> Header:
    """Check a header's JSON text against a data section of `data_size` bytes (ValueError says what is wrong)."""
    if not raw.lstrip(b" ").startswith(b"{"):
        raise ValueError("its header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise ValueError("its header is not UTF-8 text") from None
    except RecursionError:
        raise ValueError("its header is nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"its header is not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    metadata = _check_metadata(header.pop("__metadata__", None))
    if len(header) > MAX_TENSORS:
        raise ValueError(f"it declares {len(header):,} tensors, more than {MAX_TENSORS:,}")
    tensors = {}
    for name, entry in header.items():
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise ValueError(f"a tensor has an invalid name {name[:60]!r}")
        tensors[name] = _check_entry(name, entry, data_size)
    # The data must be tiled exactly, in some order: no byte read twice (overlap), none left unaccounted for.
    at = 0
    for entry in sorted(tensors.values(), key=lambda e: (e.begin, e.end)):
        if entry.begin != at:
            problem = "overlaps another" if entry.begin < at else "leaves a gap before it"
            raise ValueError(f"tensor {entry.name[:60]!r} {problem} (bytes {entry.begin}..{entry.end})")
        at = entry.end
    if at != data_size:
        raise ValueError(f"its tensors cover {at:,} bytes of data, the file holds {data_size:,}")
    return Header(path, tensors, metadata, 0)


def _open_regular(path: Path):
    """Open `path` for reading if it is a regular file: a FIFO or a device neither hangs nor streams forever."""
    try:
        fd, size = open_regular(path)
    except FileNotFoundError:
        raise SafetensorsError(f"{path}: no such file") from None
    except NotRegularFile:
        raise SafetensorsError(f"{path}: not a regular file") from None
    except OSError as exc:
        raise SafetensorsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return os.fdopen(fd, "rb"), size


def _read_exactly(handle, count: int) -> bytes:
    data = handle.read(count)
    if len(data) != count:
        raise ValueError("it ends early (truncated)")
    return data


def read_header(path: str | Path) -> Header:
    """Read and check only the header: cheap, and enough to decide whether the tensors are worth reading."""
    path = Path(path)
    handle, size = _open_regular(path)
    with handle:
        try:
            return _read_header(handle, size, path)
        except ValueError as exc:
            raise SafetensorsError(f"{path}: not a valid safetensors file ({exc})") from None
        except OSError as exc:
            raise SafetensorsError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _read_header(handle, size: int, path: Path) -> Header:
    if size < 8:
        raise ValueError(f"it is {size} bytes long, shorter than the 8-byte header length")
    (length,) = struct.unpack("<Q", _read_exactly(handle, 8))
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"its header claims {length:,} bytes, more than the {MAX_HEADER_BYTES >> 20} MB allowed")
    if length < 2:
        raise ValueError("its header is empty")
    if 8 + length > size:
        raise ValueError(f"its header claims {length:,} bytes but only {size - 8:,} follow (truncated)")
    header = parse_header(_read_exactly(handle, length), size - 8 - length, path)
    return Header(path, header.tensors, header.metadata, 8 + length)


def read_tensors(header: Header, names=None) -> dict[str, np.ndarray]:
    """The tensors `header` declares (or only `names`), as native-endian arrays in file order. The header's
    checks bound what this allocates by the file's real size."""
    wanted = [header.tensors[name] for name in (names if names is not None else header.tensors)]
    path = header.path
    handle, size = _open_regular(path)
    if size != header.data_start + sum(e.end - e.begin for e in header.tensors.values()):
        raise SafetensorsError(f"{path}: the file changed while it was being read")
    arrays = {}
    with handle:
        try:
            for entry in wanted:
                handle.seek(header.data_start + entry.begin)
                raw = _read_exactly(handle, entry.end - entry.begin)
                array = np.frombuffer(raw, dtype=DTYPES[entry.dtype]).reshape(entry.shape)
                arrays[entry.name] = array.astype(array.dtype.newbyteorder("="))  # a writable native copy
        except ValueError as exc:
            raise SafetensorsError(f"{path}: not a valid safetensors file ({exc})") from None
        except OSError as exc:
            raise SafetensorsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return arrays


def load(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor and the metadata of a safetensors file."""
    header = read_header(path)
    return read_tensors(header), dict(header.metadata)


def to_float32(array: np.ndarray, dtype_name: str) -> np.ndarray:
    """A floating-point tensor as float32; BF16's raw 16 bits become the top half of a float32."""
    if dtype_name == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, which the caller refuses
        return array.astype(np.float32)


def encode(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> tuple[bytes, list[np.ndarray]]:
    """The header bytes (length prefix included) and the little-endian arrays that follow it, in order."""
    header: dict = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("safetensors metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    blobs, at = [], 0
    for name, value in tensors.items():
        array = np.asarray(value)  # not ascontiguousarray: it turns a 0-d tensor into shape (1,)
        little = array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)
        if little.dtype not in _NAMES_OF:
            raise ValueError(f"tensor {name!r} has dtype {array.dtype}, which safetensors cannot hold")
        header[name] = {"dtype": _NAMES_OF[little.dtype], "shape": list(array.shape),
                        "data_offsets": [at, at + little.nbytes]}
        blobs.append(little)
        at += little.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % HEADER_ALIGN)
    return struct.pack("<Q", len(text)) + text, blobs


def save(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> Path:
    """Write `tensors` (name -> array, in this order) and string `metadata` atomically."""
    path = Path(path)
    head, blobs = encode(tensors, metadata)

    def write(handle):
        handle.write(head)
        for blob in blobs:
            handle.write(blob.reshape(-1).view(np.uint8).data)

    atomic.write_with(path, write)
    return path
