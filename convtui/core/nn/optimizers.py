"""Optimisers over a model's Params, using the in-place update ops.

Each optimiser keeps its state as named arrays (`state_arrays`) so checkpoints can save it and a resumed run
continues with the same momentum / Adam moments. The learning rate is passed to every `step`, because the
schedule (`TrainConfig.learning_rate`) owns it.
"""

from __future__ import annotations

import numpy as np

from convtui.core import ops
from convtui.core.nn.layers import Param


class SGD:
    """velocity = momentum * velocity - lr * grad; param += velocity (plain SGD when momentum = 0)."""

    name = "sgd"

    def __init__(self, params: list[Param], momentum: float = 0.0):
        self.params, self.momentum = params, float(momentum)
        self.velocity = {p.name: np.zeros_like(p.value) for p in params}
        self.t = 0

    def step(self, lr: float) -> None:
        self.t += 1
        for p in self.params:
            ops.sgd_update(p.value, p.grad, self.velocity[p.name], float(lr), self.momentum)

    def state_arrays(self) -> dict[str, np.ndarray]:
        state = {f"{name}/velocity": v for name, v in self.velocity.items()}
        state["t"] = np.array(self.t, dtype=np.int64)
        return state

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        for name, v in self.velocity.items():
            v[...] = _slot(state, f"{name}/velocity", v.shape)
        self.t = int(state["t"])


class Adam:
    """Kingma & Ba with Keras's defaults (beta1 0.9, beta2 0.999, eps 1e-7):
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  param -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)."""

    name = "adam"

    def __init__(self, params: list[Param], beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7):
        self.params, self.beta1, self.beta2, self.eps = params, beta1, beta2, eps
        self.m = {p.name: np.zeros_like(p.value) for p in params}
        self.v = {p.name: np.zeros_like(p.value) for p in params}
        self.t = 0

    def step(self, lr: float) -> None:
        self.t += 1
        for p in self.params:
            ops.adam_update(p.value, p.grad, self.m[p.name], self.v[p.name], float(lr), self.t,
                                self.beta1, self.beta2, self.eps)

    def state_arrays(self) -> dict[str, np.ndarray]:
        state = {f"{name}/m": m for name, m in self.m.items()}
        state.update({f"{name}/v": v for name, v in self.v.items()})
        state["t"] = np.array(self.t, dtype=np.int64)
        return state

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        for name in self.m:
            self.m[name][...] = _slot(state, f"{name}/m", self.m[name].shape)
            self.v[name][...] = _slot(state, f"{name}/v", self.v[name].shape)
        self.t = int(state["t"])


def _slot(state, key, shape):
    if key not in state:
        raise KeyError(f"optimizer state has no {key!r}")
    if state[key].shape != shape:
        raise ValueError(f"optimizer state {key!r} has shape {state[key].shape}, expected {shape}")
    return state[key]


def make_optimizer(name: str, params: list[Param], momentum: float = 0.0):
    """'sgd' or 'adam' over `params`."""
    if name == "sgd":
        return SGD(params, momentum=momentum)
    if name == "adam":
        return Adam(params)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd or adam")
