"""Atomic file writes: write a temporary file in the same folder, flush it to disk, then `os.replace` it.

A reader (the app's run browser, or a crash) sees either the old file or the new one, never half of one.
The temporary file must be in the same folder because `os.replace` is only atomic within one filesystem.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: the only way to learn the umask is to set it


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; on a clean exit it replaces `path`, on an error it is removed."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file owner-only (0600); give it the mode a plain open() would, so a run trained
        # headless on a shared server stays readable by the team, as the folder itself is.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_with(path: str | Path, writer: Callable[[IO], None]) -> None:
    """Atomically write whatever `writer(binary_file)` writes (for example `np.savez`)."""
    with atomic_open(path, "wb") as handle:
        writer(handle)
