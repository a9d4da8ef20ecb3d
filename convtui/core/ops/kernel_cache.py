"""`njit` for every kernel here: Numba's, with an on-disk cache that a damaged or full cache folder cannot break.

Numba's own cache trusts its files. A damaged index (`*.nbi`) or data file (`*.nbc`: a truncated write, a disk
fault, a hand edit, a folder synced from another machine) makes every later run end in a traceback from pickle
or LLVM, and a full disk makes the first compile raise `No space left on device`. Yet the cache is only a shortcut:
every kernel can always be compiled again. So `TolerantCache` treats the files as untrusted:
- a file that fails to load is removed, the kernel is compiled again (and cached again when the disk allows);
- a compiled kernel that cannot be saved still runs, from memory;
- a folder Numba cannot write at all leaves the kernel uncached instead of failing at import.
- a save that fails halfway takes its index with it: Numba writes the index before the data file, so the index
  would name a data file that is missing or, worse, left over from an older version of the kernel's source.
Each is said once per process and cache folder on the `convtui.kernels` logger: one line naming the file or folder
and the problem (a folder of damaged files would otherwise print a line per kernel). With no logging set up, Python
prints a warning's message alone to stderr; the app shows it as a notification (`convtui.tui.core_notices`).

`TolerantCache` subclasses `numba.core.caching.FunctionCache`, the class `Dispatcher.enable_caching` installs, and
overrides only its two entry points (`load_overload`, `save_overload`), reading the index the way they do.
"""

from __future__ import annotations

import logging
import os

import numba
from numba.core.caching import FunctionCache, NullCache

log = logging.getLogger("convtui.kernels")
_said: set[tuple[str, str]] = set()  # (what happened, where): each is said once per process


def njit(**options):
    """`numba.njit(**options)`; with `cache=True` the kernel gets a `TolerantCache` instead of Numba's own."""
    cached = options.pop("cache", False)

    def decorate(function):
        dispatcher = numba.njit(**options)(function)
        if cached:
            dispatcher._cache = _cache_for(function)
        return dispatcher

    return decorate


def _cache_for(function):
    try:
        return TolerantCache(function)
    except RuntimeError as error:  # Numba found no folder it can write: no disk cache, but the kernel runs
        _say("cannot-cache", function.__module__, f"convtui: kernels of {function.__module__} are not cached on disk "
                                                  f"({_one_line(error)}); they compile on every run")
        return NullCache()


def _one_line(error: BaseException) -> str:
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _say(what: str, where: str, message: str) -> None:
    if (what, where) not in _said:
        _said.add((what, where))
        log.warning(message)


class TolerantCache(FunctionCache):
    """Numba's per-function cache, whose failures cost a compile instead of the run (see the module's doc)."""

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception as error:  # noqa: BLE001 - pickle, LLVM and OS errors alike mean: compile it again
            self._discard(self._damaged_file(sig, target_context), error)
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception as error:  # noqa: BLE001 - a full disk or a damaged index: the kernel runs from memory
            _say("save", self._cache_path, f"convtui: compiled kernels cannot be saved in {self._cache_path} "
                                           f"({_one_line(error)}); they compile again on the next run")
            self._remove_index()

    def _damaged_file(self, sig, target_context) -> str:
        """The index, if it is what fails to load, else the data file it names for this signature."""
        index = self._cache_file._index_path
        try:
            overloads = self._cache_file._load_index()
            name = overloads.get(self._index_key(sig, target_context.codegen()))
        except Exception:  # noqa: BLE001 - the index itself is damaged
            return index
        return os.path.join(self._cache_path, name) if name else index

    def _discard(self, damaged: str, error: Exception) -> None:
        """Remove this function's index (its data files are then unreferenced, and overwritten by the next save)
        so the compile that follows starts a clean entry; if it cannot be removed, stop using the disk for this
        function in this process."""
        _say("damaged", self._cache_path, f"convtui: damaged kernel cache file {damaged} ({_one_line(error)}); "
                                          "removed, and its kernel compiled again (as is any other damaged file there)")
        if not self._remove_index():
            self.disable()

    def _remove_index(self) -> bool:
        """Remove this function's index; False if it is still there (a read-only folder)."""
        try:
            os.unlink(self._cache_file._index_path)
        except FileNotFoundError:  # never written, or another process (the warm-up helper) removed it first
            pass
        except OSError:
            return False
        return True
