"""`convtui xo`: placeholder until its issue lands."""

from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("xo", help="(not built yet)")


def run(args) -> int:
    import sys

    print("convtui xo: not built yet", file=sys.stderr)
    return 1
