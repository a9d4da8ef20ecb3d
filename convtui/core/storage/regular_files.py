"""Open and read files from anywhere without hanging or filling memory.

A FIFO under an expected name would block a plain open() forever and /dev/zero would never end, so the kind is
checked before opening, the open is non-blocking, and the kind is checked again on the open descriptor (the name
may have been swapped between the two). Each caller words the problems for its own files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_FILE_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words: "a folder", "a FIFO (named pipe)", ..."""
    return _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")


class NotRegularFile(Exception):
    """The path is a folder, FIFO, device or socket; `mode` says which (`stat.S_IFMT(mode)`), `kind` in words."""

    def __init__(self, mode: int):
        super().__init__(f"not a regular file (mode {stat.filemode(mode)})")
        self.mode = mode
        self.kind = file_kind(mode)


class TooLarge(Exception):
    """The file holds more than the caller's limit; `size` is its size, or None when it grew while being read."""

    def __init__(self, size: int | None):
        super().__init__("too large" if size is None else f"{size:,} bytes, too large")
        self.size = size


def open_regular(path: str | Path) -> tuple[int, int]:
    """(descriptor, size) of `path` opened read-only, if it is a regular file; NotRegularFile otherwise.
    OSError (missing, no permission, symlink loop, ...) passes through for the caller to word."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotRegularFile(info.st_mode)
    return fd, info.st_size


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The whole content of a regular file of at most `limit` bytes; TooLarge or NotRegularFile otherwise."""
    fd, size = open_regular(path)
    try:
        if size > limit:
            raise TooLarge(size)
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew after the size check
        raise TooLarge(None)
    return data
