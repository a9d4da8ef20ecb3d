"""Read an `.npz` archive from anywhere without trusting it: no pickles, and no allocation it does not justify.

`np.load` would allocate whatever a member's `.npy` header claims (terabytes, if it says so) and inflate whatever
a member holds. Here every member is checked before its data is read: a plain `.npy` name, stored or deflated,
not encrypted, a declared size within the budget, a header whose dtype is a plain number and whose shape accounts
for exactly the bytes the member holds. Reading then stops at the declared size, so a deflate bomb cannot inflate
past what the archive's directory admits. Every problem is a `ValueError` with a short reason.
"""

from __future__ import annotations

import zipfile

import numpy as np

MAX_MEMBERS = 1024
MAX_TOTAL_BYTES = 1 << 30  # 1 GiB uncompressed: the cnn's checkpoint with Adam's moments is about 40 MB
ALLOWED_KINDS = "fiub"  # float, signed and unsigned integer, bool; never object, string or structured
_HEADER_LIMIT = 1 << 16
_CHUNK = 4 << 20


def _read_into(handle, array: np.ndarray) -> None:
    """Fill `array` from `handle` in bounded chunks: no second copy of the data, and nothing is inflated past it."""
    view, filled = memoryview(array.reshape(-1)).cast("B"), 0
    while filled < len(view):
        got = handle.readinto(view[filled:filled + _CHUNK])
        if not got:
            raise ValueError("a member ends early")
        filled += got


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> np.ndarray:
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle, max_header_size=_HEADER_LIMIT)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle, max_header_size=_HEADER_LIMIT)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in ALLOWED_KINDS:
            raise ValueError(f"member {info.filename!r} holds {dtype}, not plain numbers")
        count = 1
        for size in shape:
            if not isinstance(size, int) or size < 0:
                raise ValueError(f"member {info.filename!r} has a bad shape {shape}")
            count *= size  # Python ints: no overflow, and the product is compared with a real size next
        nbytes = count * dtype.itemsize
        if nbytes > info.file_size:
            raise ValueError(f"member {info.filename!r} claims shape {shape}, more than the bytes it holds")
        if nbytes > budget:
            raise ValueError(f"member {info.filename!r} claims shape {shape}, more than this archive may hold")
        array = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
        _read_into(handle, array)
        if handle.read(1):
            raise ValueError(f"member {info.filename!r} holds more bytes than its shape {shape}")
    return array.T if fortran else array


def read_npz(path, first: str | None = None, budget=None) -> dict[str, np.ndarray]:
    """All members of the archive at `path`, by name without `.npy`. Raises ValueError (or OSError for the
    file itself) with a reason; never unpickles and never allocates beyond `MAX_TOTAL_BYTES`.

    With `first` and `budget`, member `first` is read before the others and `budget(its array)` says how many
    bytes the others may hold together (a checkpoint's architecture says how many weights it has), or None to
    read no further (the caller's own check of `first` will say what is wrong)."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"{len(members)} members, more than {MAX_MEMBERS}")
        total = 0
        for info in members:
            if info.flag_bits & 0x1:
                raise ValueError(f"member {info.filename!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ValueError(f"member {info.filename!r} uses an unsupported compression")
            if not info.filename.endswith(".npy") or info.is_dir():
                raise ValueError(f"member {info.filename!r} is not a .npy array")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise ValueError(f"its members add up to more than {MAX_TOTAL_BYTES >> 20} MB")
        if first is not None:
            members.sort(key=lambda info: info.filename != f"{first}.npy")  # stable: the rest keep their order
            if members and members[0].filename != f"{first}.npy":
                return {}  # without `first` nothing says what the rest may hold; the caller names the problem
        arrays, left = {}, MAX_TOTAL_BYTES
        for info in members:
            name = info.filename[:-len(".npy")]
            if name in arrays:
                raise ValueError(f"member {info.filename!r} appears twice")
            arrays[name] = _read_member(archive, info, left)
            if name == first and budget is not None:
                left = budget(arrays[name])
                if left is None:
                    break
                left = min(left, MAX_TOTAL_BYTES)
            else:
                left -= arrays[name].nbytes
        return arrays
