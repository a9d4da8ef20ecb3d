"""The IDX and checkpoint loaders under fire: seeded mutated inputs (benchmarks/fuzz_loaders.py's mutators) may
load or raise the project's own error, nothing else; and one regression test per hole issue 10 measured.

The long run (100,000+ inputs per loader) is `python benchmarks/fuzz_loaders.py`; these are a few thousand."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmarks.fuzz_loaders import (CheckpointMutator, CheckpointRunner, IdxMutator, IdxRunner, gzip_bomb,
                                     idx_bytes, npy_bytes, npy_with_header, read_members, seed_checkpoints,
                                     write_members)
from convtui.core.nn.architectures import build_model
from convtui.core.nn.optimizers import make_optimizer
from convtui.core.storage.checkpoint import (CheckpointError, load_checkpoint, load_model, restore_optimizer,
                                             restore_params)
from convtui.core.storage.datasets import DataError, Dataset, load_split, read_idx, to_float

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return seed_checkpoints(tmp_path_factory.mktemp("seeds"))


def _replace_meta(data: bytes, change) -> bytes:
    members = read_members(data)
    meta = json.loads(np.load(__import__("io").BytesIO(dict(members)["meta.npy"])).tobytes())
    text = change(meta)
    text = text if isinstance(text, bytes) else json.dumps(meta).encode()
    return write_members([(n, npy_bytes(np.frombuffer(text, np.uint8)) if n == "meta.npy" else p)
                          for n, p in members])


def _replace_member(data: bytes, name: str, payload: bytes) -> bytes:
    return write_members([(n, payload if n == name else p) for n, p in read_members(data)])


# ---------------------------------------------------------------------------------------------- fuzzing
def test_fuzzed_checkpoints_load_or_raise_checkpoint_error(seeds, tmp_path):
    mutator, runner = CheckpointMutator(seeds, seed=1), CheckpointRunner(tmp_path)
    outcomes = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        for index in range(600):
            kind, data = mutator.case(index)
            outcome = runner.run(data)  # anything but CheckpointError escapes and fails the test, naming the case
            outcomes[outcome == "loaded"] = outcomes.get(outcome == "loaded", 0) + 1
    # Both sides are exercised: a fuzzer whose every input fails at the zip layer would prove little.
    assert outcomes[True] > 20 and outcomes[False] > 400


def test_fuzzed_idx_files_load_or_raise_data_error(tmp_path):
    mutator, runner = IdxMutator(seed=1), IdxRunner(tmp_path)
    loaded = sum(runner.run(*mutator.case(index)[1:]) == "loaded" for index in range(2000))
    assert 100 < loaded < 1500


# ---------------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("compression", [zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2])
def test_unsupported_compression_is_named(seeds, tmp_path, compression):
    path = tmp_path / "c.npz"
    path.write_bytes(write_members(read_members(seeds["softmax-adam"]), compression))
    with pytest.raises(CheckpointError, match="uses an unsupported compression"):
        load_checkpoint(path)


def test_encrypted_member_is_named(seeds, tmp_path):
    path = tmp_path / "c.npz"
    path.write_bytes(write_members(read_members(seeds["softmax-adam"]), flags={"param/output.w.npy": 1}))
    with pytest.raises(CheckpointError, match="'param/output.w.npy' is encrypted"):
        load_checkpoint(path)


def test_damaged_deflate_data(seeds, tmp_path):
    raw = bytearray(write_members(read_members(seeds["softmax-adam"]), zipfile.ZIP_DEFLATED))
    raw[2000:2040] = bytes(range(40))
    path = tmp_path / "c.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged"):
        load_model(path)


@pytest.mark.parametrize("payload, message", [
    (b"just some text", "damaged checkpoint"),
    (npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }",
                     bytes(64)), "more than the bytes it holds"),
    (npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (100000,), }", bytes(400_000)),
     "more than this archive may hold"),
    (npy_with_header("{'descr': '<f4'", bytes(64)), "damaged checkpoint"),
    (npy_bytes(np.zeros(3, dtype=[("a", "<f4")])), "not plain numbers"),
    (npy_bytes(np.array(["abc"])), "not plain numbers"),
    (npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True), "not plain numbers"),
    (npy_bytes(np.zeros((784, 10), np.int32)), "holds int32, not floating-point"),
], ids=["text", "terabytes", "larger-than-architecture", "cut-header", "structured", "string", "object", "int"])
def test_bad_weight_member(seeds, tmp_path, payload, message):
    path = tmp_path / "c.npz"
    path.write_bytes(_replace_member(seeds["softmax-adam"], "param/output.w.npy", payload))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


@pytest.mark.parametrize("value", [np.array(1.5), np.array([1, 2]), np.array(-1), np.array("3")])
def test_step_counter_must_be_one_whole_number(seeds, tmp_path, value):
    path = tmp_path / "c.npz"
    path.write_bytes(_replace_member(seeds["softmax-adam"], "opt/t.npy", npy_bytes(value)))
    with pytest.raises(CheckpointError, match="opt/t must be one whole number|not plain numbers"):
        load_checkpoint(path)


@pytest.mark.parametrize("change, message", [
    (lambda meta: b"[1, 2, 3]", "not a convtui checkpoint"),
    (lambda meta: meta.update(epoch="1"), "epoch must be a whole number"),
    (lambda meta: b'{"format": "convtui-checkpoint", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "nested too deeply"),
    (lambda meta: meta["rng"].update(shuffle={"bit_generator": "PCG64", "state": [1, 2]}),
     "shuffle random state is not a PCG64 state"),
    (lambda meta: meta["rng"].update(dropout=[[1, 2]]), "dropout random state"),
    (lambda meta: meta["architecture"]["layers"][1].update(out_features=10 ** 30), "out_features must be"),
    (lambda meta: meta["architecture"]["layers"][1].update(in_features=-784), "in_features must be"),
    (lambda meta: meta["architecture"]["layers"][1].update(kind="LSTM"), "unknown layer kind 'LSTM'"),
    (lambda meta: meta["architecture"]["layers"][1].update(kind=["Dense"]), "its architecture is not valid"),
    (lambda meta: meta["architecture"]["layers"][1].update(init={"a": 1}), "its architecture is not valid"),
    (lambda meta: meta["architecture"].update(input_shape=[4096, 4096, 4096]), "its architecture is not valid"),
    (lambda meta: meta["config"].update(lr=10 ** 400), "its saved config is not valid"),
])
def test_bad_metadata(seeds, tmp_path, change, message):
    path = tmp_path / "c.npz"
    path.write_bytes(_replace_meta(seeds["softmax-adam"], change))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_pooled_down_huge_input_is_refused(seeds, tmp_path):
    # Weights within every limit, but one image would be 64 GiB: `eval` would try to allocate it.
    def change(meta):
        meta["architecture"] = {"input_shape": [2, 4096, 4096], "layers": [
            {"kind": "MaxPool2D", "name": "pool", "pool": [4096, 4096], "stride": [4096, 4096]},
            {"kind": "Flatten", "name": "flatten"},
            {"kind": "Dense", "name": "output", "in_features": 2, "out_features": 10, "init": "zeros"}]}
    path = tmp_path / "c.npz"
    path.write_bytes(_replace_meta(seeds["softmax-adam"], change))
    with pytest.raises(CheckpointError, match=r"its input is \(2, 4096, 4096\) per image"):
        load_checkpoint(path)


def test_what_loads_also_restores_into_a_fresh_model_or_says_why(seeds, tmp_path):
    # The cnn-shaped file (8x8 inputs) loads and rebuilds, but a resumed `--model cnn` run has 28x28 weights.
    path = tmp_path / "c.npz"
    path.write_bytes(seeds["cnn8-adam"])
    model, checkpoint = load_model(path)
    assert model.forward(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 10)
    with pytest.raises(CheckpointError, match="conv1.w|dense1.w"):
        restore_params(build_model("cnn", seed=0), checkpoint, "cnn")
    path.write_bytes(seeds["softmax-sgd"])
    fresh = build_model("softmax", seed=0)
    restore_params(fresh, load_checkpoint(path), "softmax")
    with pytest.raises(CheckpointError, match="optimizer state does not fit"):
        restore_optimizer(make_optimizer("adam", fresh.params()), load_checkpoint(path))


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest, with its fixtures).
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024"
HUGE_MEMBER = textwrap.dedent("""
    import sys
    from convtui.core.storage.checkpoint import CheckpointError, load_model
    try:
        load_model(sys.argv[1])
        outcome = "loaded"
    except CheckpointError as exc:
        outcome = str(exc)
    print(PEAK, outcome)
""").replace("PEAK", PEAK)


def _peak_rss_mb(path) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-c", HUGE_MEMBER, str(path)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    peak, _, outcome = result.stdout.strip().partition(" ")
    return int(peak), outcome


def test_a_huge_member_is_refused_in_bounded_memory(seeds, tmp_path):
    # 900 MB of zeros deflate to under 1 MB. Before: read whole (twice, with the copy), then refused late.
    members = read_members(seeds["softmax-adam"])
    size = 900 << 20
    bomb = npy_with_header(f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({size // 4},), }}", bytes(size))
    path = tmp_path / "bomb.npz"
    path.write_bytes(write_members(members + [("param/huge.npy", bomb)], zipfile.ZIP_DEFLATED))
    del bomb
    assert path.stat().st_size < 2 << 20
    baseline, _ = _peak_rss_mb(tmp_path / "missing.npz")
    peak, outcome = _peak_rss_mb(path)
    assert "more than this archive may hold" in outcome
    assert peak - baseline < 64, (baseline, peak)


# ---------------------------------------------------------------------------------------------- IDX
def test_dimensions_multiplying_past_2_64_are_refused(tmp_path):
    path = tmp_path / "images.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3 + bytes(100))
    with pytest.raises(DataError, match=r"4,294,967,295 examples, more than the 10,000,000 allowed"):
        read_idx(path, ndim=3)
    path.write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + b"\xff\xff\xff\xff" * 2 + bytes(100))
    with pytest.raises(DataError, match="dimension 2, more than the 4,096 allowed"):
        read_idx(path, ndim=3)
    path.write_bytes(bytes([0, 0, 8, 3]) + (10_000_000).to_bytes(4, "big") + (4096).to_bytes(4, "big") * 2)
    with pytest.raises(DataError, match="more than the 1024 MB allowed"):
        read_idx(path, ndim=3)


def test_trailing_bytes_and_short_data_are_refused(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)) + b"x")
    with pytest.raises(DataError, match=r"header says shape \(5,\) \(13 bytes\) but the file holds more"):
        read_idx(path, ndim=1)
    path.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8))[:-1])
    with pytest.raises(DataError, match=r"\(13 bytes\) but the file holds 12 bytes"):
        read_idx(path, ndim=1)


def test_a_gzip_bomb_fails_fast_in_bounded_memory(tmp_path):
    # 2 GiB of zeros behind a header that promises 5 images of 28x28 (about 2 MB on disk).
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip_bomb(bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2,
                               2 << 30))
    assert path.stat().st_size < 3 << 20
    script = textwrap.dedent("""
        import sys, time
        from convtui.core.storage.datasets import DataError, read_idx
        start = time.perf_counter()
        try:
            read_idx(sys.argv[1], ndim=3)
        except DataError as exc:
            print(PEAK, time.perf_counter() - start, exc)
    """).replace("PEAK", PEAK)
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    peak, seconds, message = result.stdout.split(" ", 2)
    assert "holds more bytes than that" in message, result.stderr
    assert int(peak) < 200 and float(seconds) < 2.0, (peak, seconds)


def test_a_short_file_claiming_a_large_shape_costs_only_what_it_holds(tmp_path):
    path = tmp_path / "images.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + (1_000_000).to_bytes(4, "big") + (32).to_bytes(4, "big") * 2 + bytes(10))
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"\(1024000016 bytes\) but the file holds 26 bytes"):
        read_idx(path, ndim=3)
    assert time.perf_counter() - started < 1.0


def test_other_image_sizes_load_when_the_caller_accepts_them(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 30), dtype=np.uint8)
    labels = np.array([0, 3, 1, 3], dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    data = load_split("train", tmp_path, image_size=None)
    assert data.input_shape == (1, 32, 30) and to_float(data.images).shape == (4, 1, 32, 30)
    assert data.n_classes == 10  # MNIST-like folders declare 10 classes, whatever a few labels show
    with pytest.raises(DataError, match="images are 32x30, expected 28x28"):
        load_split("train", tmp_path)
    with pytest.raises(DataError, match="label 3 at index 1 is outside 0-2"):
        load_split("train", tmp_path, image_size=None, n_classes=3)


def test_class_count_is_never_below_what_the_labels_need():
    images = np.zeros((3, 28, 28), np.uint8)
    assert Dataset(images, np.array([0, 4, 2], np.uint8)).n_classes == 5  # no declared count: from the labels
    assert Dataset(images, np.array([0, 4, 2], np.uint8), classes=10).n_classes == 10
    assert Dataset(images, np.array([0, 11, 2], np.uint8), classes=10).n_classes == 12
    full = Dataset(images, np.array([0, 9, 2], np.uint8))
    assert full.head(1).n_classes == 10  # a subset keeps its parent's count though it holds only label 0
    assert full.input_shape == (1, 28, 28)
