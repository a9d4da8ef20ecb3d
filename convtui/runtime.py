"""Process set-up for the numeric core: threads and Numba's threading layer. Nothing here runs at import.

The entry points (the CLI's commands, the app, the benchmarks) call `configure(threads)` once, first thing,
before numpy is imported: OpenBLAS reads its thread count once, when it loads. A user's own settings win.

Why these settings, measured on 2 cores:
- Numba's `omp` layer keeps its threads spinning after each parallel region and they starve OpenBLAS's threads
  inside the GEMMs (527 img/s for an im2col prototype). OMP_WAIT_POLICY=PASSIVE makes them sleep instead. We
  keep `omp` rather than `workqueue` because `workqueue` aborts the whole process when two Python threads enter
  parallel kernels at once (the app's UI thread and its training worker), and because with PASSIVE it measured
  faster (cnn training ~1,950 vs ~1,600 img/s, same sitting).
- The kernels no longer use Numba's parallel regions (`convtui.core.ops.jit` splits them over Python threads,
  which compile 2x faster), but `numba.get_num_threads` still starts the layer, and the settings keep it safe.
- OpenBLAS's own threads spin for up to 2^28 cycles (about 0.1 s) after each call and starve the kernels' threads
  between GEMMs (cnn training 1,087-1,347 img/s against 1,746-1,829 with a short timeout, same sitting).
  But a thread that went to sleep costs a wake-up of 20-100 us on a VM at the next GEMM, more than a whole small
  GEMM. 2^16 cycles (about 20 us) bridges the gaps between the GEMMs of a dense stack and from one batch to the
  next. Medians of 5 alternating rounds (2026-12-01, AMD EPYC, 2 cores), 2^15 / 2^16 / 2^17: mlp-relu inference
  185k / 276k / 259k img/s, softmax inference 2.54M / 2.70M / 2.70M, cnn training 1,783 / 1,766 / 1,675 (2^4
  gave mlp-relu 204k and softmax 1.68M in an earlier sitting; 2^20 and above cost cnn training 10% or more).
"""

from __future__ import annotations

import os
import sys

LAYER_VARIABLES = {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "16"}
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# More threads than this is never useful on a CPU this project targets, and libgomp aborts (40,000) or
# segfaults (100,000) when asked for absurd counts: the config refuses them before they get here.
MAX_THREADS = 256


def configure(threads: int | None = None) -> None:
    """Set the threading layer and, when `threads` is given, the thread count of BLAS and Numba (None: all
    cores). Call it before numpy is imported; Numba, if already loaded, is told directly."""
    for name, value in LAYER_VARIABLES.items():
        os.environ.setdefault(name, value)
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"thread count must be a whole number from 1 to {MAX_THREADS}, not {threads!r}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if "numba" in sys.modules:
        use_threads(threads)


def use_threads(threads: int | None) -> None:
    """Run this thread's Numba kernels on `threads` threads (capped at the pool Numba started with). Numba's
    count is per calling thread, so the app's training worker calls this for itself."""
    if threads is None:
        return
    import numba

    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
