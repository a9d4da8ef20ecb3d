"""The numeric core: NumPy + Numba only. It never imports textual, plotext or convtui.tui.

Layout: images are NCHW float32 (batch, channels, height, width); conv weights are (K, C, FH, FW);
dense weights are (in, out).
"""

import os

# Numba's default `omp` layer leaves its worker threads spinning after each parallel region, and on a
# 2-core machine they starve OpenBLAS's threads inside the GEMMs (measured: 527 img/s vs ~1,270 img/s).
# `workqueue` threads sleep between regions. Set before numba is first imported; a user's own setting wins.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
