"""The project's own errors. Every one carries a message meant for the user as is (one line, naming the file or
the setting and what is wrong) and the exit code a command ends with. The faces catch `ConvtuiError` alone:
anything else escaping is a bug."""

from __future__ import annotations

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; a command stopped by another signal exits 128 + its number
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of the output went away (`convtui eval RUN | head -1`)


class ConvtuiError(Exception):
    """Base class: a problem the user can act on. `exit_code` is what a command exits with."""

    exit_code = EXIT_ERROR


class UsageError(ConvtuiError):
    """A bad flag, argument or setting: the user asked for something that cannot be done (exit code 2)."""

    exit_code = EXIT_USAGE
