"""OpenBLAS's own thread count, lowered to one while our threads each call BLAS for their own share of the work.

Why: the cnn's second conv runs one pipeline per thread (see `conv_nhwc.conv_relu_maxpool_forward_kernel`),
each thread multiplying its own few images in its own GEMM. With OpenBLAS's two-thread pool shared by both
callers that ran no faster than the three steps split one after the other (17.4-23 ms against 17.7-19.7,
batch 100); with each GEMM on its caller's thread alone it took 13.5.

The library is the OpenBLAS mapped into this process (NumPy's wheels bundle one), asked through ctypes on first
use, never at import. Its count is process-wide (`openblas_set_num_threads_local` is too, in its pthreads build:
measured), so overlapping sections are counted: the first one in lowers the count, the last one out restores it.
While a section runs, another thread's GEMM gets one BLAS thread too: slower, never wrong. threadpoolctl was
tried and not used: it lets only the first thread that ever set a limit set one again, and our sections run on
whichever thread trains.

Where no OpenBLAS is found (another BLAS, or no /proc), sections change nothing: the pipeline then shares
BLAS's pool, as fast as the old split (above).
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager

# scipy-openblas (NumPy's wheels) prefixes its symbols and suffixes its 64-bit-integer build; a system OpenBLAS
# does neither. Each entry is (prefix, suffix) of `openblas_<name>`.
_AFFIXES = (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", ""))

_lock = threading.Lock()
_library = None  # (get_num_threads, set_num_threads) of the loaded OpenBLAS, or () when there is none
_sections = 0  # sections open now, in any thread
_saved = 0  # the count the first section found


def loaded_openblas_paths() -> list[str]:
    """Shared libraries with 'openblas' in their name mapped into this process (Linux /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(paths)


def openblas_function(name: str):
    """`openblas_<name>` from the loaded OpenBLAS, under whichever affixes its build uses, or None."""
    for path in loaded_openblas_paths():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in _AFFIXES:
            function = getattr(library, f"{prefix}openblas_{name}{suffix}", None)
            if function is not None:
                return function
    return None


def _controls():
    global _library
    if _library is None:
        get, set_ = openblas_function("get_num_threads"), openblas_function("set_num_threads")
        if get is not None and set_ is not None:
            get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
            _library = (get, set_)
        else:
            _library = ()
    return _library


def blas_thread_count() -> int | None:
    """OpenBLAS's thread count now, or None where no OpenBLAS is found."""
    controls = _controls()
    return int(controls[0]()) if controls else None


@contextmanager
def one_blas_thread():
    """Inside, every OpenBLAS call runs on its caller's thread alone; the count before is restored after."""
    global _sections, _saved
    with _lock:
        controls = _controls()
        if _sections == 0 and controls:
            _saved = controls[0]()
            controls[1](1)
        _sections += 1
    try:
        yield
    finally:
        with _lock:
            _sections -= 1
            if _sections == 0 and controls:
                controls[1](_saved)
