"""Command line entry point: bare `convtui` opens the app; `convtui train|eval|bench|xo|export|import` stay
headless; `convtui serve` serves the app to browsers, one app process per tab.

Each sub-command lives in `convtui/commands/<name>.py` and exposes `add_parser(subparsers)` and `run(args) -> int`.
Exit codes are part of the contract: 0 ok, 1 runtime error, 2 usage error, 128 + the signal's number when a
signal stopped the command (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP; training saves first).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from convtui import __version__
from convtui.commands.output import CheckedOutput, OutputError, drop_stdout
from convtui.core.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, ConvtuiError, UsageError  # noqa: F401

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
    args = parser.parse_args(argv)  # argparse itself exits 2 on a usage error
    plain_stdout = sys.stdout
    if args.command is not None and plain_stdout is not None and not isinstance(plain_stdout, CheckedOutput):
        sys.stdout = CheckedOutput(plain_stdout)
    try:
        if args.command is None:
            from convtui import runtime
            from convtui.tui.exit_signals import block_exit_signals

            block_exit_signals()  # before any thread starts (OpenBLAS's, with numpy), so all of them inherit it
            runtime.configure()  # before the app's imports load numpy
            from convtui.tui.app import run_app

            return run_app(screen=args.screen)
        module = importlib.import_module(f"convtui.commands.{MODULES.get(args.command, args.command)}")
        code = module.run(args)
        sys.stdout.flush()  # a redirected stdout is buffered: its last write fails here, not at exit
        return code
    except ConvtuiError as exc:
        prog = f"convtui {args.command}" if args.command else "convtui"
        print(f"{prog}: error: {exc}", file=sys.stderr)
        if isinstance(exc, OutputError):
            drop_stdout()
        return exc.exit_code
    except KeyboardInterrupt:
        print("convtui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`convtui eval RUN | head -1`): nothing left to say to it.
        drop_stdout()
        return EXIT_ERROR
    finally:
        sys.stdout = plain_stdout

