"""`convtui eval`: placeholder until its issue lands."""

from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("eval", help="(not built yet)")


def run(args) -> int:
    import sys

    print("convtui eval: not built yet", file=sys.stderr)
    return 1
