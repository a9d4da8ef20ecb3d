"""Fuzz the IDX and checkpoint loaders: every input must load or raise the project's own error, quickly.

    python benchmarks/fuzz_loaders.py                               # 100,000 inputs per loader, seed 0
    python benchmarks/fuzz_loaders.py --loader idx --cases 5000 --seed 3

Inputs start from real files (checkpoints written by `save_checkpoint` for softmax, mlp and cnn presets;
IDX files like MNIST's, plain and gzipped) and go through a seeded mutator: byte flips, truncations and
insertions anywhere; zip members rewritten as encrypted, with unknown or LZMA/bzip2 compression, damaged deflate
data, lying sizes; damaged `.npy` headers, members that are not `.npy`, structured/string/object dtypes,
headers claiming terabytes; `meta` JSON of the wrong types, nested past the recursion limit, with bad random
states and bad architectures; IDX headers with wrong magic, dtype, dimension counts and dimensions whose product
passes 2^64, and gzip bombs. A loaded checkpoint must also be usable: `load_model`, a forward pass, and what a
resumed Trainer does with it (restore weights, optimiser and random states into a fresh preset model).

Prints counts by outcome (loaded, or each kind of error message with paths and numbers blanked), every
unexpected exception with the case that raised it (replay it with `--seed S --first K --cases 1`), the slowest
case against the per-case limit, and the process's peak RSS. Exit code 1 when anything unexpected happened.
Files are written under /dev/shm when it exists, so each case costs little beyond the loader itself.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import io
import json
import re
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from pathlib import Path

import numpy as np

from convtui.core.nn.architectures import build_from_architecture, build_model, dropout_layers, preset_architecture
from convtui.core.nn.optimizers import make_optimizer
from convtui.core.storage.checkpoint import (CheckpointError, load_checkpoint, load_model, restore_optimizer,
                                             restore_params, save_checkpoint)
from convtui.core.storage.datasets import DataError, read_idx
from convtui.core.training.bench import model_flops
from convtui.core.training.config import TrainConfig

INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 10, 28, 255, 256, 4096, 4097, 65535, 1 << 24, 1 << 26, (1 << 26) + 1,
                    1 << 31, (1 << 31) - 1, 1 << 32, (1 << 32) - 1, 1 << 53, 1 << 63, (1 << 64) + 1, 10 ** 30,
                    -(1 << 63), 10 ** 400]
INTERESTING_VALUES = INTERESTING_INTS + [0.5, -0.0, 1e308, 2.5, float("nan"), float("inf"), True, False, None,
                                         "", "x", "5", "cnn", "mlp", "same", "Conv2D", "Dense", [], {}, [1, 2],
                                         [2, 2, 2], {"a": 1}, [None], "\udcff"[:0] + "é"]
NPY_DTYPES = ["<f4", ">f4", "<f8", "<f2", "<i4", "<i8", "|u1", "|b1", "<c8", "<U10", "|S4", "|O", "|V8",
              "<M8[s]", "<m8[s]", "[('a', '<f4')]", "[('a', '<f4'), ('b', '<i4')]", "('<f4', (2, 2))", "'<f4'",
              "<f16", "<q", "float32", "|u8"]
NPY_SHAPES = ["()", "(0,)", "(1099511627776,)", "(1099511627776, 1099511627776)", "(-1,)", "(10,)",
              "(784, 10)", "(10, 784)", "(2**64,)", "('a',)", "[784, 10]", "(1.5,)", "(True,)", "None",
              "(18446744073709551616,)", "(4611686018427387904, 4)"]


# ---------------------------------------------------------------------------------------------- seed files
def _checkpoint_bytes(folder: Path, name: str, model_name: str, optimizer: str, architecture: dict | None = None,
                      momentum: float = 0.0) -> bytes:
    config = TrainConfig.for_model(model_name, epochs=3, seed=5, optimizer=optimizer, momentum=momentum)
    if architecture is None:
        model = build_model(model_name, seed=5, dropout=config.dropout)
    else:
        model = build_from_architecture(architecture, seed=5)
    opt = make_optimizer(optimizer, model.params(), momentum=momentum)
    rng = np.random.default_rng(1)
    for p in model.params():
        p.grad[...] = rng.standard_normal(p.value.shape)
    opt.step(0.01)
    history = [{"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.91, "lr": 0.01}]
    rng_states = {"shuffle": np.random.default_rng(7).bit_generator.state,
                  "dropout": [layer.rng.bit_generator.state for layer in dropout_layers(model)]}
    path = save_checkpoint(folder / f"{name}.npz", model=model, optimizer=opt, config=config, epoch=1,
                           history=history, rng_states=rng_states)
    return path.read_bytes()


def seed_checkpoints(folder: Path) -> dict[str, bytes]:
    """Real checkpoints: presets where they are small enough to fuzz by the hundred thousand (softmax, mlp),
    and the cnn preset built for 8x8 inputs (the same layers; its 28x28 self is 13 MB)."""
    small_cnn = preset_architecture("cnn", input_shape=(1, 8, 8))
    return {
        "softmax-adam": _checkpoint_bytes(folder, "softmax-adam", "softmax", "adam"),
        "softmax-sgd": _checkpoint_bytes(folder, "softmax-sgd", "softmax", "sgd", momentum=0.9),
        "mlp-sgd": _checkpoint_bytes(folder, "mlp-sgd", "mlp", "sgd"),
        "cnn8-adam": _checkpoint_bytes(folder, "cnn8-adam", "cnn", "adam", architecture=small_cnn),
    }


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


# ---------------------------------------------------------------------------------------------- byte mutations
def mutate_bytes(rng: np.random.Generator, data: bytes) -> tuple[str, bytes]:
    """One damage anywhere in `data`: flips, overwritten runs, truncation, insertion, deletion, duplication."""
    raw = bytearray(data)
    choice = int(rng.integers(7))
    where = int(rng.integers(max(len(raw), 1)))
    if choice == 0:
        for _ in range(int(rng.integers(1, 9))):
            if raw:
                raw[int(rng.integers(len(raw)))] ^= 1 << int(rng.integers(8))
        return "bit flips", bytes(raw)
    if choice == 1:
        run = int(rng.integers(1, 65))
        fill = [bytes(run), b"\xff" * run, rng.bytes(run)][int(rng.integers(3))]
        raw[where:where + run] = fill
        return "overwritten run", bytes(raw)
    if choice == 2:
        return "truncated", bytes(raw[:where])
    if choice == 3:
        raw[where:where] = rng.bytes(int(rng.integers(1, 257)))
        return "inserted bytes", bytes(raw)
    if choice == 4:
        del raw[where:where + int(rng.integers(1, 257))]
        return "deleted bytes", bytes(raw)
    if choice == 5:
        run = int(rng.integers(1, 513))
        raw[where:where] = raw[where:where + run]
        return "duplicated run", bytes(raw)
    return "random bytes", rng.bytes(int(rng.integers(0, 2048)))


# ---------------------------------------------------------------------------------------------- checkpoints
def read_members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def write_members(members, compression=zipfile.ZIP_STORED, flags: dict | None = None) -> bytes:
    """An archive of (name, bytes) members; `flags` maps a name to extra ZipInfo.flag_bits."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            if flags and name in flags:
                info.flag_bits |= flags[name]
            archive.writestr(info, payload)
    data = bytearray(buffer.getvalue())
    for name in flags or {}:  # zipfile clears flag bits on writing: set them in both headers afterwards
        encoded = name.encode()
        for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
            for match in re.finditer(re.escape(signature), bytes(data)):
                if data[match.start() + name_at:match.start() + name_at + len(encoded)] == encoded:
                    data[match.start() + flag_at] |= flags[name]
    return bytes(data)


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy_with_header(header: str, body: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    text = (header + " " * (64 - (len(header) + 11) % 64) + "\n").encode("latin-1", "replace")
    if version == (1, 0):
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text) % 65536) + text + body
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(text)) + text + body


def random_json(rng: np.random.Generator, depth: int = 0):
    kind = int(rng.integers(6 if depth < 3 else 3))
    if kind < 3:
        return INTERESTING_VALUES[int(rng.integers(len(INTERESTING_VALUES)))]
    if kind == 3:
        return [random_json(rng, depth + 1) for _ in range(int(rng.integers(4)))]
    if kind == 4:
        return {str(random_json(rng, 3))[:8]: random_json(rng, depth + 1) for _ in range(int(rng.integers(4)))}
    return "x" * int(rng.integers(0, 200))


def _paths(value, prefix=()):
    """Every path into a JSON tree, so a mutation can land anywhere (deep inside the architecture too)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _set(tree, path, value):
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def mutate_meta(rng: np.random.Generator, meta: dict) -> tuple[str, bytes]:
    """A semantic change to the metadata, returned as the member's new JSON bytes."""
    meta = json.loads(json.dumps(meta))
    choice = int(rng.integers(10))
    if choice == 0:
        depth = int(rng.integers(500, 200_000))
        depth = int(rng.choice([1_500, 5_000, depth]))
        opener, closer = [("[", "]"), ('{"a":', "}")][int(rng.integers(2))]
        key = ["architecture", "config", "rng", "history", "epoch"][int(rng.integers(5))]
        text = json.dumps({**meta, key: None}).replace(f'"{key}": null', f'"{key}": ' + opener * depth + "1" + closer * depth)
        return "deeply nested meta", text.encode()
    if choice == 1:
        return "meta not an object", json.dumps(random_json(rng, 1) if rng.random() < 0.7 else [meta]).encode()
    if choice == 2:
        text = json.dumps(meta).encode()
        return ("meta bytes damaged",) + mutate_bytes(rng, text)[1:] if rng.random() < 0.7 else (
            "meta not UTF-8", text[:20] + b"\xff\xfe" + text[20:])
    paths = [p for p in _paths(meta) if p]
    path = paths[int(rng.integers(len(paths)))]
    if choice == 3:  # the spots a loader leans on hardest
        hot = [("epoch",), ("version",), ("model",), ("optimizer",), ("format",), ("architecture",),
               ("architecture", "input_shape"), ("rng",), ("rng", "shuffle"), ("rng", "dropout"), ("history",),
               ("config",), ("config", "threads"), ("config", "batch_size"), ("config", "model")]
        path = hot[int(rng.integers(len(hot)))]
    target = meta
    try:
        for key in path[:-1]:
            target = target[key]
    except (KeyError, IndexError, TypeError):
        target = meta
        path = (path[0],)
    leaf = path[-1]
    action = int(rng.integers(6))
    if action == 0 and isinstance(target, dict):
        target.pop(leaf, None)
        name = "meta key removed"
    elif action == 1 and isinstance(target, list) and target:
        target.append(target[int(rng.integers(len(target)))])
        name = "meta list grown"
    elif action == 2:
        value = INTERESTING_VALUES[int(rng.integers(len(INTERESTING_VALUES)))]
        _set(meta, path, value)
        name = "meta value interesting"
    elif action == 3 and isinstance(target, dict):
        target[str(random_json(rng, 3))[:10]] = random_json(rng)
        name = "meta key added"
    else:
        _set(meta, path, random_json(rng))
        name = "meta value random"
    return name, json.dumps(meta).encode()


def mutate_shuffle_state(rng, meta):
    meta = json.loads(json.dumps(meta))
    state = meta.setdefault("rng", {}).setdefault("shuffle", np.random.default_rng(0).bit_generator.state)
    choices = [
        lambda: state["state"].update(state=[1, 2]), lambda: state["state"].update(inc=-5),
        lambda: state.update(bit_generator="MT19937"), lambda: state.update(state=[0] * 624),
        lambda: state.update(has_uint32=[1]), lambda: state.update(uinteger=1 << 70),
        lambda: state["state"].update(state=1 << 200), lambda: state.pop("state"),
        lambda: meta["rng"].update(dropout=[state] * 65), lambda: meta["rng"].update(dropout=[[1, 2]]),
        lambda: meta["rng"].update(dropout={"a": 1}), lambda: meta["rng"].update(shuffle=[1, 2, 3]),
    ]
    choices[int(rng.integers(len(choices)))]()
    return "bad random state", json.dumps(meta).encode()


def mutate_architecture(rng, meta):
    meta = json.loads(json.dumps(meta))
    architecture = meta.get("architecture") or {"input_shape": [1, 28, 28], "layers": []}
    layers = architecture.get("layers") or []
    choice = int(rng.integers(8))
    if choice == 0 and layers:
        layer = layers[int(rng.integers(len(layers)))]
        keys = [k for k in layer if k != "kind"] or ["x"]
        layer[keys[int(rng.integers(len(keys)))]] = INTERESTING_VALUES[int(rng.integers(len(INTERESTING_VALUES)))]
    elif choice == 1 and layers:
        layers[int(rng.integers(len(layers)))]["kind"] = ["Conv3D", "LSTM", "", None, 7, "Softmax", "Param",
                                                          "Dense", "Conv2D"][int(rng.integers(9))]
    elif choice == 2:
        architecture["input_shape"] = [INTERESTING_INTS[int(rng.integers(len(INTERESTING_INTS)))]
                                       for _ in range(int(rng.integers(0, 5)))]
    elif choice == 3 and layers:
        del layers[int(rng.integers(len(layers)))]
    elif choice == 4 and layers:
        layers.insert(int(rng.integers(len(layers) + 1)), dict(layers[int(rng.integers(len(layers)))]))
    elif choice == 5:
        architecture["layers"] = layers * int(rng.integers(2, 70))
    elif choice == 6 and layers:  # large but consistent: a huge layer that the weights do not match
        for layer in layers:
            if layer.get("kind") == "Dense":
                layer["out_features" if layer.get("name") != "output" else "in_features"] = int(
                    rng.choice([1 << 12, 1 << 20, 1 << 26]))
    else:
        architecture["input_shape"] = [1, int(rng.choice([1, 8, 28, 4096])), int(rng.choice([1, 8, 28, 4096]))]
    meta["architecture"] = architecture
    return "bad architecture", json.dumps(meta).encode()


class CheckpointMutator:
    """Seeded: `case(i)` is the i-th input, the same for one seed every time."""

    def __init__(self, seeds: dict[str, bytes], seed: int):
        self.seed = seed
        self.seeds = [(name, data, read_members(data)) for name, data in seeds.items()]
        self.weights = np.array([0.45, 0.2, 0.1, 0.25])[:len(self.seeds)]
        self.weights /= self.weights.sum()
        self._archives = {}  # (base, compression, extra) -> archive bytes: LZMA and bzip2 cost ~50 ms to write

    def _archive(self, members, compression, extra=()):
        key = (self._base, compression, tuple(name for name, _ in extra))
        if key not in self._archives:
            self._archives[key] = write_members(members + list(extra), compression)
        return self._archives[key]

    def case(self, index: int) -> tuple[str, bytes]:
        rng = np.random.default_rng([self.seed, index, 1])
        base_name, base, members = self.seeds[int(rng.choice(len(self.seeds), p=self.weights))]
        self._base = base_name
        kind, data = self._mutate(rng, base, members)
        if rng.random() < 0.08:  # now and then a second, byte-level damage on top
            data = mutate_bytes(rng, data)[1]
            kind += " + bytes"
        return f"{base_name}: {kind}", data

    def _mutate(self, rng, base, members):
        choice = int(rng.integers(100))
        if choice < 22:
            return mutate_bytes(rng, base)
        if choice < 30:
            return self._zip_level(rng, base, members)
        if choice < 45:
            return self._npy_level(rng, members)
        if choice < 57:
            return self._array_level(rng, members)
        meta = json.loads(np.load(io.BytesIO(dict(members)["meta.npy"])).tobytes().decode())
        if choice < 78:
            name, text = mutate_meta(rng, meta)
        elif choice < 84:
            name, text = mutate_shuffle_state(rng, meta)
        elif choice < 96:
            name, text = mutate_architecture(rng, meta)
        else:
            meta["version"] = 1
            meta.pop("architecture", None)
            name, text = "version 1 file", json.dumps(meta).encode()
        return name, self._replace(members, "meta.npy", npy_bytes(np.frombuffer(text, dtype=np.uint8)))

    @staticmethod
    def _replace(members, name, payload, compression=zipfile.ZIP_STORED):
        return write_members([(n, payload if n == name else p) for n, p in members], compression)

    def _zip_level(self, rng, base, members):
        names = [n for n, _ in members]
        target = names[int(rng.integers(len(names)))]
        choice = int(rng.integers(10))
        if choice == 0:
            return "encrypted flag", write_members(members, flags={target: 0x1})
        if choice == 1:
            method = [zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2][int(rng.integers(2))]
            return "LZMA or bzip2 members", self._archive(members, method)
        if choice == 2:  # the compression method field says something no reader knows
            data = bytearray(base)
            method = int(rng.choice([1, 6, 9, 12, 14, 93, 97, 98, 99, 0xFFFF]))
            for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
                for match in re.finditer(re.escape(signature), bytes(data)):
                    if rng.random() < 0.5:
                        struct.pack_into("<H", data, match.start() + offset, method)
            return "unknown compression", bytes(data)
        if choice == 3:  # deflated, then the compressed stream damaged
            data = bytearray(self._archive(members, zipfile.ZIP_DEFLATED))
            for _ in range(int(rng.integers(1, 6))):
                spot = int(rng.integers(40, max(len(data) // 2, 41)))
                data[spot:spot + 4] = rng.bytes(4)
            return "damaged deflate data", bytes(data)
        if choice == 4:  # central directory lies about a member's size
            data = bytearray(base)
            matches = list(re.finditer(b"PK\x01\x02", bytes(data)))
            if matches:
                match = matches[int(rng.integers(len(matches)))]
                size = int(rng.choice([0, 1, 127, 1 << 31, (1 << 32) - 1, 1 << 30]))
                struct.pack_into("<I", data, match.start() + (24 if rng.random() < 0.5 else 20), size)
            return "lying member size", bytes(data)
        if choice == 5:
            return "many members", write_members(members + [(f"param/x{i}.npy", npy_bytes(np.zeros(1, np.float32)))
                                                             for i in range(int(rng.choice([10, 1100])))])
        if choice == 6:
            extra = [("../evil.npy", npy_bytes(np.zeros(2, np.float32))), ("dir/", b""), ("meta.npy", b""),
                     ("param/", npy_bytes(np.zeros(1, np.float32))), ("notes.txt", b"hello"),
                     ("param/dense1.w", b"\x93NUMPY"), ("meta", b"x")][int(rng.integers(7))]
            return "odd member name", write_members(members + [extra])
        if choice == 7:  # a deflate bomb: a member of zeros far larger than anything needed
            size = int(rng.choice([1 << 20, 4 << 20, 64 << 20], p=[0.6, 0.3, 0.1]))
            bomb = npy_with_header(f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({size // 4},), }}",
                                   bytes(size))
            return "deflate bomb member", self._archive(members, zipfile.ZIP_DEFLATED,
                                                        [(f"param/bomb{size}.npy", bomb)])
        if choice == 8:
            return "member removed", write_members([m for m in members if m[0] != target])
        return "members shuffled", write_members([members[i] for i in rng.permutation(len(members))])

    def _npy_level(self, rng, members):
        names = [n for n, _ in members]
        target = names[int(rng.integers(len(names)))]
        payload = dict(members)[target]
        header_end = payload.index(b"\n") + 1
        body = payload[header_end:]
        choice = int(rng.integers(7))
        if choice == 0:  # the header text itself damaged
            header = bytearray(payload[:header_end])
            header[10:] = mutate_bytes(rng, bytes(header[10:]))[1]
            return "damaged npy header", self._replace(members, target, bytes(header) + body)
        descr = NPY_DTYPES[int(rng.integers(len(NPY_DTYPES)))]
        shape = NPY_SHAPES[int(rng.integers(len(NPY_SHAPES)))]
        original = np.lib.format.read_array_header_1_0(io.BytesIO(payload[8:]))
        if choice == 1:
            text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {original[0]}, }}"
            name = "npy dtype changed"
        elif choice == 2:
            text = f"{{'descr': '{original[2].str}', 'fortran_order': False, 'shape': {shape}, }}"
            name = "npy shape claims"
        elif choice == 3:
            text = f"{{'descr': {descr!r}, 'fortran_order': {bool(rng.integers(2))}, 'shape': {shape}, }}"
            name = "npy header random"
        elif choice == 4:
            version = [(1, 0), (2, 0), (3, 0), (9, 9), (0, 0)][int(rng.integers(5))]
            text = f"{{'descr': '{original[2].str}', 'fortran_order': True, 'shape': {original[0]}, }}"
            return "npy version", self._replace(members, target, npy_with_header(text, body, version))
        elif choice == 5:
            return "not npy at all", self._replace(members, target, rng.bytes(int(rng.integers(0, 300))))
        else:
            text = ["{}", "[]", "{'descr': '<f4'}", "{'descr': '<f4', 'fortran_order': 1, 'shape': ()}",
                    "__import__('os')", "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}",
                    "{" * 5000, "{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 300 + ")" * 300 + "}"
                    ][int(rng.integers(8))]
            name = "npy header nonsense"
        return name, self._replace(members, target, npy_with_header(text, body))

    def _array_level(self, rng, members):
        names = [n for n, _ in members if n != "meta.npy"]
        target = names[int(rng.integers(len(names)))]
        original = np.load(io.BytesIO(dict(members)[target]))
        choice = int(rng.integers(9))
        if choice == 0:
            dtype = [np.float16, np.float64, np.int32, np.uint8, np.bool_, np.complex64, ">f4"][int(rng.integers(7))]
            return "array dtype", self._replace(members, target, npy_bytes(original.astype(dtype)))
        if choice == 1:
            array = original.astype(np.float32).copy().ravel()
            if array.size:
                array[int(rng.integers(array.size))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
            return "non-finite value", self._replace(members, target, npy_bytes(array.reshape(original.shape)))
        if choice == 2:
            shape = [(), (0,), (1,), original.shape[::-1], (original.size,), (2, 2)][int(rng.integers(6))]
            array = np.resize(original, shape) if original.size else np.zeros(shape, original.dtype)
            return "array shape", self._replace(members, target, npy_bytes(array))
        if choice == 3:
            value = [np.array(1.5), np.array([1, 2]), np.array(-3), np.array(1 << 62), np.array(True),
                     np.array(np.iinfo(np.uint64).max), np.array("7"), np.array([[7]]), np.array(7, np.int8),
                     np.array(np.nan)][int(rng.integers(10))]
            return "opt/t replaced", self._replace(members, "opt/t.npy", npy_bytes(value))
        if choice == 4:
            value = [np.array([("a", 1.0)], dtype=[("n", "U1"), ("v", "f4")]), np.array(["abc"]),
                     np.array([b"abc"]), np.zeros(3, dtype="V4"), np.array([1], dtype="M8[s]")][int(rng.integers(5))]
            return "structured or string array", self._replace(members, target, npy_bytes(value))
        if choice == 5:
            value = np.array([{"a": 1}, None], dtype=object)
            return "object array (pickle)", self._replace(members, target, npy_bytes(value, allow_pickle=True))
        if choice == 6:
            return "fortran order", self._replace(members, target, npy_bytes(np.asfortranarray(
                original.reshape(original.shape[::-1]).T if original.ndim == 2 else original)))
        if choice == 7:
            extra = [("buffer/dense1.mean.npy", np.zeros(3, np.float32)), ("opt/dense1.w/q.npy", np.zeros(3)),
                     ("param/ghost.w.npy", np.zeros((2, 2), np.float32)), ("stuff.npy", np.zeros(1)),
                     ("opt.npy", np.zeros(1)), ("param/output.b.npy", np.zeros(1, np.float32))][int(rng.integers(6))]
            members = [m for m in members if m[0] != extra[0]]
            return "extra member", write_members(members + [(extra[0], npy_bytes(extra[1]))])
        return "compressed archive", self._archive(members, zipfile.ZIP_DEFLATED)


# ---------------------------------------------------------------------------------------------- checkpoint runs
class CheckpointRunner:
    """Load one input as `convtui eval` and a resumed `convtui train` would, and name the outcome."""

    def __init__(self, folder: Path):
        self.path = folder / "checkpoint.npz"
        self._fresh = {}  # (model, dropout, optimizer, momentum) -> (model, optimizer): built once, reused

    def run(self, data: bytes) -> str:
        self.path.write_bytes(data)
        try:
            checkpoint = load_checkpoint(self.path)
            model, _ = load_model(self.path)
            forward, _ = model_flops(model)
            if forward <= 50_000_000:
                model.forward(np.zeros((1, *model.input_shape), np.float32))
            self._resume(checkpoint)
        except CheckpointError as exc:
            return "CheckpointError: " + message_class(str(exc), self.path)
        return "loaded"

    def _resume(self, checkpoint) -> None:
        """What Trainer._restore_weights and _restore_random_state do, on a fresh preset model."""
        config = checkpoint.config
        key = (config.model, config.dropout, config.optimizer, config.momentum)
        if key not in self._fresh:
            model = build_model(config.model, config.seed, dropout=config.dropout)
            self._fresh[key] = (model, make_optimizer(config.optimizer, model.params(), momentum=config.momentum))
        model, optimizer = self._fresh[key]
        restore_params(model, checkpoint, config.model)
        if checkpoint.meta.get("optimizer") == config.optimizer:
            restore_optimizer(optimizer, checkpoint)
        history = [dict(row) for row in checkpoint.meta.get("history", [])][:checkpoint.epoch]
        assert isinstance(history, list)
        rng = checkpoint.meta.get("rng", {})
        if "shuffle" in rng:
            np.random.default_rng(0).bit_generator.state = rng["shuffle"]
        for layer, state in zip(dropout_layers(model), rng.get("dropout", [])):
            layer.rng.bit_generator.state = state


# ---------------------------------------------------------------------------------------------- IDX
class IdxMutator:
    """Seeded IDX inputs: a small image or label file (sometimes gzipped), damaged in one of many ways."""

    def __init__(self, seed: int):
        self.seed = seed

    def case(self, index: int) -> tuple[str, int, bool, bytes]:
        """(kind, ndim asked for, gzipped?, file bytes)."""
        rng = np.random.default_rng([self.seed, index, 2])
        ndim = 3 if rng.random() < 0.6 else 1
        n = int(rng.integers(0, 40))
        side = [28, 28, 28, 8, 32, 1][int(rng.integers(6))]
        shape = (n, side, side) if ndim == 3 else (n,)
        payload = idx_bytes(rng.integers(0, 256, shape, dtype=np.uint8))
        kind, payload = self._mutate(rng, payload, ndim)
        gzipped = rng.random() < 0.5
        if kind.startswith("gzip bomb"):
            return kind, ndim, True, payload
        if gzipped:
            payload = gzip.compress(payload, compresslevel=1, mtime=0)
            if rng.random() < 0.3:
                kind += ", then gzip damaged"
                payload = mutate_bytes(rng, payload)[1]
        return kind, ndim, gzipped, payload

    def _mutate(self, rng, payload: bytes, ndim: int) -> tuple[str, bytes]:
        raw = bytearray(payload)
        choice = int(rng.integers(100))
        if choice < 10:
            return "intact", payload
        if choice < 20:
            raw[int(rng.integers(4))] = int(rng.choice([0, 1, 3, 8, 9, 0x0B, 0x0C, 0x0D, 0x0E, 0xFF]))
            return "magic byte", bytes(raw)
        if choice < 45:
            dims = list(struct.unpack(f">{ndim}I", payload[4:4 + 4 * ndim]))
            interesting = [0, 1, 2, 27, 29, 4096, 4097, 10_000_000, 10_000_001, 1 << 31, (1 << 32) - 1, 65536]
            for axis in rng.permutation(ndim)[:int(rng.integers(1, ndim + 1))]:
                dims[axis] = int(rng.choice(interesting))
            if rng.random() < 0.2:
                dims = [(1 << 32) - 1] * ndim  # a product past 2^64 when ndim is 3
            raw[4:4 + 4 * ndim] = struct.pack(f">{ndim}I", *dims)
            return "dimensions", bytes(raw)
        if choice < 55:
            new_ndim = int(rng.choice([0, 1, 2, 3, 4, 255]))
            raw[3] = new_ndim
            return "dimension count", bytes(raw)
        if choice < 85:
            return mutate_bytes(rng, payload)
        if choice < 90:
            return "trailing bytes", payload + rng.bytes(int(rng.integers(1, 100)))
        if choice < 97:
            return "random bytes", rng.bytes(int(rng.integers(0, 64)))
        return "gzip bomb", gzip_bomb(payload[:4 + 4 * ndim], int(rng.choice([8, 32, 64])) << 20)


def gzip_bomb(header: bytes, inflated: int, member: int = 64 << 20) -> bytes:
    """A gzip stream of `header` then `inflated` zero bytes, made without compressing them all: gzip members
    concatenate, so one compressed member of zeros is repeated (2 GiB from about 2 MB)."""
    block = min(member, inflated)
    zeros = gzip.compress(bytes(block), compresslevel=9, mtime=0)
    return gzip.compress(header, mtime=0) + zeros * (inflated // block)


class IdxRunner:
    def __init__(self, folder: Path):
        self.folder = folder

    def run(self, ndim: int, gzipped: bool, data: bytes) -> str:
        path = self.folder / ("data.idx.gz" if gzipped else "data.idx")
        path.write_bytes(data)
        try:
            array = read_idx(path, ndim)
            assert array.dtype == np.uint8 and array.ndim == ndim
        except DataError as exc:
            return "DataError: " + message_class(str(exc), path)
        return "loaded"


# ---------------------------------------------------------------------------------------------- driver
def message_class(message: str, path: Path) -> str:
    """The kind of an error message: the file blanked, and only the start of the reason in brackets (the kind
    of exception a damaged archive raised, or the first words of the check that refused it)."""
    text = message.replace(str(path), "FILE")
    text = re.sub(r"\b(param|opt|buffer)/\S+", r"\1/…", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"0x[0-9a-fA-F]*", "0x…", text)
    text = re.sub(r"\d[\d,_]*", "N", text)
    head, bracket, reason = text.partition(" (")
    if bracket:
        head += " (" + " ".join(reason.split()[:2]).rstrip(",:)") + " …)"
    return head[:100]


class Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise Timeout()


def run_cases(label: str, count: int, first: int, make_case, run_case, limit_s: float, progress: bool) -> bool:
    outcomes, failures, slowest = collections.Counter(), [], (0.0, None)
    signal.signal(signal.SIGALRM, _on_alarm)
    started = time.perf_counter()
    for index in range(first, first + count):
        case = make_case(index)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, limit_s)
        try:
            outcome = run_case(case)
        except Timeout:
            outcome = "HANG"
            failures.append((index, case[0], f"no answer within {limit_s:g} s"))
        except Exception as exc:  # anything else escaping is a bug in a loader
            outcome = f"UNEXPECTED {type(exc).__name__}"
            failures.append((index, case[0], "".join(traceback.format_exception_only(exc)).strip()[:300]))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        elapsed = time.perf_counter() - t0
        if elapsed > slowest[0]:
            slowest = (elapsed, f"case {index} ({case[0]})")
        outcomes[outcome] += 1
        if progress and (index - first + 1) % 10_000 == 0:
            print(f"  {label}: {index - first + 1:,} cases, {time.perf_counter() - started:.0f} s", flush=True)
    total = time.perf_counter() - started
    print(f"\n{label}: {count:,} inputs in {total:.1f} s ({count / total:,.0f}/s)")
    for outcome, n in sorted(outcomes.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {n:>7,}  {outcome}")
    print(f"  slowest case {slowest[0] * 1000:.0f} ms ({slowest[1]}); per-case limit {limit_s:g} s, hangs "
          f"{outcomes['HANG']}")
    print(f"  unexpected exceptions: {len(failures) - outcomes['HANG']}")
    for index, kind, what in failures[:30]:
        print(f"    case {index} [{kind}]: {what}")
    return not failures


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000, help="inputs per loader")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="index of the first case (to replay one)")
    parser.add_argument("--loader", choices=["both", "checkpoint", "idx"], default="both")
    parser.add_argument("--limit", type=float, default=10.0, help="seconds a case may take before it is a hang")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # the mutator writes duplicates on purpose
    scratch = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    ok = True
    with tempfile.TemporaryDirectory(dir=scratch, prefix="convtui-fuzz-") as tmp:
        folder = Path(tmp)
        print(f"fuzzing in {folder} with seed {args.seed}, cases {args.first:,}..{args.first + args.cases - 1:,}")
        if args.loader in ("both", "checkpoint"):
            mutator = CheckpointMutator(seed_checkpoints(folder), args.seed)
            runner = CheckpointRunner(folder)
            ok &= run_cases("checkpoint loader", args.cases, args.first, mutator.case,
                            lambda case: runner.run(case[1]), args.limit, progress=True)
        if args.loader in ("both", "idx"):
            idx_mutator, idx_runner = IdxMutator(args.seed), IdxRunner(folder)
            ok &= run_cases("IDX loader", args.cases, args.first, idx_mutator.case,
                            lambda case: idx_runner.run(*case[1:]), args.limit, progress=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
