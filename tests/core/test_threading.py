"""The app runs kernels on its UI thread while a worker thread trains: the kernels must be thread-safe.

Run in a subprocess, because an unsafe Numba threading layer (workqueue) aborts the whole process."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import threading
    from convtui import runtime
    runtime.configure()
    import numpy as np
    from convtui.core import ops
    import numba

    rng = np.random.default_rng(0)
    x = rng.random((8, 3, 28, 28), dtype=np.float32)
    w = rng.random((16, 3, 5, 5), dtype=np.float32)
    expected = ops.conv2d_forward(x, w, None, 1, "same")
    big = rng.random(200_000, dtype=np.float32)  # above the serial cut-off: a parallel region
    errors = []

    def hammer():
        for _ in range(40):
            if not np.array_equal(ops.conv2d_forward(x, w, None, 1, "same"), expected):
                errors.append("conv differs")
            ops.relu_forward(big)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(numba.threading_layer(), len(errors))
""")


def test_kernels_called_from_several_threads_at_once_neither_crash_nor_differ():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["omp", "0"]


CONFIGURE = textwrap.dedent("""
    import json, os
    from convtui import runtime
    runtime.configure(2)
    print(json.dumps({name: os.environ.get(name) for name in
                      ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}))
""")


def _configured(env_changes):
    env = {k: v for k, v in os.environ.items() if k not in runtime_variables()}
    env.update(env_changes)
    result = subprocess.run([sys.executable, "-c", CONFIGURE], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def runtime_variables():
    from convtui import runtime

    return set(runtime.LAYER_VARIABLES) | set(runtime.THREAD_VARIABLES)


def test_configure_sets_a_short_blas_spin_and_the_thread_counts():
    # 2^16 cycles: OpenBLAS's threads stay awake between a dense stack's GEMMs but sleep during the kernels'
    # own work (the measurements are in runtime.py's docstring).
    assert _configured({}) == {"OPENBLAS_THREAD_TIMEOUT": "16", "OMP_WAIT_POLICY": "PASSIVE",
                               "OPENBLAS_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"}


def test_a_users_own_layer_settings_win():
    got = _configured({"OPENBLAS_THREAD_TIMEOUT": "28", "OMP_WAIT_POLICY": "ACTIVE"})
    assert (got["OPENBLAS_THREAD_TIMEOUT"], got["OMP_WAIT_POLICY"]) == ("28", "ACTIVE")
