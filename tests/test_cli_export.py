"""`convtui export` and `convtui import` as a user runs them: files written, exit codes, one-line errors."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from convtui.core.nn.architectures import build_model
from convtui.core.storage import safetensors_format as st
from convtui.core.storage.checkpoint import load_checkpoint, load_model, save_checkpoint
from convtui.core.storage.run_folder import read_run
from convtui.core.training.config import TrainConfig
from tests.test_cli import assert_one_line_error, convtui, env

pytestmark = pytest.mark.slow  # every test starts `python -m convtui`


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with a softmax checkpoint whose weights are not the initial ones."""
    folder = tmp_path_factory.mktemp("exports") / "softmax"
    folder.mkdir()
    model = build_model("softmax", seed=4)
    for p in model.params():
        p.value += np.random.default_rng(4).normal(scale=0.05, size=p.value.shape).astype(np.float32)
    save_checkpoint(folder / "checkpoint.npz", model=model, optimizer=None, config=TrainConfig.for_model("softmax"),
                    epoch=1)
    return folder


def test_every_format_exports_and_an_import_evaluates_identically(run_dir, tmp_path):
    out = tmp_path / "exports"
    for fmt, target in (("safetensors", "m.safetensors"), ("pytorch", "torch"), ("onnx", "m.onnx")):
        result = convtui("export", run_dir, "--format", fmt, "--out", out / target)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"exported softmax (1 epoch trained, {run_dir / 'checkpoint.npz'}) as {fmt}:")
    assert sorted(p.name for p in (out / "torch").iterdir()) == ["model.py", "model.safetensors"]
    assert (out / "m.onnx").stat().st_size > 784 * 10 * 4

    imported = tmp_path / "imported"
    result = convtui("import", out / "m.safetensors", "--out", imported)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (f"imported softmax from {out / 'm.safetensors'} (recognised by its "
                                             f"metadata) into {imported}")
    run = read_run(imported)  # what the Runs screen reads
    assert run.model_name == "softmax" and run.epochs == [] and run.checkpoint == imported / "checkpoint.npz"
    original, _ = load_model(run_dir / "checkpoint.npz")
    again, _ = load_model(imported / "checkpoint.npz")
    for key, value in original.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value)
    resumable = load_checkpoint(imported / "checkpoint.npz")  # a fresh optimiser, for `train --resume`
    assert int(resumable.optimizer_state["t"]) == 0 and not resumable.optimizer_state["output.w/velocity"].any()
    accuracies = [convtui("eval", folder, "--threads", "1").stdout.splitlines()[1] for folder in (run_dir, imported)]
    assert accuracies[0].startswith("test accuracy: ") and accuracies[0] == accuracies[1]


def test_the_format_follows_the_suffix_when_not_given(run_dir, tmp_path):
    result = convtui("export", run_dir / "checkpoint.npz", "--out", tmp_path / "w.safetensors")
    assert result.returncode == 0, result.stderr
    assert st.read_header(tmp_path / "w.safetensors").metadata["model"] == "softmax"


def _bad_files(folder, good):
    """name -> the fragment its one-line error must hold."""
    raw = good.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    resized = json.dumps({**header, "1.bias": {**header["1.bias"], "shape": [5]}}).encode()
    arrays, _ = st.load(good)
    st.save(folder / "unknown-names.safetensors",
            {("classifier.weight" if key == "1.weight" else key): value for key, value in arrays.items()})
    contents = {
        "truncated.safetensors": (raw[:8 + length // 2], "follow (truncated)"),
        "oversized.safetensors": (struct.pack("<Q", 1 << 33) + raw[8:], "more than the 16 MB allowed"),
        # a header whose shape disagrees with its byte range
        "wrong-shape.safetensors": (struct.pack("<Q", len(resized)) + resized + raw[8 + length:], "does not fill its"),
        "notes.txt": (b"these are not weights\n", "not a valid safetensors file"),
        "empty.safetensors": (b"", "shorter than the 8-byte header length"),
    }
    for name, (content, _) in contents.items():
        (folder / name).write_bytes(content)
    return {"unknown-names.safetensors": "unknown tensor name 'classifier.weight'",
            **{name: fragment for name, (_, fragment) in contents.items()}}


def test_bad_files_are_refused_with_one_line_and_exit_1(run_dir, tmp_path):
    good = tmp_path / "good.safetensors"
    assert convtui("export", run_dir, "--format", "safetensors", "--out", good).returncode == 0
    for name, fragment in _bad_files(tmp_path, good).items():
        out = tmp_path / f"run-{name}"
        result = convtui("import", tmp_path / name, "--out", out)
        assert_one_line_error(result, 1, fragment)
        assert result.stderr.startswith(f"convtui import: error: {tmp_path / name}: ")
        assert not out.exists()  # refused before the folder is made


def test_a_state_dict_for_another_model_and_wrong_shapes_are_refused(tmp_path):
    other = st.save(tmp_path / "resnet.safetensors", {"conv1.weight": np.zeros((8, 3, 7, 7), np.float32)})
    assert_one_line_error(convtui("import", other, "--out", tmp_path / "a"), 1, "unknown tensor name 'conv1.weight'")
    cnn_like = {"0.weight": np.zeros((32, 1, 5, 5), np.float32), "0.bias": np.zeros(32, np.float32),
                "3.weight": np.zeros((64, 32, 5, 5), np.float32), "3.bias": np.zeros(64, np.float32),
                "7.weight": np.zeros((1024, 3000), np.float32), "7.bias": np.zeros(1024, np.float32),
                "9.weight": np.zeros((10, 1024), np.float32), "9.bias": np.zeros(10, np.float32)}
    wrong = st.save(tmp_path / "wrong.safetensors", cnn_like)
    assert_one_line_error(convtui("import", wrong, "--out", tmp_path / "b"), 1,
                          "looks like cnn, but tensor '7.weight' has shape (1024, 3000), the model needs (1024, 3136)")


def test_import_refuses_a_checkpoint_and_an_existing_run(run_dir, tmp_path):
    assert_one_line_error(convtui("import", run_dir / "checkpoint.npz", "--out", tmp_path / "x"), 1,
                          "is a convtui checkpoint, not a safetensors file")
    good = tmp_path / "good.safetensors"
    assert convtui("export", run_dir, "--out", good).returncode == 0
    assert_one_line_error(convtui("import", good, "--out", run_dir), 2, "already holds a run")


def test_export_errors(run_dir, tmp_path):
    assert_one_line_error(convtui("export", tmp_path / "nothing", "--format", "onnx", "--out", tmp_path / "m.onnx"),
                          1, "no such checkpoint file")
    assert_one_line_error(convtui("export", run_dir, "--format", "onnx", "--out", tmp_path), 2,
                          "is a folder; the onnx format writes one file")
    result = convtui("export", run_dir, "--format", "tflite", "--out", tmp_path / "m")
    assert result.returncode == 2 and "invalid choice: 'tflite'" in result.stderr


def test_a_missing_onnx_package_is_one_line_saying_how_to_install_it(run_dir, tmp_path):
    shadow = tmp_path / "shadow" / "onnx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named onnx')\n")
    command = ["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]
    result = subprocess.run(
        [sys.executable, "-m", "convtui", *command],
        env={**env(), "PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), env()["PYTHONPATH"]])},
        capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, 1, "install it with pip install 'convtui[export]'")
    assert not (tmp_path / "m.onnx").exists()


def test_exporting_and_importing_load_neither_torch_nor_onnx_until_asked():
    code = ("import sys\n"
            "import convtui.core.storage.export_pytorch, convtui.core.storage.export_onnx\n"
            "import convtui.core.storage.torch_names, convtui.core.storage.safetensors_format\n"
            "import convtui.commands.export, convtui.commands.import_run\n"
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'safetensors', 'textual')\n"
            "             if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_exporting_over_an_earlier_export_says_which_files_it_replaced(run_dir, tmp_path):
    """Exporting again is normal (after more training), so it is not refused; but a file written over is named as
    replaced, every format, and a first export says nothing of the kind."""
    for fmt, target, names in (("safetensors", "m.safetensors", ["m.safetensors"]),
                               ("pytorch", "torch", ["model.py", "model.safetensors"]),
                               ("onnx", "m.onnx", ["m.onnx"])):
        first = convtui("export", run_dir, "--format", fmt, "--out", tmp_path / target)
        assert first.returncode == 0, first.stderr
        assert "replaced" not in first.stdout
        again = convtui("export", run_dir, "--format", fmt, "--out", tmp_path / target)
        assert again.returncode == 0, again.stderr
        lines = again.stdout.splitlines()[1:]
        assert len(lines) == len(names) and all(line.endswith(", replaced the file that was there)") for line in lines)
        assert [line.split()[0].rsplit("/", 1)[-1] for line in lines] == names
