"""Standard output for the headless commands: a write that fails is one line naming it, never a traceback.

`cli.main` wraps sys.stdout in `CheckedOutput` for every command. `convtui train` catches a lost output itself,
to stop and save first (commands/train.py).
"""

from __future__ import annotations

import os
import sys

from convtui.core.errors import ConvtuiError


class OutputError(ConvtuiError):
    """Standard output cannot be written (a full disk under a redirected log, /dev/full)."""


class CheckedOutput:
    """A stream whose failed writes raise `OutputError` ("cannot write to standard output: No space left on
    device") instead of an OSError. A closed pipe stays a BrokenPipeError: the reader went away, no one to tell."""

    def __init__(self, stream) -> None:
        self.stream = stream
        # The first failed write's error, kept: argparse swallows an OSError from print_help, and cli.main raises it.
        self.lost: BrokenPipeError | OutputError | None = None

    def write(self, text: str) -> int:
        return self._checked(self.stream.write, text)

    def flush(self) -> None:
        self._checked(self.stream.flush)

    def __getattr__(self, name):  # isatty, fileno, encoding, ...: the stream's own
        return getattr(self.stream, name)

    def _checked(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError as exc:
            self.lost = self.lost or exc
            raise
        except OSError as exc:
            error = OutputError(f"cannot write to standard output: {exc.strerror or exc}")
            self.lost = self.lost or error
            raise error from None


def lost_output_reason(exc: BaseException) -> str:
    """What went wrong with stdout, in a few words."""
    if isinstance(exc, BrokenPipeError):
        return "the output pipe was closed"
    if isinstance(exc, OutputError):
        return str(exc)
    return f"cannot write to standard output: {getattr(exc, 'strerror', None) or exc}"


def drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of what could not be written does not raise
    again (and print a traceback after our one line)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
