"""The test session runs the kernels the way the entry points do: `runtime.configure()` first, before anything
imports numpy (conftest files load before the test modules).

Without it Numba picks its threading layer by itself and its threads spin after every parallel region, fighting
OpenBLAS's spinning threads for the cores: on 2 busy cores a 30-step cnn run took 10 s instead of 3.6 s. The
hygiene tests (tests/test_package_hygiene.py) run their subprocesses without these variables.
"""

from convtui import runtime

runtime.configure()
