"""The first run's warm-up (issue 15): on a cold cache, a helper process compiles the first conv layer's kernels and
the dense tail's while this process compiles the middle's (training and inference run the same ones), and the
result is exactly the serial warm-up's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convtui.core.nn.architectures import build_model, preset_architecture
from convtui.core.nn.optimizers import Adam
from convtui.core.training import warm_up

ROOT = Path(__file__).resolve().parents[2]


def _parts(name):
    model = build_model(name, 0)
    return warm_up.split_architecture(model.architecture(), [shape for _, shape in model.shapes()])


def test_the_cnn_splits_after_its_first_and_its_last_conv_relu_and_pool():
    head, middle, tail = _parts("cnn")
    layers = preset_architecture("cnn")["layers"]
    assert [spec["name"] for spec in head["layers"]] == ["conv1", "relu1", "pool1"]
    assert [spec["name"] for spec in middle["layers"]] == ["conv2", "relu2", "pool2"]
    assert head["input_shape"] == [1, 28, 28]
    assert head["layers"] + middle["layers"] + tail["layers"] == layers
    assert middle["input_shape"] == [32, 14, 14]  # pool1's output: what conv2 sees in a real step
    assert tail["input_shape"] == [64, 7, 7]  # pool2's output, which the flatten and the dense layers take
    assert head["dtype"] == middle["dtype"] == tail["dtype"] == "float32"


def _conv(name, channels_in, channels_out):
    return {"kind": "Conv2D", "name": name, "in_channels": channels_in, "out_channels": channels_out,
            "kernel_size": 3, "stride": 1, "padding": "same", "init": "he_normal"}


@pytest.mark.parametrize(("kinds", "want"), [
    (["conv", "relu", "flatten", "dense"], (["c1", "r2"], ["f3", "d4"], None)),  # one conv: the rest is its middle
    (["conv", "conv", "relu", "flatten", "dense"], (["c1"], ["c2", "r3"], ["f4", "d5"])),
    (["conv", "conv", "conv", "flatten", "dense"], (["c1"], ["c2", "c3"], ["f4", "d5"])),
    (["conv", "conv", "conv", "flatten"], (["c1"], ["c2", "c3", "f4"], None)),  # no dense layer: no tail
])
def test_a_tail_is_split_off_after_the_last_conv_when_there_is_a_dense_layer(kinds, want):
    """Each part's input shape is the output of the layer before it, and the parts add up to the model."""
    layers, shapes, shape = [], [], (1, 8, 8)
    for i, kind in enumerate(kinds, 1):
        if kind == "conv":
            layers.append(_conv(f"c{i}", shape[0], 2))
            shape = (2, 8, 8)
        elif kind == "relu":
            layers.append({"kind": "ReLU", "name": f"r{i}"})
        elif kind == "flatten":
            layers.append({"kind": "Flatten", "name": f"f{i}"})
            shape = (int(np.prod(shape)),)
        else:
            layers.append({"kind": "Dense", "name": f"d{i}", "in_features": shape[0], "out_features": 3,
                           "init": "he_normal"})
            shape = (3,)
        shapes.append(shape)
    parts = warm_up.split_architecture({"input_shape": [1, 8, 8], "layers": layers}, shapes)
    assert [part and [spec["name"] for spec in part["layers"]] for part in parts] == list(want)
    assert [spec for part in parts if part for spec in part["layers"]] == layers
    start = 0
    for part in filter(None, parts):
        assert part["input_shape"] == list(shapes[start - 1] if start else (1, 8, 8))
        start += len(part["layers"])


def test_the_parts_keep_the_models_float_type(monkeypatch):
    """The kernels' signatures follow the dtype: a float64 model's helper must compile float64 kernels."""
    sent = []
    monkeypatch.setattr(warm_up, "start_helper", lambda architecture: sent.append(architecture))  # returns None
    monkeypatch.setattr(warm_up, "_cores", lambda: 2)
    model = build_model("cnn", 0, dtype=np.float64)
    x = np.random.default_rng(0).random((2, 1, 28, 28))
    warm_up.warm_up_kernels(model, x, np.array([3, 7]), Adam, cold=True)
    assert [(part["dtype"], part["then"]["dtype"]) for part in sent] == [("float64", "float64")]


@pytest.mark.parametrize("name", ["softmax", "mlp-sigmoid", "mlp-relu", "mlp"])
def test_a_model_without_conv_layers_warms_up_in_one_process(name):
    assert _parts(name) is None  # its kernels compile in about a second: a second process would not pay


def test_a_conv_with_nothing_weighted_after_it_is_not_split():
    architecture = {"input_shape": [1, 8, 8], "layers": [
        {"kind": "Conv2D", "name": "c", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "stride": 1,
         "padding": "valid", "init": "he_normal"},
        {"kind": "ReLU", "name": "r"}, {"kind": "Flatten", "name": "f"}]}
    assert warm_up.split_architecture(architecture, [(2, 6, 6), (2, 6, 6), (72,)]) is None


COLD_WARM_UP = textwrap.dedent("""
    import json, sys
    from convtui import runtime
    runtime.configure(2)
    import numpy as np
    from convtui.core.nn.architectures import build_model
    from convtui.core.nn.optimizers import Adam
    from convtui.core.ops import conv_few_channels, conv_nhwc, conv_winograd, elementwise, loss
    from convtui.core.training import warm_up
    from convtui.core.training.warm_up import warm_up_kernels

    warm_up._cores = lambda: 2  # as on the 2-core machines, whatever this one has

    model = build_model("cnn", 0)
    before = {name: value.copy() for name, value in model.state_dict().items()}
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    warm_up_kernels(model, x, np.array([3, 7]), Adam, cold=sys.argv[1] == "1")
    unchanged = all(np.array_equal(before[name], value) for name, value in model.state_dict().items())
    helper_part = conv_few_channels._conv_relu_maxpool_range.stats
    own_part = conv_nhwc._maxpool_sparse_backward_part.stats
    winograd = [kernel.stats for kernel in (conv_winograd._input_tiles, conv_winograd._output_tiles)]
    tail = [kernel.stats for kernel in (loss._softmax_cross_entropy_range, elementwise._relu_backward_range)]
    print(json.dumps({"unchanged": unchanged, "logits": model.forward(x).tolist(),
                      "tail_loaded": all(stats.cache_hits for stats in tail),
                      "tail_compiled": any(stats.cache_misses for stats in tail),
                      "second_layer_winograd_loaded": any(stats.cache_hits for stats in winograd),
                      "second_layer_winograd_compiled": all(stats.cache_misses for stats in winograd),
                      "first_layer_loaded": bool(helper_part.cache_hits),
                      "first_layer_compiled": bool(helper_part.cache_misses),
                      "second_layer_loaded": bool(own_part.cache_hits),
                      "second_layer_compiled": bool(own_part.cache_misses)}))
""")


def _cold_warm_up(tmp_path, parallel: bool) -> dict:
    cache = tmp_path / ("parallel" if parallel else "serial")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-c", COLD_WARM_UP, "1" if parallel else "0"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_on_a_cold_cache_the_helper_compiles_the_first_layer_and_this_process_loads_it(tmp_path):
    parallel = _cold_warm_up(tmp_path, parallel=True)
    # The first layer's kernels came from the helper, through the shared cache; the rest compiled here.
    assert (parallel["first_layer_loaded"], parallel["first_layer_compiled"]) == (True, False)
    assert (parallel["second_layer_loaded"], parallel["second_layer_compiled"]) == (False, True)
    # ... its Winograd forward, for training and inference alike, compiled here once (the helper did not) ...
    assert (parallel["second_layer_winograd_loaded"], parallel["second_layer_winograd_compiled"]) == (False, True)
    # ... and the tail (the dense layers' ReLU and the loss) came from the helper too.
    assert (parallel["tail_loaded"], parallel["tail_compiled"]) == (True, False)
    assert parallel["unchanged"]  # the parts are models of their own: the real weights are never touched
    serial = _cold_warm_up(tmp_path, parallel=False)
    assert (serial["first_layer_loaded"], serial["first_layer_compiled"]) == (False, True)
    assert (serial["second_layer_winograd_loaded"], serial["second_layer_winograd_compiled"]) == (False, True)
    assert (serial["tail_loaded"], serial["tail_compiled"]) == (False, True)
    assert serial["unchanged"]
    assert parallel["logits"] == serial["logits"]  # same kernels, same numbers, bit for bit


class _FakeHelper:
    """Stands in for the helper process: records how the warm-up ends it."""

    def __init__(self, exit_code=None):
        self.exit_code, self.killed, self.waited_with = exit_code, False, []

    def poll(self):
        return self.exit_code

    def wait(self, timeout=None):
        self.waited_with.append(timeout)
        if self.exit_code is None and not self.killed:
            raise subprocess.TimeoutExpired("helper", timeout)
        return self.exit_code

    def kill(self):
        self.killed, self.exit_code = True, -9


def _tiny_cnn():
    return build_model("cnn", 0)


def test_a_failed_helper_costs_nothing_but_time(monkeypatch):
    helper = _FakeHelper(exit_code=1)  # it crashed: its part compiles (here: loads) in the final pass
    monkeypatch.setattr(warm_up, "start_helper", lambda architecture: helper)
    monkeypatch.setattr(warm_up, "_cores", lambda: 2)
    model = _tiny_cnn()
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    warm_up.warm_up_kernels(model, x, np.array([3, 7]), Adam, cold=True)
    assert not helper.killed and helper.waited_with == [warm_up.HELPER_WAIT_S]
    assert model.forward(x).shape == (2, 10)


def test_a_stuck_helper_is_killed_after_the_wait(monkeypatch):
    helper = _FakeHelper(exit_code=None)
    monkeypatch.setattr(warm_up, "start_helper", lambda architecture: helper)
    monkeypatch.setattr(warm_up, "_cores", lambda: 2)
    monkeypatch.setattr(warm_up, "HELPER_WAIT_S", 0.01)
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    warm_up.warm_up_kernels(_tiny_cnn(), x, np.array([3, 7]), Adam, cold=True)
    assert helper.killed


def test_ctrl_c_during_the_warm_up_kills_the_helper_at_once(monkeypatch):
    helper = _FakeHelper(exit_code=None)
    monkeypatch.setattr(warm_up, "start_helper", lambda architecture: helper)
    monkeypatch.setattr(warm_up, "_cores", lambda: 2)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(warm_up, "run_part", interrupted)
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with pytest.raises(KeyboardInterrupt):
        warm_up.warm_up_kernels(_tiny_cnn(), x, np.array([3, 7]), Adam, cold=True)
    assert helper.killed and helper.waited_with == [None]  # no 120 s wait before the interrupt goes through


def test_one_core_starts_no_helper(monkeypatch):
    monkeypatch.setattr(warm_up, "_cores", lambda: 1)  # the helper would only take turns with this process
    monkeypatch.setattr(warm_up, "start_helper", lambda architecture: pytest.fail("helper started"))
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    warm_up.warm_up_kernels(_tiny_cnn(), x, np.array([3, 7]), Adam, cold=True)


def test_a_warm_cache_starts_no_helper(monkeypatch):
    monkeypatch.setattr(warm_up, "start_helper", lambda architecture: pytest.fail("helper started"))
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    warm_up.warm_up_kernels(_tiny_cnn(), x, np.array([3, 7]), Adam, cold=False)


COLD_CHECK = textwrap.dedent("""
    import json, sys
    from convtui import runtime
    runtime.configure(1)
    import numpy as np
    from convtui.core import ops
    from convtui.core.ops import loss
    from convtui.core.training.warm_up import kernel_cache_is_cold

    if sys.argv[1] == "ask":  # only what the cache's index says
        print(json.dumps({"cached": loss.cross_entropy_kernel_cached(np.float32)}))
        sys.exit(0)
    if sys.argv[1] == "no-index":  # a Numba whose cache cannot be asked
        loss.cross_entropy_kernel_cached = lambda dtype: None
    kernel = loss._softmax_cross_entropy_range
    before = kernel_cache_is_cold(np.float32)
    untouched = not kernel.overloads
    ops.softmax_cross_entropy(np.zeros((2, 3), dtype=np.float32), np.array([0, 2]))
    print(json.dumps({"before": before, "untouched": untouched, "after": kernel_cache_is_cold(np.float32),
                      "float64": kernel_cache_is_cold(np.float64)}))
""")


def _cold_check(cache, mode="index") -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-c", COLD_CHECK, mode], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_cold_cache_is_told_from_the_cache_index_without_compiling_anything(tmp_path):
    first = _cold_check(tmp_path)
    assert first == {"before": True, "untouched": True, "after": False, "float64": True}
    second = _cold_check(tmp_path)  # a later run: the loss kernel is in the cache now
    assert second == {"before": False, "untouched": True, "after": False, "float64": True}
    assert _cold_check(tmp_path, "ask") == {"cached": True}
    for index in tmp_path.rglob("loss._softmax_cross_entropy_range-*.nbi"):
        index.write_bytes(b"not an index")
    assert _cold_check(tmp_path, "ask") == {"cached": None}  # no answer, rather than an error


def test_where_the_index_cannot_be_asked_the_loss_kernel_runs_and_tells(tmp_path):
    first = _cold_check(tmp_path, "no-index")
    assert (first["before"], first["untouched"]) == (True, False)  # compiled to find out
    second = _cold_check(tmp_path, "no-index")
    assert (second["before"], second["untouched"]) == (False, False)  # loaded from the cache


def test_a_kernel_without_a_disk_cache_has_no_answer():
    from numba import njit

    from convtui.core.ops import jit

    @njit
    def uncached(a):
        return a[0]

    assert jit.is_cached(uncached, np.zeros(2)) is None
    assert jit.is_cached(object(), np.zeros(2)) is None


def test_the_helper_process_compiles_a_first_part_and_the_tail_and_exits_0(tmp_path):
    head, _, tail = _parts("cnn")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "convtui.core.training.warm_up_helper"],
                            input=json.dumps({**head, "then": tail}), cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    cached = [path.name for path in tmp_path.rglob("*.nbi")]
    for its_part in ("conv_few_channels._conv_relu_maxpool_range", "conv_few_channels._conv_maxpool_weight_grad_range",
                     "loss._softmax_cross_entropy_range", "elementwise._relu_backward_range"):
        assert any(name.startswith(its_part) for name in cached), its_part
    for not_its_part in ("conv_winograd._input_tiles", "conv_winograd._output_tiles",
                         "conv_nhwc._maxpool_sparse_backward_part"):
        assert not any(name.startswith(not_its_part) for name in cached), not_its_part


def test_the_helper_outlives_a_first_ctrl_c(tmp_path):
    """The run it helps goes on after one Ctrl-C (to save after its first step), so the helper must too."""
    import signal
    import time

    head, _, _ = _parts("cnn")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    helper = subprocess.Popen([sys.executable, "-m", "convtui.core.training.warm_up_helper"], stdin=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=tmp_path, env=env, text=True)
    helper.stdin.write(json.dumps(head))
    helper.stdin.close()
    time.sleep(1.0)  # past its imports, into the compiling
    helper.send_signal(signal.SIGINT)
    assert helper.wait(timeout=300) == 0, helper.stderr.read()[-2000:]
