"""Throughput, FLOP rate, compile time and memory of a model preset on convtui's kernels (`convtui bench`).

The timed loop is the reference script's (../shared/bench/torch_reference.py): batch B, Adam at lr 1e-3, softmax
cross-entropy, float32 NCHW, `warmup` untimed steps, then `steps` timed ones; images/s = steps * B / seconds.
Unlike the reference, the batches are real MNIST training images (cycled), because the conv backward skips the
pooling windows that ReLU closed, and real digits close far more of them than uniform noise does.

Nothing here prints; `convtui.commands.bench` formats the result.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from convtui.core.nn.layers import Conv2D, Dense
from convtui.core.ops.blas_threads import openblas_function
from convtui.core.training.step import train_step

EPOCH_IMAGES = 60_000


def model_flops(model) -> tuple[int, int]:
    """(forward, training) FLOPs per image, counting a multiply-add as 2 in conv and dense layers.

    Conv: 2 * K * C * FH * FW * OH * OW; dense: 2 * in * out. Training counts the usual 3x forward (forward,
    dL/dx and dL/dw) as the dense-equivalent work, even where a kernel does less (the first layer needs no
    dL/dx, the conv backward skips closed pooling windows, and a 5x5 conv before a 2x2 pool runs by Winograd,
    with fewer multiplications than the direct sum): it is the figure PyTorch would have to match.
    For the lecture's cnn: about 27.7 MFLOP forward, 83 MFLOP per training image.
    """
    forward, shape = 0, model.input_shape
    for layer in model.layers:
        out = layer.output_shape(shape)
        if isinstance(layer, Conv2D):
            k, c, f_h, f_w = layer.w.value.shape
            forward += 2 * k * c * f_h * f_w * out[1] * out[2]
        elif isinstance(layer, Dense):
            forward += 2 * layer.w.value.size
        shape = out
    return forward, 3 * forward


def blas_kernel() -> dict:
    """The BLAS NumPy runs on and, for OpenBLAS, the kernel it chose for this CPU (e.g. SkylakeX, or Haswell
    when OPENBLAS_CORETYPE forces it), asked from the loaded library itself through ctypes."""
    import ctypes

    info = {"library": "unknown", "core": "unknown"}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["library"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # show_config's layout is not a stable API; the core name below does not need it
        pass
    corename = openblas_function("get_corename")
    if corename is not None:
        corename.restype = ctypes.c_char_p
        info["core"] = corename().decode()
    return info


def sgemm_peak_gflops(size: int = 1536, repeats: int = 3) -> float:
    """Best float32 GEMM rate of this BLAS at the current thread count, on a square size x size product."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def _batches(batch_size: int, count: int, seed: int):
    """`count` real MNIST training batches, float32 (B, 1, 28, 28) in [0, 1], and their labels."""
    from convtui.core.storage.datasets import load_split, to_float

    data = load_split("train", limit=max(batch_size * min(count, 20), batch_size))
    order = np.random.default_rng(seed).permutation(len(data))
    out = []
    for i in range(count):
        take = np.resize(order, (i + 1) * batch_size)[i * batch_size:]  # wraps around a small --limit
        out.append((to_float(data.images[take]), data.labels[take].astype(np.int64)))
    return out


BATCHES_BYTES = 256 << 20  # the prepared float32 batches of a big --batch-size are cycled within this


def _batch_count(batch_size: int, wanted: int) -> int:
    """How many distinct batches to prepare: one per step up to 60, fewer when they would pass BATCHES_BYTES."""
    return max(1, min(wanted, 60, BATCHES_BYTES // (batch_size * 28 * 28 * 4)))


def measure_throughput(model_name: str = "cnn", batch_size: int = 100, steps: int = 50, warmup: int = 10,
                       seed: int = 0) -> dict:
    """Steady-state training and inference images/s of one preset (see the module docstring)."""
    from convtui.core.nn.architectures import build_model
    from convtui.core.nn.optimizers import Adam

    model = build_model(model_name, seed)
    optimizer = Adam(model.params())
    batches = _batches(batch_size, _batch_count(batch_size, steps + warmup), seed)

    def run(count, offset, fn):
        for i in range(count):
            fn(*batches[(offset + i) % len(batches)])

    run(warmup, 0, lambda x, y: train_step(model, optimizer, x, y, 1e-3))
    start = time.perf_counter()
    run(steps, warmup, lambda x, y: train_step(model, optimizer, x, y, 1e-3))
    train_s = time.perf_counter() - start

    run(warmup, 0, lambda x, y: model.forward(x, training=False))
    start = time.perf_counter()
    run(steps, warmup, lambda x, y: model.forward(x, training=False))
    infer_s = time.perf_counter() - start

    forward_flops, train_flops = model_flops(model)
    train_rate = steps * batch_size / train_s
    infer_rate = steps * batch_size / infer_s
    return {
        "train_images_per_s": round(train_rate, 1),
        "infer_images_per_s": round(infer_rate, 1),
        "train_step_ms": round(1e3 * train_s / steps, 2),
        "epoch_s": round(EPOCH_IMAGES / train_rate, 1),
        "gflops_per_s": round(train_flops * train_rate / 1e9, 1),
        "infer_gflops_per_s": round(forward_flops * infer_rate / 1e9, 1),
        "train_mflop_per_image": round(train_flops / 1e6, 2),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ----------------------------------------------------------------------------------------------------
# Compile time: a fresh process with NUMBA_CACHE_DIR at an empty folder (cold), then a second one (cached).
# ----------------------------------------------------------------------------------------------------

_PROBE = """
import json, sys, time
start = time.perf_counter()
from convtui import runtime
runtime.configure()
import numpy as np
from convtui.core.training.step import train_step
from convtui.core.training.warm_up import kernel_cache_is_cold, warm_up_kernels
from convtui.core.nn.architectures import build_model
from convtui.core.nn.optimizers import Adam
imported = time.perf_counter()
model = build_model(sys.argv[1], 0)
x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
# What `convtui train` and the app do before the first step: tell a cold cache, then warm up (cold: on two cores,
# see warm_up.py).
cold = kernel_cache_is_cold(model.dtype)
warm_up_kernels(model, x, np.array([3, 7]), Adam, cold=cold)
train_step(model, Adam(model.params()), x, np.array([3, 7]), 1e-3)
model.forward(x, training=False)
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "first_step_s": done - imported, "cold": cold}))
"""


def _probe(model_name: str, cache_dir: str, cold: bool) -> dict:
    from convtui.core.training.warm_up import child_environment

    env = child_environment(NUMBA_CACHE_DIR=cache_dir)
    result = subprocess.run([sys.executable, "-c", _PROBE, model_name], env=env,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"compile probe failed: {last}")
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    if probe["cold"] != cold:  # the trainer would have taken the other path: the time would not be this one's
        raise RuntimeError(f"compile probe: the kernel cache looked {'cold' if probe['cold'] else 'warm'}, "
                           f"expected {'cold' if cold else 'warm'}")
    return probe


def measure_compile(model_name: str = "cnn") -> dict:
    """JIT time of the kernels one training step and one inference of `model_name` need.

    `cold_s`: a fresh process with an empty kernel cache compiles them, through the same warm-up as `convtui
    train` (for a model with a conv layer, a helper process compiles the first layer's and the dense tail's
    kernels meanwhile); `cached_s`: a second process loads them from that cache. `startup_s` is the second
    process's whole time to its first step, imports included.
    """
    with tempfile.TemporaryDirectory(prefix="convtui-numba-cache-") as cache_dir:
        cold = _probe(model_name, cache_dir, cold=True)
        cached = _probe(model_name, cache_dir, cold=False)
    return {"cold_s": round(cold["first_step_s"], 2), "cached_s": round(cached["first_step_s"], 2),
            "startup_s": round(cached["import_s"] + cached["first_step_s"], 2)}


def run_benchmark(model_name: str = "cnn", batch_size: int = 100, steps: int = 50, warmup: int = 10,
                  compile_times: bool = True) -> dict:
    """Everything `convtui bench` reports, as one JSON-ready dict."""
    import numba

    result = {"engine": "convtui (numba %s, numpy %s)" % (numba.__version__, np.__version__),
              "model": model_name, "batch_size": batch_size, "steps": steps, "warmup": warmup,
              "threads": numba.get_num_threads()}
    result.update(measure_throughput(model_name, batch_size, steps, warmup))
    result["threading_layer"] = numba.threading_layer()  # known only once a parallel kernel has run
    result["blas"] = blas_kernel()
    result["peak_rss_mb"] = peak_rss_mb()  # before the GEMM probe below allocates its own matrices
    peak = sgemm_peak_gflops()
    result["sgemm_peak_gflops_per_s"] = round(peak, 1)
    result["peak_fraction"] = round(result["gflops_per_s"] / peak, 3)
    if compile_times:
        result["compile_s"] = measure_compile(model_name)
    return result
