"""A model's first run: compile (or load from Numba's cache) every kernel it uses, on both cores when cold.

Numba compiles one function at a time under a process-wide lock, so a cold cnn warm-up used one core for 6 s.
When the cache is cold, the model has a conv layer and this process may use two cores or more,
`warm_up_kernels` splits the model's layers in three: a helper process (`python -m
convtui.core.training.warm_up_helper`, one thread, output discarded) compiles the first part (for the cnn, the
first conv layer's direct loops, the costliest to compile) and then the tail (the dense layers and the loss) into
the shared on-disk cache, while this process compiles the middle (the cnn's second conv layer: its Winograd forward
and sparse backward) and the optimizer's update. Training and inference run the same kernels. The parts are fresh
models built from the architecture (data), so the real model's weights, buffers and random state are never
touched. Then the whole model runs once here, as it always did: whatever the helper finished loads from the cache,
anything it did not (it failed, it was killed, the cache is not writable) simply compiles here. The helper can
make the warm-up faster, never wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from convtui.core import ops
from convtui.core.nn.layers import Param
from convtui.core.nn.sequential import Sequential
from convtui.core.nn.specs import layer_from_spec

HELPER_BATCH = 2
# The helper's part is at most a few seconds of compiling; after this the warm-up stops waiting and compiles
# what is left itself (a stuck helper is killed).
HELPER_WAIT_S = 120.0


_POOLING_AND_ACTIVATION = ("ReLU", "MaxPool2D", "MeanPool2D")


def _after_block(layers: list[dict], conv: int) -> int:
    """Where the conv layer at `conv` and the ReLU and pooling right after it end."""
    cut = conv + 1
    while cut < len(layers) and layers[cut]["kind"] in _POOLING_AND_ACTIVATION:
        cut += 1
    return cut


def split_architecture(architecture: dict, output_shapes: list[tuple], dtype: str = "float32"
                       ) -> tuple[dict, dict, dict | None] | None:
    """(first part, middle, tail) of the layers, each as an architecture of its own: the first part ends after the
    first conv layer's ReLU and pooling, the tail is what follows the last conv layer's (the dense layers and the
    loss), and the middle is between. None when there is no conv layer with something weighted after it; the tail
    is None, and the middle all the rest, when there is no second conv layer or no dense layer after the last.

    `output_shapes` are every layer's output shape, as `Sequential.shapes()` gives them (a part's input is the
    output of the layer before it); `dtype` names the model's float type, which decides the kernels' signatures."""
    layers = architecture["layers"]
    convs = [i for i, spec in enumerate(layers) if spec["kind"] == "Conv2D"]
    if not convs:
        return None
    cut = _after_block(layers, convs[0])
    if not any(spec["kind"] in ("Conv2D", "Dense") for spec in layers[cut:]):
        return None

    def part(start, stop):
        shape = architecture["input_shape"] if start == 0 else output_shapes[start - 1]
        return {"input_shape": list(shape), "layers": layers[start:stop], "dtype": dtype}

    tail_start = _after_block(layers, convs[-1])
    if len(convs) < 2 or not any(spec["kind"] == "Dense" for spec in layers[tail_start:]):
        return part(0, cut), part(cut, len(layers)), None
    return part(0, cut), part(cut, tail_start), part(tail_start, len(layers))


def run_part(architecture: dict, first_part: bool, batch: int = HELPER_BATCH, seed: int = 0,
             inference: bool = True) -> None:
    """Forward (training) and backward, then an inference forward, of a model built from `architecture`, on random
    inputs: compiles the kernels these layers use in a real run (`inference=False` skips the last). The first part
    of a model skips its input gradient, as the whole model's first layer does; a later part computes it."""
    rng = np.random.default_rng(seed)
    # From the specs directly: a first part is not a whole model (its output is a feature map, not class scores),
    # which `architectures.check_architecture` would refuse. The specs come from a model that passed it.
    dtype = np.dtype(architecture.get("dtype", "float32"))
    model = Sequential([layer_from_spec(spec, rng, rng, dtype, True) for spec in architecture["layers"]],
                       input_shape=architecture["input_shape"])
    x = rng.random((batch, *model.input_shape)).astype(dtype)
    y = model.forward(x, training=True)
    dy = np.ones_like(y)
    if y.ndim == 2:  # logits: the loss kernel too, as in a real step
        _, dy, _ = ops.softmax_cross_entropy(y, np.zeros(batch, dtype=np.int64))
    model.backward(dy, input_grad=not first_part)
    if inference:
        model.forward(x, training=False)


def run_helper_job(job: dict) -> None:
    """The helper's work: its first part, then the model's tail (`job["then"]`, when there is one), each trained
    and inferred (a part's builder reads only its input shape, layers and dtype)."""
    run_part(job, first_part=True)
    if job.get("then"):
        run_part(job["then"], first_part=False)


def _cores() -> int:
    """The cores this process may run on: on one, a helper would only take turns with this process."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def child_environment(**variables: str) -> dict:
    """This process's environment plus `variables`, for a child Python that must import this same convtui
    (installed or from a checkout): the folder holding the package goes first on PYTHONPATH."""
    import convtui

    root = os.path.dirname(os.path.dirname(os.path.abspath(convtui.__file__)))
    env = {**os.environ, **variables}
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def start_helper(architecture: dict) -> subprocess.Popen | None:
    """The helper process compiling `architecture` (a first part), or None if it could not start."""
    try:
        helper = subprocess.Popen([sys.executable, "-m", "convtui.core.training.warm_up_helper"],
                                  env=child_environment(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None
    try:
        helper.stdin.write(json.dumps(architecture))
        helper.stdin.close()
    except OSError:  # it died already: the final pass compiles its part
        pass
    return helper


def _finish(helper: subprocess.Popen) -> None:
    """Wait for the helper (its kernels then load from the cache); kill it if it takes unreasonably long."""
    try:
        helper.wait(timeout=HELPER_WAIT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()


def kernel_cache_is_cold(dtype) -> bool:
    """True when a `dtype` model's first training step here will compile its kernels: Numba's cache does not hold
    the loss kernel, which every training run compiles. Asked of the cache's index, so a cold start can hand work
    to the helper at once: running a kernel to find out where it came from compiled it first (0.3 s, before the
    helper started). Where the index cannot be read, that is still how it is told."""
    from convtui.core.ops import loss

    cached = loss.cross_entropy_kernel_cached(dtype)
    if cached is not None:
        return not cached
    ops.softmax_cross_entropy(np.zeros((1, 2), dtype=dtype), np.zeros(1, dtype=np.int64))
    stats = loss._softmax_cross_entropy_range.stats
    return bool(stats.cache_misses) and not stats.cache_hits


def warm_up_kernels(model, x, labels, make_update, cold: bool) -> None:
    """Compile (or load) every kernel `model` uses in training and inference, on the images `x` (two are
    enough) and their labels. `make_update(params)` returns an optimizer, whose update runs on a throwaway
    copy of one bias. With `cold` (nothing in Numba's cache yet) and a conv layer, the work is shared with a
    helper process as the module docstring says."""
    parts = None
    if cold and _cores() >= 2:
        dtype = np.dtype(model.dtype).name
        parts = split_architecture(model.architecture(), [shape for _, shape in model.shapes()], dtype)
    helper = start_helper({**parts[0], "then": parts[2]} if parts[2] else parts[0]) if parts else None
    if helper is not None:
        try:
            run_part(parts[1], first_part=False, inference=False)  # its inference runs the same kernels
            make_update([Param("warm-up", np.zeros(4, dtype=parts[1]["dtype"]))]).step(0.0)
        except BaseException:  # Ctrl-C, say: stop the helper at once rather than wait for it
            helper.kill()
            helper.wait()
            raise
        _finish(helper)
    logits = model.forward(x, training=True)
    _, dlogits, _ = ops.softmax_cross_entropy(logits, labels)
    model.backward(dlogits, input_grad=False)
    scratch = Param("warm-up", model.params()[-1].value.copy())
    make_update([scratch]).step(0.0)
    model.forward(x, training=False)
