"""Command line entry point: bare `convtui` opens the app; `convtui train|eval|bench|xo|export|import` stay
headless; `convtui serve` serves the app to browsers, one app process per tab.

Each sub-command lives in `convtui/commands/<name>.py` and exposes `add_parser(subparsers)` and `run(args) -> int`.
Exit codes are part of the contract: 0 ok, 1 runtime error, 2 usage error, 128 + the signal's number when a
signal stopped the command (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP; training saves first), and 141 (128 +
SIGPIPE) when the reader of its output went away, as for any Unix tool (training saves first and exits 1).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from convtui import __version__
from convtui.commands.output import CheckedOutput, OutputError, drop_stdout
from convtui.core.errors import (EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE,  # noqa: F401
                                 ConvtuiError, UsageError)

# Sub-command name -> module under convtui.commands. Imported lazily so `convtui --help` stays fast and
# the headless commands never import textual.
COMMANDS = ("train", "eval", "bench", "xo", "export", "import", "serve")
MODULES = {"import": "import_run"}  # `import` is a Python keyword


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convtui",
        description="Learn convolutional neural networks in the terminal. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"convtui {__version__}")
    # The names come from the lesson list itself, which imports no Textual: `--help` stays fast.
    from convtui.tui.lessons import LESSONS

    parser.add_argument("--screen", metavar="NAME", help="open the app straight on one screen: "
                        + ", ".join(lesson.name for lesson in LESSONS))
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    for name in COMMANDS:
        module = importlib.import_module(f"convtui.commands.{MODULES.get(name, name)}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    plain_stdout = sys.stdout
    # Checked from the start, so that what argparse prints (--help, --version) fails as loudly as a command's output.
    if plain_stdout is not None and not isinstance(plain_stdout, CheckedOutput):
        sys.stdout = CheckedOutput(plain_stdout)
    args = None
    try:
        try:
            args = parser.parse_args(argv)  # argparse itself exits 2 on a usage error, and 0 after --help
        except SystemExit as done:
            if not done.code:  # --help and --version: their text reaches stdout, or the failure is said
                sys.stdout.flush()
                lost = getattr(sys.stdout, "lost", None)  # a failed write that argparse swallowed
                if lost is not None:
                    raise lost from None
            raise
        if args.command is None:
            from convtui import runtime
            from convtui.tui.exit_signals import block_exit_signals

            sys.stdout = plain_stdout  # the app owns the terminal
            block_exit_signals()  # before any thread starts (OpenBLAS's, with numpy), so all of them inherit it
            runtime.configure()  # before the app's imports load numpy
            from convtui.tui.app import run_app

            return run_app(screen=args.screen)
        module = importlib.import_module(f"convtui.commands.{MODULES.get(args.command, args.command)}")
        code = module.run(args)
        sys.stdout.flush()  # a redirected stdout is buffered: its last write fails here, not at exit
        return code
    except ConvtuiError as exc:
        prog = f"convtui {args.command}" if args is not None and args.command else "convtui"
        print(f"{prog}: error: {exc}", file=sys.stderr)
        if isinstance(exc, OutputError):
            drop_stdout()
        return exc.exit_code
    except KeyboardInterrupt:
        print("convtui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`convtui eval RUN | head -1`): nothing left to say to it. The exit code is the one
        # a Unix tool killed by SIGPIPE reports, so `set -o pipefail` scripts see what they would with `cat`.
        drop_stdout()
        return EXIT_BROKEN_PIPE
    finally:
        sys.stdout = plain_stdout
