"""Numba compile options and the rule for when a kernel runs on the thread pool.

Every kernel module in `ops` takes its options from here, so a test can lower `PARALLEL_MIN_SIZE` once and
compare every parallel path with its serial body.

Compiling is the cost of `parallel=True` (benchmarks/compile_time.py): Numba outlines a prange loop into a
gufunc and runs LLVM over three modules instead of one, so a parallel kernel takes 3 to 6 times the CPU time of
the same kernel compiled serially (measured: pooling's max-pool forward 1.16 s against 0.48 s, the direct float64
conv forward 1.74 s against 0.34 s), at least ~0.35 s even for a one-line driver. So a kernel is parallel only
where a caller hands it enough work to gain, and its serial body takes a (start, stop) range, so small inputs
(the lessons' grids) call the body directly and never compile the parallel driver at all.
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
    run_range(body, driver, size, size, *args)


def run_range(body, driver, work, count, *args):
    """Call the serial `body(*args, 0, count)` over all `count` tasks when `work` (elements touched) is small,
    else the parallel `driver(*args)`, which splits the same tasks over the threads."""
    if work < PARALLEL_MIN_SIZE:
        body(*args, 0, count)
    else:
        driver(*args)
