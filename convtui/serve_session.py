"""The program each `convtui serve` session runs: the app, bound to the life of the server that started it.

textual-serve talks to a session's app over pipes; when the server dies without ending its sessions (SIGKILL,
a crash), the app would not notice its stdin closing and would run on, unreachable, holding memory and maybe a
training run. So on Linux it asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), which the app
handles like `q`: a run saves, then it exits. Nothing happens at import.
"""

from __future__ import annotations

import os
import signal
import sys

SERVER_PID_VARIABLE = "CONVTUI_SERVER_PID"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def end_with_server() -> None:
    """SIGTERM this process when its parent (the server) ends; exit now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    expected = os.environ.get(SERVER_PID_VARIABLE, "")
    if expected.isdigit() and os.getppid() != int(expected):
        sys.exit(0)  # the server died before the request above: nobody to serve


def main() -> int:
    end_with_server()
    from convtui.cli import main as cli_main

    return cli_main([])


if __name__ == "__main__":
    sys.exit(main())
