"""Checkpoints: one `.npz` that loads with `allow_pickle=False`.

Keys: `meta` (UTF-8 JSON as a uint8 array: format, model name, full config, completed epochs, metric history,
random-generator states, package versions), `param/<layer>.<w|b>` (the weights) and `opt/<slot>` (the
optimiser's state, e.g. `opt/conv1.w/m`). No pickles, so a checkpoint from anywhere is safe to open.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convtui.core import atomic
from convtui.core.config import ConfigError, TrainConfig
from convtui.core.layers import Sequential

FORMAT, VERSION = "convtui-checkpoint", 1


class CheckpointError(Exception):
    """A checkpoint that cannot be used: missing, damaged, or made for another model."""


@dataclass
class Checkpoint:
    meta: dict
    params: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray]
    path: Path

    @property
    def model_name(self) -> str:
        return self.meta["model"]

    @property
    def epoch(self) -> int:
        """Epochs completed when it was saved; a resumed run starts at this 0-based epoch."""
        return int(self.meta["epoch"])

    @property
    def config(self) -> TrainConfig:
        try:
            return TrainConfig.from_dict(self.meta["config"])
        except (ConfigError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{self.path}: its saved config is not valid ({exc})") from None


def save_checkpoint(path: str | Path, *, model: Sequential, optimizer, config: TrainConfig, epoch: int,
                    history: list[dict] | None = None, rng_states: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write atomically; `epoch` counts completed epochs."""
    path = Path(path)
    meta = {"format": FORMAT, "version": VERSION, "model": config.model, "config": config.to_dict(),
            "epoch": int(epoch), "optimizer": config.optimizer, "history": history or [],
            "rng": rng_states or {}, **(extra or {})}
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    arrays.update({f"param/{p.name}": p.value for p in model.params()})
    if optimizer is not None:
        arrays.update({f"opt/{key}": value for key, value in optimizer.state_arrays().items()})
    atomic.write_with(path, lambda handle: np.savez(handle, **arrays))
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint; any problem becomes one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):  # np.load would otherwise guess at .npy or pickle and blame pickling
        raise CheckpointError(f"{path}: damaged or not a convtui checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise CheckpointError(f"{path}: damaged or not a convtui checkpoint ({type(exc).__name__}: {exc})") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{path}: not a convtui checkpoint (no 'meta' entry)")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a convtui checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {meta.get('version')} is not supported "
                              f"(this convtui reads version {VERSION})")
    for key in ("model", "config", "epoch"):
        if key not in meta:
            raise CheckpointError(f"{path}: damaged checkpoint metadata (no {key!r})")
    params = {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}
    optimizer_state = {k.removeprefix("opt/"): v for k, v in arrays.items() if k.startswith("opt/")}
    return Checkpoint(meta, params, optimizer_state, path)


def restore_params(model: Sequential, checkpoint: Checkpoint, model_name: str) -> None:
    """Copy the saved weights into `model` (a fresh `build_model(model_name, ...)`), checking they fit."""
    if checkpoint.model_name != model_name:
        raise CheckpointError(f"{checkpoint.path}: checkpoint holds model '{checkpoint.model_name}', "
                              f"not '{model_name}'")
    expected = {p.name: p for p in model.params()}
    if set(expected) != set(checkpoint.params):
        missing = sorted(set(expected) - set(checkpoint.params)) or sorted(set(checkpoint.params) - set(expected))
        raise CheckpointError(f"{checkpoint.path}: weights do not match model '{model_name}' "
                              f"(differs in {', '.join(missing[:3])})")
    for name, param in expected.items():
        saved = checkpoint.params[name]
        if saved.shape != param.value.shape:
            raise CheckpointError(f"{checkpoint.path}: {name} has shape {saved.shape}, "
                                  f"model '{model_name}' needs {param.value.shape}")
        param.value[...] = saved


def restore_optimizer(optimizer, checkpoint: Checkpoint) -> None:
    try:
        optimizer.load_state_arrays(checkpoint.optimizer_state)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint.path}: optimizer state does not fit ({exc.args[0]})") from None


def load_model(path: str | Path) -> tuple[Sequential, Checkpoint]:
    """Build the checkpoint's model and load its weights (for `convtui eval` and the app's run viewer)."""
    from convtui.core.models import build_model

    checkpoint = load_checkpoint(path)
    config = checkpoint.config
    model = build_model(config.model, config.seed, dropout=config.dropout)
    restore_params(model, checkpoint, config.model)
    return model, checkpoint
