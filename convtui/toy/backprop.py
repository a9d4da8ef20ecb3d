"""Backprop through one convolutional layer: the lecture's "Training CNNs" case, with numbers.

A 3x3 input X, a 2x2 filter W, no padding, stride 1, giving a 2x2 output H:

    h11 = W11 X11 + W12 X12 + W21 X21 + W22 X22      (and h12, h21, h22 shifted by one)

The lecture writes the error as E = E_h11 + E_h12 + E_h21 + E_h22 without fixing E_h; we use the squared
error E_hij = 1/2 (hij - tij)^2 against a target output T, so dE_hij/dhij = hij - tij. Then

    dE/dWuv = sum over ij of dE_hij/dhij * dhij/dWuv,   with dhij/dWuv = X(i+u-1)(j+v-1)
    W_next  = W - eta * dE/dW

H comes from the core's `conv2d_forward` and dE/dW, dE/dX from `conv2d_backward`; the term-by-term sums
and a central finite difference are shown beside them and must agree.
Indices are 1-based in names (as on the slides) and 0-based in arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from convtui.core.ops import conv2d_backward, conv2d_forward

OUTPUTS = ((0, 0), (0, 1), (1, 0), (1, 1))  # h11, h12, h21, h22
WEIGHTS = OUTPUTS  # W11, W12, W21, W22
ETAS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
DEFAULT_ETA = 0.02
DEFAULT_SEED = 3  # well conditioned: E falls steadily at the default eta


def name(letter: str, index: tuple[int, int]) -> str:
    """("W", (0, 1)) -> "W12": the lecture's 1-based names."""
    return f"{letter}{index[0] + 1}{index[1] + 1}"


@dataclass(frozen=True)
class BackpropState:
    """The input, the current filter, the target output, the learning rate, and the error so far."""

    x: np.ndarray  # (3, 3)
    w: np.ndarray  # (2, 2)
    target: np.ndarray  # (2, 2)
    eta: float = DEFAULT_ETA
    history: tuple[float, ...] = field(default=())  # E before each update taken so far, then the current E


def make_state(seed: int = DEFAULT_SEED, eta: float = DEFAULT_ETA) -> BackpropState:
    """Integer X, a random starting W, and a target made by a hidden filter, so E can reach 0."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(3, 3)).astype(np.float64)
    w = np.round(rng.uniform(-1, 1, size=(2, 2)), 2)
    hidden = rng.integers(-1, 2, size=(2, 2)).astype(np.float64)
    target = forward(x, hidden)
    state = BackpropState(x, w, target, eta)
    return replace(state, history=(error(forward(x, w), target),))


def forward(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """H = conv(X, W), no padding, stride 1, no bias: the core's kernel on a (1, 1, 3, 3) batch."""
    return conv2d_forward(x[None, None], w[None, None], None, 1, "valid")[0, 0]


def error_terms(h: np.ndarray, target: np.ndarray) -> np.ndarray:
    """E_hij = 1/2 (hij - tij)^2, one per output."""
    return 0.5 * (h - target) ** 2


def error(h: np.ndarray, target: np.ndarray) -> float:
    """E = E_h11 + E_h12 + E_h21 + E_h22."""
    return float(error_terms(h, target).sum())


def forward_terms(x: np.ndarray, w: np.ndarray, out: tuple[int, int]) -> list[tuple[str, str, float, float]]:
    """The four products of h_out as the lecture writes it: (W name, X name, W value, X value) per term."""
    i, j = out
    return [(name("W", (u, v)), name("X", (i + u, j + v)), float(w[u, v]), float(x[i + u, j + v]))
            for u, v in WEIGHTS]


@dataclass(frozen=True)
class Gradients:
    """Everything the backward pass shows."""

    h: np.ndarray  # (2, 2)
    dE_dh: np.ndarray  # (2, 2) hij - tij
    dE_dW: np.ndarray  # (2, 2) from conv2d_backward
    dE_dX: np.ndarray  # (3, 3) from conv2d_backward
    terms: dict  # "W11" -> [(dE_hij/dhij, dhij/dW11 = X.., product)] over h11, h12, h21, h22


def gradients(state: BackpropState) -> Gradients:
    """dE/dh, then dE/dW and dE/dX from the core's conv backward, and the lecture's term-by-term sums."""
    h = forward(state.x, state.w)
    dE_dh = h - state.target
    dx, dw, _ = conv2d_backward(state.x[None, None], state.w[None, None], dE_dh[None, None], 1, "valid")
    terms = {}
    for u, v in WEIGHTS:
        # dhij/dWuv = X(i+u)(j+v): the input pixel that Wuv multiplies in hij.
        terms[name("W", (u, v))] = [(float(dE_dh[i, j]), float(state.x[i + u, j + v]),
                                     float(dE_dh[i, j] * state.x[i + u, j + v])) for i, j in OUTPUTS]
    return Gradients(h, dE_dh, dw[0, 0], dx[0, 0], terms)


def finite_difference(state: BackpropState, wrt: str = "w", eps: float = 1e-5) -> np.ndarray:
    """Central differences (E(a + eps) - E(a - eps)) / 2 eps for every entry of W (wrt='w') or X (wrt='x')."""
    base = state.w if wrt == "w" else state.x
    grad = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        values = []
        for sign in (1.0, -1.0):
            moved = base.copy()
            moved[index] += sign * eps
            x, w = (state.x, moved) if wrt == "w" else (moved, state.w)
            values.append(error(forward(x, w), state.target))
        grad[index] = (values[0] - values[1]) / (2 * eps)
    return grad


def step(state: BackpropState) -> BackpropState:
    """One update W_next = W - eta * dE/dW, recording the new E in the history."""
    w_next = state.w - state.eta * gradients(state).dE_dW
    return replace(state, w=w_next, history=state.history + (error(forward(state.x, w_next), state.target),))


def with_eta(state: BackpropState, delta: int) -> BackpropState:
    """Move eta one notch along ETAS (delta +1 or -1)."""
    nearest = min(range(len(ETAS)), key=lambda k: abs(ETAS[k] - state.eta))
    return replace(state, eta=ETAS[min(max(nearest + delta, 0), len(ETAS) - 1)])
