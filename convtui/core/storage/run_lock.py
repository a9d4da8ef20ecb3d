"""One run per folder: a run holds an exclusive lock on its folder while it trains.

The lock is `flock` on `<folder>/.convtui.lock`, which the kernel releases when the process ends however it
ends (SIGKILL included), so a stale lock file left by a killed run is taken over simply by locking it again. The
file records the holder's pid for the message a second process shows, and is removed when the run ends.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from convtui.core.errors import UsageError
from convtui.core.storage.atomic import WriteError

LOCK_FILE = ".convtui.lock"


class FolderInUseError(UsageError):
    """Another live process is training into this folder (exit code 2)."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii", errors="replace")[:20].strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def _acquire(folder: Path, path: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderInUseError(f"{folder} is in use by another convtui run{_holder(path)}; wait for it to "
                                   f"finish or choose another folder") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        # The holder we waited on removed the file as it let go: lock the new one instead.
        os.close(fd)


@contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold `folder`'s lock for the body; raise FolderInUseError at once if a live process holds it. A folder
    this lock made is removed again if the body left nothing in it (a run refused, or a disk that filled before
    its first file): an empty folder would only look like a run."""
    folder = Path(folder)
    path = folder / LOCK_FILE
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, a full disk, no permission: one line, no traceback
        raise WriteError(f"cannot create {folder}: {exc.strerror or exc}") from None
    try:
        fd = _acquire(folder, path)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError as exc:  # a full disk: the folder's files are untouched
            raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
        yield path
    finally:
        # Unlinked while still locked, then closed (which releases the lock): a process that opened the old
        # file meanwhile sees, once it gets the lock, that the path no longer names it, and starts over.
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)
        if made:
            with suppress(OSError):  # not empty (the usual case), or gone: nothing to do
                folder.rmdir()
