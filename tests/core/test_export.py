"""Export and import: safetensors read and written with NumPy alone, PyTorch names and layouts, ONNX, model.py.

Compared against independent implementations: the `safetensors` package reads and writes the same files, ONNX
Runtime runs the exported graphs on real test images, and a stand-in for torch.nn builds the generated model.py
and checks its state_dict names and shapes against the exported file.
"""

import json
import struct
import sys
import types

import numpy as np
import pytest

from convtui.core.nn.architectures import build_from_architecture, build_model, preset_architecture
from convtui.core.storage import safetensors_format as st
from convtui.core.storage.checkpoint import INPUT_SCALING, load_checkpoint, load_model, save_checkpoint
from convtui.core.storage.datasets import load_split, to_float
from convtui.core.storage.export_onnx import INSTALL_HINT, export_onnx
from convtui.core.storage.export_pytorch import export_pytorch, export_safetensors, model_source, torch_state
from convtui.core.storage.torch_names import (ExportError, ImportMismatch, expected_shapes, load_torch_state,
                                              recognise, torch_modules)
from convtui.core.training.config import MODELS, TrainConfig

# Not a preset: uneven SAME padding (4x4 filter; 3x3 stride 2), mean pooling with a partial edge window
# (28 -> 14 with 3x3 stride 2) and max pooling with one (7 -> 4), a sigmoid after a conv.
ODD = {"input_shape": [1, 28, 28], "layers": [
    {"kind": "Conv2D", "name": "conv1", "in_channels": 1, "out_channels": 4, "kernel_size": [4, 4],
     "stride": [1, 1], "padding": "same", "init": "he_normal"},
    {"kind": "ReLU", "name": "relu1"},
    {"kind": "MeanPool2D", "name": "pool1", "pool": [3, 3], "stride": [2, 2]},
    {"kind": "Conv2D", "name": "conv2", "in_channels": 4, "out_channels": 6, "kernel_size": [3, 3],
     "stride": [2, 2], "padding": "same", "init": "he_normal"},
    {"kind": "Sigmoid", "name": "sigmoid1"},
    {"kind": "MaxPool2D", "name": "pool2", "pool": [2, 2], "stride": [2, 2]},
    {"kind": "Flatten", "name": "flatten"},
    {"kind": "Dense", "name": "output", "in_features": 96, "out_features": 10, "init": "glorot_uniform"}]}


def _checkpoint(tmp_path, name, architecture=None, seed=3):
    """A checkpoint of preset `name` (or of `architecture`, labelled `name`) with seeded, non-trivial weights."""
    model = build_from_architecture(architecture or preset_architecture(name), seed=seed)
    rng = np.random.default_rng(seed)
    for p in model.params():  # biases too, so a dropped or misplaced bias shows
        p.value += rng.normal(scale=0.05, size=p.value.shape).astype(p.value.dtype)
    path = save_checkpoint(tmp_path / f"{name}.npz", model=model, optimizer=None,
                           config=TrainConfig.for_model(name), epoch=1)
    return load_checkpoint(path), model


@pytest.fixture(scope="module")
def test_images():
    test = load_split("test", limit=1000)
    return to_float(test.images), test.labels


# ---- the file format ---------------------------------------------------------------------------------------------

def test_round_trip_of_every_dtype_and_the_metadata(tmp_path):
    tensors = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.float64(2.5) * np.ones((2, 1, 2)),
               "c": np.array([-1, 2], dtype=np.int64), "d": np.array([True, False]), "e": np.zeros((0, 3), "f2"),
               "f": np.array(7, dtype=np.uint8)}
    path = st.save(tmp_path / "t.safetensors", tensors, {"note": "hi"})
    arrays, metadata = st.load(path)
    assert metadata == {"note": "hi"} and list(arrays) == list(tensors)
    for name, value in tensors.items():
        assert arrays[name].dtype == value.dtype and arrays[name].shape == value.shape
        np.testing.assert_array_equal(arrays[name], value)
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert (8 + length) % 8 == 0  # the data starts aligned, as the library writes it
    assert json.loads(raw[8:8 + length])["a"] == {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}


def test_the_safetensors_package_reads_ours_and_we_read_its():
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(0)
    tensors = {"w": rng.normal(size=(5, 3)).astype(np.float32), "x": rng.integers(0, 9, (4,)).astype(np.int32)}
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        ours, theirs = Path(folder, "ours.safetensors"), Path(folder, "theirs.safetensors")
        st.save(ours, tensors, {"k": "v"})
        save_file(tensors, str(theirs), metadata={"k": "v"})
        for name, value in load_file(str(ours)).items():
            np.testing.assert_array_equal(value, tensors[name])
        arrays, metadata = st.load(theirs)
        assert metadata == {"k": "v"}
        for name, value in arrays.items():
            np.testing.assert_array_equal(value, tensors[name])


def test_bf16_widens_to_float32():
    values = np.array([1.5, -2.0, 3.140625], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype(np.uint16)
    np.testing.assert_array_equal(st.to_float32(bf16, "BF16"), values)


def _write(path, header, data=b"", length=None):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


F4 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("header, data, length, fragment", [
    ({"a": F4}, b"\0" * 8, 1 << 40, "more than the 16 MB allowed"),
    ({"a": F4}, b"", 500, "truncated"),
    (b"[1, 2]", b"", None, "not a JSON object"),
    (b'{"a": ', b"", None, "not valid JSON"),
    (b'{"a": 1, "a": 2}', b"", None, "names 'a' twice"),
    ({"a": {**F4, "dtype": "F8_E4M3"}}, b"\0" * 8, None, "dtype 'F8_E4M3'"),
    ({"a": {**F4, "shape": [3]}}, b"\0" * 8, None, "does not fill its 8 bytes"),
    ({"a": {**F4, "shape": [-2]}}, b"\0" * 8, None, "invalid shape"),
    ({"a": {**F4, "data_offsets": [0, 16]}}, b"\0" * 8, None, "outside the 8 bytes"),
    ({"a": F4, "b": F4}, b"\0" * 8, None, "overlaps another"),
    ({"a": {**F4, "data_offsets": [4, 12]}}, b"\0" * 12, None, "leaves a gap"),
    ({"a": F4}, b"\0" * 12, None, "cover 8 bytes of data, the file holds 12"),
    ({"a": {**F4, "extra": 1}}, b"\0" * 8, None, "exactly dtype, shape and data_offsets"),
    ({"__metadata__": {"k": 1}, "a": F4}, b"\0" * 8, None, "__metadata__ must map names to strings"),
    (b"\xff{}", b"", None, "not a JSON object"),
])
def test_a_bad_header_is_one_line_naming_the_file(tmp_path, header, data, length, fragment):
    path = _write(tmp_path / "bad.safetensors", header, data, length)
    with pytest.raises(st.SafetensorsError) as caught:
        st.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a valid safetensors file") and fragment in message
    assert "\n" not in message


def test_short_missing_and_special_files(tmp_path):
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x02\0\0")
    with pytest.raises(st.SafetensorsError, match="shorter than the 8-byte header length"):
        st.read_header(short)
    with pytest.raises(st.SafetensorsError, match="no such file"):
        st.read_header(tmp_path / "absent.safetensors")
    with pytest.raises(st.SafetensorsError, match="not a regular file"):
        st.read_header(tmp_path)


# ---- names and layouts -------------------------------------------------------------------------------------------

def test_the_cnn_maps_onto_pytorchs_sequential():
    modules = torch_modules(preset_architecture("cnn"))
    assert [m.call() for m in modules][:3] == [
        "nn.Conv2d(1, 32, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))", "nn.ReLU()",
        "nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2), ceil_mode=True)"]
    assert expected_shapes(preset_architecture("cnn")) == {
        "0.weight": (32, 1, 5, 5), "0.bias": (32,), "3.weight": (64, 32, 5, 5), "3.bias": (64,),
        "7.weight": (1024, 3136), "7.bias": (1024,), "9.weight": (10, 1024), "9.bias": (10,)}


def test_uneven_same_padding_gets_a_zeropad_child_first():
    modules = torch_modules(ODD)
    assert modules[0].call() == "nn.ZeroPad2d((1, 2, 1, 2))"  # left, right, top, bottom: the odd pixel after
    assert modules[1].call().endswith("padding=(0, 0))") and modules[1].output_shape == (4, 28, 28)
    assert modules[3].call() == "nn.AvgPool2d(kernel_size=(3, 3), stride=(2, 2), ceil_mode=True, " \
                                "count_include_pad=False)"
    assert modules[7].output_shape == (6, 4, 4)  # 7x7 pooled by 2 keeps the partial window


def test_a_pooling_pytorch_would_size_differently_is_refused():
    # A 2x2 map pooled by a 3x3 window with stride 1: convtui gives 1x1, PyTorch's ceil_mode would give 0x0.
    architecture = {"input_shape": [1, 2, 2], "layers": [
        {"kind": "MaxPool2D", "name": "pool", "pool": [3, 3], "stride": [1, 1]},
        {"kind": "Flatten", "name": "flatten"},
        {"kind": "Dense", "name": "output", "in_features": 1, "out_features": 2, "init": "zeros"}]}
    with pytest.raises(ExportError, match="pools 2x2 to 1x1; PyTorch and ONNX would give 0x0"):
        torch_modules(architecture)


def test_dense_weights_are_transposed_and_nothing_else_changes(tmp_path):
    checkpoint, model = _checkpoint(tmp_path, "mlp")
    state = torch_state(checkpoint)
    assert list(state) == ["1.weight", "1.bias", "4.weight", "4.bias"]  # Dropout keeps its index 3
    np.testing.assert_array_equal(state["1.weight"], model.state_dict()["dense1.w"].T)
    np.testing.assert_array_equal(state["4.bias"], model.state_dict()["output.b"])


# ---- every preset, every format ----------------------------------------------------------------------------------

CASES = [(name, None) for name in MODELS] + [("cnn", ODD)]
IDS = [*MODELS, "odd-architecture"]


@pytest.mark.parametrize("name, architecture", CASES, ids=IDS)
def test_safetensors_round_trip_gives_identical_arrays_and_predictions(tmp_path, test_images, name, architecture):
    from safetensors.numpy import load_file

    checkpoint, model = _checkpoint(tmp_path, name, architecture)
    path = export_safetensors(checkpoint, tmp_path / "model.safetensors")
    expected = expected_shapes(checkpoint.architecture)
    read_by_the_library = load_file(str(path))
    assert {key: value.shape for key, value in read_by_the_library.items()} == expected
    hint = name if name in ("mlp-sigmoid", "mlp-relu") else None
    recognised, state = load_torch_state(path)
    assert recognised.model == name and recognised.how == "metadata"
    assert recognised.architecture["layers"] == checkpoint.architecture["layers"]
    for key, value in model.state_dict().items():
        assert state[key].dtype == np.float32
        np.testing.assert_array_equal(state[key], value)  # bit for bit
    rebuilt = build_from_architecture(recognised.architecture, init_weights=False)
    rebuilt.load_state_dict(state)
    images = test_images[0][:300]
    np.testing.assert_array_equal(rebuilt.forward(images), model.forward(images))
    # Without metadata the names and shapes alone say which preset it is (both MLPs need the hint).
    bare = st.save(tmp_path / "bare.safetensors", dict(read_by_the_library))
    if architecture is None:
        recognised, again = load_torch_state(bare, hint)
        assert recognised.model == name and recognised.how == "names and shapes"
        assert all(np.array_equal(again[key], value) for key, value in state.items())


@pytest.mark.parametrize("name, architecture", CASES, ids=IDS)
def test_onnx_runtime_agrees_with_convtui_on_1000_test_images(tmp_path, test_images, name, architecture):
    import onnx
    import onnxruntime

    checkpoint, model = _checkpoint(tmp_path, name, architecture)
    path = export_onnx(checkpoint, tmp_path / "model.onnx")
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    assert graph.opset_import[0].version >= 17
    assert "Dropout" not in {node.op_type for node in graph.graph.node}
    images, _ = test_images
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(["logits"], {"input": images})[0]
    ours = model.predict_logits(images)
    assert theirs.shape == ours.shape == (1000, 10)
    np.testing.assert_array_equal(theirs.argmax(axis=1), ours.argmax(axis=1))
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-4)


def test_the_trained_looking_mlp_drops_dropout_only_at_inference(tmp_path):
    checkpoint, _ = _checkpoint(tmp_path, "mlp")
    assert "nn.Dropout(p=0.2),  # 3 dropout: only while training" in model_source(checkpoint)


def test_a_missing_onnx_package_says_how_to_install_it(tmp_path, monkeypatch):
    checkpoint, _ = _checkpoint(tmp_path, "softmax")
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ExportError) as caught:
        export_onnx(checkpoint, tmp_path / "model.onnx")
    assert INSTALL_HINT in str(caught.value) and "\n" not in str(caught.value)
    assert "pip install 'convtui[export]'" in str(caught.value)
    assert not (tmp_path / "model.onnx").exists()


# ---- model.py ----------------------------------------------------------------------------------------------------

class _FakeModule:
    """Just enough of torch.nn.Module for build() and load(): parameters by name and shape, strict loading."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.params, self.children = args, kwargs, {}, []
        kind = type(self).__name__
        if kind == "Conv2d":
            k = kwargs["kernel_size"]
            self.params = {"weight": (args[1], args[0], *k), "bias": (args[1],)}
        elif kind == "Linear":
            self.params = {"weight": (args[1], args[0]), "bias": (args[1],)}
        elif kind == "Sequential":
            self.children = list(args)
        self.training = True

    def state_shapes(self):
        return {f"{i}.{name}": shape for i, child in enumerate(self.children) for name, shape in child.params.items()}

    def load_state_dict(self, state):
        assert {key: tuple(value.shape) for key, value in state.items()} == self.state_shapes()
        self.loaded = state

    def eval(self):
        self.training = False
        return self


def _fake_torch(monkeypatch, weights):
    nn = types.ModuleType("torch.nn")
    for kind in ("Sequential", "Conv2d", "ZeroPad2d", "MaxPool2d", "AvgPool2d", "Linear", "ReLU", "Sigmoid",
                 "Dropout", "Flatten"):
        setattr(nn, kind, type(kind, (_FakeModule,), {}))
    torch = types.ModuleType("torch")
    torch.nn = nn
    safetensors_torch = types.ModuleType("safetensors.torch")
    safetensors_torch.load_file = lambda path: weights(path)
    for name, module in {"torch": torch, "torch.nn": nn, "safetensors.torch": safetensors_torch}.items():
        monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.parametrize("name, architecture", CASES, ids=IDS)
def test_model_py_compiles_and_its_module_matches_the_weights_file(tmp_path, monkeypatch, name, architecture):
    from safetensors.numpy import load_file

    checkpoint, _ = _checkpoint(tmp_path, name, architecture)
    code, weights = export_pytorch(checkpoint, tmp_path / "export")
    assert (code.name, weights.name) == ("model.py", "model.safetensors")
    source = code.read_text()
    compiled = compile(source, str(code), "exec")
    assert "(N, 1, 28, 28)" in source and "pixel / 255" in source and "logits" in source
    _fake_torch(monkeypatch, lambda path: load_file(path))
    namespace = {"__file__": str(code), "__name__": "model"}
    exec(compiled, namespace)
    model = namespace["load"]()
    assert model.training is False  # eval mode
    assert list(model.loaded) == list(expected_shapes(checkpoint.architecture))
    for key, value in torch_state(checkpoint).items():
        np.testing.assert_array_equal(model.loaded[key], value)


def test_model_py_runs_under_real_pytorch_when_it_is_installed(tmp_path, test_images):
    torch = pytest.importorskip("torch")  # not installed in CI; README reports the measured match
    checkpoint, model = _checkpoint(tmp_path, "cnn", ODD)
    code, _ = export_pytorch(checkpoint, tmp_path / "export")
    namespace = {"__file__": str(code), "__name__": "model"}
    exec(compile(code.read_text(), str(code), "exec"), namespace)
    images = test_images[0][:200]
    with torch.no_grad():
        theirs = namespace["load"]()(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(theirs, model.forward(images), rtol=0, atol=1e-4)


# ---- recognising what comes in -----------------------------------------------------------------------------------

def test_the_two_deep_mlps_need_a_hint_and_a_prefix_is_dropped():
    shapes = expected_shapes(preset_architecture("mlp-relu"))
    with pytest.raises(ImportMismatch, match="fit mlp-sigmoid and mlp-relu alike.*--model"):
        recognise(shapes, {})
    assert recognise(shapes, {}, "mlp-relu").model == "mlp-relu"
    wrapped = {f"net.{key}": shape for key, shape in expected_shapes(preset_architecture("cnn")).items()}
    recognised = recognise(wrapped, {})
    assert recognised.model == "cnn" and recognised.names["net.0.weight"] == "0.weight"


def test_a_dropout_the_preset_lacks_is_recognised_by_its_index():
    recognised = recognise(expected_shapes(preset_architecture("cnn", dropout=0.2)), {})
    assert recognised.model == "cnn" and recognised.dropout == 0.2


@pytest.mark.parametrize("change, fragment", [
    (lambda s: {**s, "extra.weight": (3,)}, "unknown tensor name 'extra.weight'"),
    (lambda s: {**s, "7.weight": (1024, 3000)}, "looks like cnn, but tensor '7.weight' has shape (1024, 3000), "
                                                "the model needs (1024, 3136)"),
    (lambda s: {k: v for k, v in s.items() if k != "9.bias"}, "match none of convtui's models"),
])
def test_tensors_that_are_not_one_of_ours_are_refused(change, fragment):
    with pytest.raises(ImportMismatch) as caught:
        recognise(change(expected_shapes(preset_architecture("cnn"))), {})
    assert fragment in str(caught.value)


def _metadata(**changes):
    return {"format": "convtui", "model": "cnn", "architecture": json.dumps(preset_architecture("cnn")),
            "input": INPUT_SCALING, **changes}


@pytest.mark.parametrize("metadata, fragment", [
    (_metadata(model="resnet"), "names model 'resnet'"),
    (_metadata(architecture="{"), "architecture is not valid"),
    (_metadata(architecture=json.dumps({"input_shape": [1, 28, 28], "layers": [{"kind": "LSTM"}]})),
     "unknown layer kind 'LSTM'"),
    (_metadata(architecture=json.dumps(preset_architecture("mlp"))), "for the architecture its metadata records"),
])
def test_metadata_that_does_not_fit_is_refused(metadata, fragment):
    with pytest.raises(ImportMismatch, match=fragment):
        recognise(expected_shapes(preset_architecture("cnn")), metadata)


def test_weights_that_cannot_be_used_are_refused_naming_the_file(tmp_path):
    shapes = expected_shapes(preset_architecture("softmax"))
    good = {key: np.zeros(shape, np.float32) for key, shape in shapes.items()}
    for tensors, metadata, fragment in [
        ({**good, "1.bias": np.zeros(10, np.int32)}, None, "holds I32, not floating-point weights"),
        ({**good, "1.bias": np.full(10, np.nan, np.float32)}, None, "not finite"),
        ({**good, "1.bias": np.full(10, 1e300)}, None, "not finite"),  # F64 beyond float32's range
        (good, {**_metadata(model="softmax", architecture=json.dumps(preset_architecture("softmax"))),
                "input": "(pixel / 255 - 0.1307) / 0.3081"}, "its predictions would be wrong"),
    ]:
        path = st.save(tmp_path / "w.safetensors", tensors, metadata)
        with pytest.raises(ImportMismatch) as caught:
            load_torch_state(path, input_scaling=INPUT_SCALING)
        assert str(caught.value).startswith(f"{path}: ") and fragment in str(caught.value)


def test_float16_and_float64_weights_import_as_float32(tmp_path):
    checkpoint, model = _checkpoint(tmp_path, "softmax")
    for dtype in (np.float16, np.float64):
        tensors = {key: value.astype(dtype) for key, value in torch_state(checkpoint).items()}
        _, state = load_torch_state(st.save(tmp_path / "w.safetensors", tensors))
        expected = model.state_dict()["output.w"].astype(dtype).astype(np.float32)
        np.testing.assert_array_equal(state["output.w"], expected)


def test_an_imported_checkpoint_loads_like_a_trained_one(tmp_path):
    checkpoint, model = _checkpoint(tmp_path, "cnn")
    _, state = load_torch_state(export_safetensors(checkpoint, tmp_path / "m.safetensors"))
    rebuilt = build_model("cnn", seed=0)
    rebuilt.load_state_dict(state)
    save_checkpoint(tmp_path / "imported.npz", model=rebuilt, optimizer=None, config=TrainConfig.for_model("cnn"),
                    epoch=0)
    loaded, _ = load_model(tmp_path / "imported.npz")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)
