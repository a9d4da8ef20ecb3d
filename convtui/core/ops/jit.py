"""Numba compile options and the rule for when an element-wise kernel runs on the thread pool.

Every kernel module in `ops` takes its options from here, so a test can lower `PARALLEL_MIN_SIZE` once and
compare every parallel path with its serial body.
"""

from __future__ import annotations

JIT = dict(nogil=True, parallel=True, cache=True)
SERIAL = dict(nogil=True, cache=True)
# Waking the thread pool costs tens of microseconds per parallel region (a workqueue wake-up measured ~80 us):
# more than a whole 100 x 128 ReLU or a bias update, so small arrays run serially.
PARALLEL_MIN_SIZE = 1 << 16  # elements; below this one thread finishes before two would have started
BLOCK = 1 << 14


def run_blocks(body, driver, size, *args):
    """Call `body(*args, 0, size)` directly for a small array, else the parallel `driver(*args)`."""
    if size < PARALLEL_MIN_SIZE:
        body(*args, 0, size)
    else:
        driver(*args)
