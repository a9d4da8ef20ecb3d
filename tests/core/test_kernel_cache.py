"""A damaged or full Numba cache costs a compile, never the run (`convtui.core.ops.kernel_cache`).

Each case runs two kernels in a fresh process over a cache folder of its own, checks their results against NumPy,
and reads what the process said on stderr and what Numba's stats say it loaded or compiled."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numba.core.caching import NullCache

from convtui.core.ops import kernel_cache
from tests.core.test_compile_cache import ops_kernels

ROOT = Path(__file__).resolve().parents[2]

RUN_KERNELS = textwrap.dedent("""
    import errno, json, sys
    from convtui import runtime
    runtime.configure(1)
    import numpy as np
    from convtui.core import ops
    from convtui.core.ops import elementwise, loss

    if sys.argv[1] == "full-disk":  # every write into the cache folder fails as on a full disk
        from numba.core import caching

        def no_space(self, path):
            raise OSError(errno.ENOSPC, "No space left on device")  # as a write() says it
        caching.IndexDataCacheFile._open_for_write = no_space
    if sys.argv[1] == "data-write-fails":  # the index is written, then its data file hits the full disk
        from numba.core import caching

        def no_space_for_data(self, name, data):
            raise OSError(errno.ENOSPC, "No space left on device")
        caching.IndexDataCacheFile._save_data = no_space_for_data
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    relu_right = bool(np.array_equal(ops.relu_forward(x), np.maximum(x, 0)))
    loss_value, _, probs = ops.softmax_cross_entropy(x, np.array([0, 1, 3]))
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = -np.mean(np.log(p[[0, 1, 2], [0, 1, 3]]))
    loss_right = bool(abs(float(loss_value) - expected) < 1e-5 and np.allclose(probs, p, atol=1e-6))
    kernels = (elementwise._relu_forward_range, loss._softmax_cross_entropy_range)
    print(json.dumps({"right": relu_right and loss_right,
                      "loaded": sum(sum(k.stats.cache_hits.values()) for k in kernels),
                      "compiled": sum(sum(k.stats.cache_misses.values()) for k in kernels)}))
""")


def _run(cache: Path, mode: str = "plain") -> tuple[dict, list[str]]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-c", RUN_KERNELS, mode], check=False, cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr.splitlines()


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory) -> Path:
    """A cache folder holding both kernels, from a cold run that compiled them and said nothing."""
    cache = tmp_path_factory.mktemp("warm-cache")
    cold, said = _run(cache)
    assert cold == {"right": True, "loaded": 0, "compiled": 2}
    assert said == []
    warm, said = _run(cache)
    assert warm == {"right": True, "loaded": 2, "compiled": 0}
    assert said == []
    return cache


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a pickle at all\n")


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _flipped(path: Path) -> None:
    """Bytes in the middle flipped: the pickle still loads, and LLVM refuses the bitcode inside it."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 200] = bytes(byte ^ 0x55 for byte in data[middle:middle + 200])
    path.write_bytes(bytes(data))


DAMAGES = [("nbi", _garbage), ("nbi", _truncated), ("nbi", _empty), ("nbc", _garbage), ("nbc", _truncated),
           ("nbc", _empty), ("nbc", _flipped)]


@pytest.mark.parametrize("suffix, damage", DAMAGES, ids=[f"{s}-{d.__name__[1:]}" for s, d in DAMAGES])
def test_a_damaged_cache_file_is_named_in_one_line_replaced_and_the_kernel_still_right(warm_cache, tmp_path,
                                                                                        suffix, damage):
    cache = tmp_path / "cache"
    shutil.copytree(warm_cache, cache)
    [damaged] = cache.rglob(f"loss._softmax_cross_entropy_range-*.{suffix}")
    damage(damaged)
    result, said = _run(cache)
    assert result == {"right": True, "loaded": 1, "compiled": 1}  # the relu kernel still came from the cache
    assert len(said) == 1 and said[0].startswith(f"convtui: damaged kernel cache file {damaged} (")
    assert said[0].endswith("removed, and its kernel compiled again (as is any other damaged file there)")
    again, said = _run(cache)  # the compile saved a good entry
    assert again == {"right": True, "loaded": 2, "compiled": 0}
    assert said == []


def test_a_folder_of_damaged_files_is_said_once_and_rebuilt(warm_cache, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(warm_cache, cache)
    files = [path for path in cache.rglob("*") if path.is_file()]
    assert len(files) >= 4
    for path in files:
        _garbage(path)
    result, said = _run(cache)
    assert result == {"right": True, "loaded": 0, "compiled": 2}
    assert len(said) == 1 and said[0].startswith("convtui: damaged kernel cache file ")
    assert _run(cache) == ({"right": True, "loaded": 2, "compiled": 0}, [])


def test_a_cache_that_cannot_be_written_costs_a_line_and_the_next_run_a_compile(tmp_path):
    result, said = _run(tmp_path, "full-disk")
    assert result == {"right": True, "loaded": 0, "compiled": 2}
    assert len(said) == 1 and said[0].startswith("convtui: compiled kernels cannot be saved in ")
    assert "(OSError: [Errno 28] No space left on device); they compile again on the next run" in said[0]
    assert str(tmp_path) in said[0]
    assert _run(tmp_path) == ({"right": True, "loaded": 0, "compiled": 2}, [])  # nothing half-written was kept


def test_every_kernel_has_the_tolerant_cache():
    kernels = dict(ops_kernels())
    assert len(kernels) >= 25
    assert [name for name, kernel in kernels.items() if type(kernel._cache) is not kernel_cache.TolerantCache] == []


def test_with_no_folder_to_cache_in_a_kernel_runs_uncached_and_says_so(monkeypatch, caplog):
    def no_locator(function):
        raise RuntimeError(f"cannot cache function {function.__name__!r}: no locator available for file 'x.py'")

    monkeypatch.setattr(kernel_cache, "TolerantCache", no_locator)
    monkeypatch.setattr(kernel_cache, "_said", set())

    @kernel_cache.njit(cache=True, nogil=True)
    def twice(a):
        return a * 2

    with caplog.at_level(logging.WARNING, logger="convtui.kernels"):
        assert np.array_equal(twice(np.arange(3.0)), [0.0, 2.0, 4.0])
        twice_again = kernel_cache.njit(cache=True)(lambda a: a + 1)
    assert isinstance(twice._cache, NullCache) and isinstance(twice_again._cache, NullCache)
    assert [record.getMessage() for record in caplog.records] == [
        (f"convtui: kernels of {__name__} are not cached on disk (RuntimeError: cannot cache function 'twice': no "
         "locator available for file 'x.py'); they compile on every run")]


def test_a_save_that_fails_after_its_index_leaves_no_index_behind(tmp_path):
    """Numba writes the index first: left alone, it would name a data file that was never written, or one an older
    version of the kernel left under the same name."""
    result, said = _run(tmp_path, "data-write-fails")
    assert result == {"right": True, "loaded": 0, "compiled": 2}
    assert len(said) == 1 and said[0].startswith("convtui: compiled kernels cannot be saved in ")
    assert list(tmp_path.rglob("*.nbi")) == [] and list(tmp_path.rglob("*.nbc")) == []
    assert _run(tmp_path) == ({"right": True, "loaded": 0, "compiled": 2}, [])
    assert _run(tmp_path) == ({"right": True, "loaded": 2, "compiled": 0}, [])
