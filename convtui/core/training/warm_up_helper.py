"""The helper process of `warm_up.warm_up_kernels`: compiles the first part of a model, then its tail, into Numba's
cache.

Its own module so that `runtime.configure` runs before numpy is imported. The first part's architecture arrives as
JSON on stdin, with the tail's under "then" (`warm_up.run_helper_job`). The parent only waits for it to end (its
output is discarded): whatever it cached, the parent loads; whatever it did not, the parent compiles.
"""

from __future__ import annotations

import json
import signal
import sys


def main() -> int:
    # Ctrl-C reaches the whole process group. The run it helps goes on compiling, to save after its first step,
    # so the helper goes on too; a second Ctrl-C aborts the run, which then kills the helper itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from convtui import runtime

    runtime.configure(1)
    from convtui.core.training.warm_up import run_helper_job

    run_helper_job(json.loads(sys.stdin.read()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
