"""Numba compile options, and how a kernel's work is split over threads.

Every kernel is compiled serially (`SERIAL`: nogil, cached on disk) as a body over a range of tasks,
`body(*args, start, stop)`. `run_range` runs it on one thread for small inputs and, for big ones, on as many
Python threads as the calling thread's Numba thread count (`runtime.use_threads`), each taking a contiguous
share of the tasks. The bodies release the GIL, so the threads really run at once.

Why not Numba's own `parallel=True` and `prange`: compiling is its cost. Numba outlines a prange loop into a
gufunc and runs LLVM over three modules instead of one, so a parallel kernel took 3 to 6 times the CPU time of the
same kernel compiled serially (benchmarks/compile_time.py: the cnn's sparse conv backward 2.5 s against 0.7 s,
its first layer's forward 2.3 s against about 0.5 s), and the cnn's first step compiled for 11 s. The same split
on Python threads ran as fast (the sparse backward: 34-44 ms either way, alternating, batch 100, 2 threads).

A test can lower `PARALLEL_MIN_SIZE` once and compare every split path with its serial body.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait

from convtui.core.ops.blas_threads import one_blas_thread

SERIAL = dict(nogil=True, cache=True)
# Handing work to a thread costs tens of microseconds: more than a whole 100 x 128 ReLU or a bias update, so
# small inputs run on the calling thread alone.
PARALLEL_MIN_SIZE = 1 << 16  # elements touched; below this one thread finishes before two would have started

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def thread_count() -> int:
    """The calling thread's Numba thread count: the whole pool, or what `runtime.use_threads` gave this thread."""
    import numba

    return numba.get_num_threads()


def _executor() -> ThreadPoolExecutor:
    """The helper threads, started on first use (never at import): one fewer than Numba's pool, since the calling
    thread takes a share itself."""
    global _pool
    with _pool_lock:
        if _pool is None:
            import numba

            workers = max(1, numba.config.NUMBA_NUM_THREADS - 1)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convtui-kernel")
        return _pool


def parts_for(work: int, count: int) -> int:
    """How many threads share `count` tasks touching `work` elements: 1 below PARALLEL_MIN_SIZE."""
    if work < PARALLEL_MIN_SIZE or count < 2:
        return 1
    return max(1, min(thread_count(), count))


def run_calls(body, calls: list[tuple]) -> None:
    """`body(*call)` for every call, the first on this thread and the others on the helper threads; returns when
    all have finished (and raises the first error after all have stopped, so no thread still writes)."""
    if len(calls) == 1:
        body(*calls[0])
        return
    futures = [_executor().submit(body, *call) for call in calls[1:]]
    try:
        body(*calls[0])
    finally:
        wait(futures)
    for future in futures:
        future.result()


def is_cached(kernel, *args) -> bool | None:
    """Whether Numba's on-disk cache holds `kernel` compiled for these arguments' types, found without compiling
    or loading anything (a cold compile of even a small kernel costs a few tenths of a second). None when the cache
    cannot be asked: `kernel` is not cached, or this Numba keeps its index some other way (these are the
    internals `Dispatcher` itself uses to load an overload), or the index is unreadable."""
    import numba

    try:
        cache = kernel._cache
        key = cache._index_key(tuple(numba.typeof(arg) for arg in args), kernel.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 - an unpicklable or foreign index is as good as no answer
        return None


def share_bounds(count: int, parts: int) -> list[int]:
    """Where each of `parts` contiguous shares of `count` tasks starts, and the end: share i is [b[i], b[i + 1])."""
    return [count * part // parts for part in range(parts + 1)]


def run_blas_calls(body, calls: list[tuple]) -> None:
    """`run_calls` for bodies that run their own GEMMs: with more than one call, each is a thread already, so
    OpenBLAS is held to one thread meanwhile (`blas_threads.one_blas_thread`)."""
    if len(calls) == 1:
        body(*calls[0])
        return
    with one_blas_thread():
        run_calls(body, calls)


def run_range(body, work: int, count: int, *args, scratch=None) -> None:
    """`body(*args, start, stop)` over tasks [0, count), split into one contiguous range per thread when the work
    is big enough (see `parts_for`). With `scratch`, a function of the number of parts giving each part its own
    working arrays (a tuple per part), the body is `body(*args, *scratch_of_its_part, start, stop)`: a kernel
    that makes arrays itself costs every cold start the compile of NumPy's allocators for their types."""
    parts = parts_for(work, count)
    bounds = share_bounds(count, parts)
    extra = scratch(parts) if scratch is not None else [()] * parts
    run_calls(body, [(*args, *extra[part], bounds[part], bounds[part + 1]) for part in range(parts)])


def run_blocks(body, size: int, *args) -> None:
    """`run_range` over the `size` elements of a flat array."""
    run_range(body, size, size, *args)
