"""Atomic file writes: write a temporary file in the same folder, flush it to disk, then `os.replace` it.

A reader (the app's run browser, or a crash) sees either the old file or the new one, never half of one.
The temporary file must be in the same folder because `os.replace` is only atomic within one filesystem.
A write that fails (a full disk, say) removes its temporary file, leaves the old file as it was, and raises a
`WriteError` that names the file. A write killed outright (SIGKILL, power loss) leaves a `.<name>.<random>.tmp`
file, which `remove_stale_temporaries` clears when the next run takes the folder.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from convtui.core.errors import ConvtuiError

_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8,16}\.tmp")


class WriteError(ConvtuiError):
    """A file that could not be written (full disk, no permission, ...); the old file, if any, is untouched."""


def _create_temporary(path: Path) -> tuple[int, str]:
    for _ in range(100):
        name = str(path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
        try:
            # Mode 0666 and the kernel applies the umask, so the file gets the mode a plain open() would: a run
            # trained headless on a shared server stays readable by the team, as the folder itself is.
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; on a clean exit it replaces `path`, on an error it is removed."""
    path = Path(path)
    tmp_name = None
    try:
        fd, tmp_name = _create_temporary(path)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_with(path: str | Path, writer: Callable[[IO], None]) -> None:
    """Atomically write whatever `writer(binary_file)` writes (for example `np.savez`)."""
    with atomic_open(path, "wb") as handle:
        writer(handle)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that killed writes left in `folder` (call it only while holding the folder's
    run lock, so no live write is removed). Returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if _TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed
