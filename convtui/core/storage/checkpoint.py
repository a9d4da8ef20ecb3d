"""Checkpoints: one `.npz` that describes its own model, read without trusting it.

Members: `meta` (UTF-8 JSON as a uint8 array), `param/<layer>.<w|b>` (the weights, as `Sequential.state_dict`
names them), `buffer/<layer>.<name>` (non-trainable state; none of today's layers has any) and `opt/<slot>` (the
optimiser's state, e.g. `opt/conv1.w/m`, and `opt/t`). `meta` holds the format and version, the architecture
(input shape and each layer's kind and hyper-parameters, see `nn.specs`), how inputs are scaled, the full
training config, completed epochs, the metric history, random-generator states and package versions. Any program
that reads `.npz` and JSON can rebuild the model from the file alone.

Version 1 files (before the architecture was stored) still load: their preset name gives the architecture.
Loading checks every member's name, dtype, shape and finiteness and the metadata's types and ranges before any
of it is used (`checkpoint_meta`), and reads the archive with bounded memory (`safe_npz`); every problem is one
`CheckpointError` line naming the file.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convtui.core.errors import ConvtuiError
from convtui.core.nn.architectures import build_from_architecture
from convtui.core.nn.sequential import Sequential
from convtui.core.storage import atomic
from convtui.core.storage.checkpoint_meta import FORMAT, VERSION, check_arrays, check_meta, member_budget
from convtui.core.storage.regular_files import file_kind
from convtui.core.storage.safe_npz import read_npz
from convtui.core.training.config import TrainConfig

INPUT_SCALING = "pixel / 255: uint8 0..255 becomes float32 0..1, NCHW"


class CheckpointError(ConvtuiError):
    """A checkpoint that cannot be used: missing, damaged, or made for another model."""


@dataclass
class Checkpoint:
    meta: dict
    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray]
    path: Path
    config: TrainConfig
    architecture: dict

    @property
    def model_name(self) -> str:
        return self.meta["model"]

    @property
    def epoch(self) -> int:
        """Epochs completed when it was saved; a resumed run starts at this 0-based epoch."""
        return int(self.meta["epoch"])

    @property
    def steps_into_epoch(self) -> int:
        """Steps of the next epoch trained before a stop cut it short (a resumed run trains that epoch again)."""
        steps = self.meta.get("steps_into_epoch", 0)
        return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else 0

    def trained(self) -> str:
        """What the weights have seen, for a person: "2 epochs", or "1 epoch and 297 steps of epoch 2"."""
        text = f"{self.epoch} epoch{'' if self.epoch == 1 else 's'}"
        if self.steps_into_epoch:
            text += f" and {self.steps_into_epoch} steps of epoch {self.epoch + 1}"
        return text

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**self.params, **self.buffers}


def save_checkpoint(path: str | Path, *, model: Sequential, optimizer, config: TrainConfig, epoch: int,
                    history: list[dict] | None = None, rng_states: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write atomically; `epoch` counts completed epochs."""
    path = Path(path)
    meta = {"format": FORMAT, "version": VERSION, "model": config.model, "architecture": model.architecture(),
            "input": INPUT_SCALING, "config": config.to_dict(), "epoch": int(epoch), "optimizer": config.optimizer,
            "history": history or [], "rng": rng_states or {}, **(extra or {})}
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    arrays.update({f"param/{p.name}": p.value for p in model.params()})
    arrays.update({f"buffer/{name}": value for name, value in model.buffers().items()})
    if optimizer is not None:
        arrays.update({f"opt/{key}": value for key, value in optimizer.state_arrays().items()})
    atomic.write_with(path, lambda handle: np.savez(handle, **arrays))
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint; any problem becomes one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        try:  # there but not a file (a folder, a FIFO, /dev/zero): say what it is, not "no such file"
            kind = file_kind(path.stat().st_mode)
        except OSError:
            raise CheckpointError(f"{path}: no such checkpoint file") from None
        raise CheckpointError(f"{path}: is {kind}, not a checkpoint file")
    try:
        # meta first: its architecture bounds what the weights may hold before a byte of them is allocated
        arrays = read_npz(path, first="meta", budget=member_budget)
    except zipfile.BadZipFile:
        raise CheckpointError(f"{path}: damaged or not a convtui checkpoint (not an .npz archive)") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except Exception as exc:  # zlib, lzma, struct, ValueError...: whatever a damaged archive raises
        raise CheckpointError(f"{path}: damaged checkpoint ({_reason(exc)})") from None
    try:
        meta, config, architecture = check_meta(arrays.pop("meta", None))
        params, buffers, optimizer_state = check_arrays(arrays)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return Checkpoint(meta, params, buffers, optimizer_state, path, config, architecture)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def restore_params(model: Sequential, checkpoint: Checkpoint, model_name: str) -> None:
    """Copy the saved weights and buffers into `model` (a fresh `build_model(model_name, ...)`), checking they
    fit."""
    if checkpoint.model_name != model_name:
        raise CheckpointError(f"{checkpoint.path}: checkpoint holds model '{checkpoint.model_name}', "
                              f"not '{model_name}'")
    try:
        model.load_state_dict(checkpoint.state_dict())
    except ValueError as exc:
        raise CheckpointError(f"{checkpoint.path}: {exc} (model '{model_name}')") from None


def restore_optimizer(optimizer, checkpoint: Checkpoint) -> None:
    try:
        optimizer.load_state_arrays(checkpoint.optimizer_state)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint.path}: optimizer state does not fit ({exc.args[0]})") from None


def load_model(path: str | Path) -> tuple[Sequential, Checkpoint]:
    """Build the model the checkpoint describes and load its weights (for `convtui eval`, the app's Runs and
    Draw screens)."""
    checkpoint = load_checkpoint(path)
    model = build_from_architecture(checkpoint.architecture, checkpoint.config.seed, init_weights=False)
    try:
        model.load_state_dict(checkpoint.state_dict())
    except ValueError as exc:
        raise CheckpointError(f"{checkpoint.path}: {exc}") from None
    return model, checkpoint
