"""The numeric core: NumPy + Numba only. It never imports textual, plotext or convtui.tui.

Layout: images are NCHW float32 (batch, channels, height, width); conv weights are (K, C, FH, FW);
dense weights are (in, out).
"""

import os

# Threading, set before numpy and numba are first imported (a user's own settings win). Measured on 2 cores:
# - Numba's default `omp` layer keeps its threads spinning after each parallel region and they starve
#   OpenBLAS's threads inside the GEMMs (527 img/s for an im2col prototype). OMP_WAIT_POLICY=PASSIVE makes them
#   sleep instead. We keep `omp` rather than `workqueue` because `workqueue` aborts the whole process when two
#   Python threads enter parallel kernels at once (the app's UI thread and its training worker), and because
#   with PASSIVE it measured faster (cnn training ~1,950 vs ~1,600 img/s, same sitting).
# - OpenBLAS's own threads spin for up to 2^28 cycles after each call and starve Numba's; a short timeout
#   gave +17% cnn training throughput.
os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def set_thread_count(threads: int | None) -> None:
    """Use `threads` threads for BLAS and the Numba kernels (None: all cores). Call it before numpy is imported:
    OpenBLAS reads its variable once, when it loads. Numba is told directly if it is already loaded."""
    if threads is None or threads < 1:  # a value below 1 is left to the config's own check
        return
    import sys

    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(threads)
