"""Command line entry point: bare `convtui` opens the app; `convtui train|eval|bench|xo` stay headless.

Each sub-command lives in `convtui/commands/<name>.py` and exposes `add_parser(subparsers)` and `run(args) -> int`.
Exit codes are part of the contract: 0 ok, 1 runtime error, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from convtui import __version__

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Sub-command name -> module under convtui.commands. Imported lazily so `convtui --help` stays fast and
# the headless commands never import textual.
COMMANDS = ("train", "eval", "bench", "xo")


class UsageError(Exception):
    """A bad flag value or argument combination: one line on stderr, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convtui",
        description="Learn convolutional neural networks in the terminal. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"convtui {__version__}")
    parser.add_argument("--screen", metavar="NAME", help="open the app straight on one screen (see `?` in the app)")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    for name in COMMANDS:
        module = importlib.import_module(f"convtui.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 on a usage error
    try:
        if args.command is None:
            from convtui import runtime

            runtime.configure()  # before the app's imports load numpy
            from convtui.tui.app import run_app

            return run_app(screen=args.screen)
        module = importlib.import_module(f"convtui.commands.{args.command}")
        return module.run(args)
    except UsageError as exc:
        prog = f"convtui {args.command}" if args.command else "convtui"
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("convtui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
