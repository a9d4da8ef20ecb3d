"""Padding and stride explorer: the output-size formula, TensorFlow's SAME rule, and one neuron's receptive field.

Lecture, "Padding" and "Stride": a 5x5 filter on a 32x32 input gives 28x28 (VALID) or 32x32 with zero padding
(SAME); a neuron in row i, column j is connected to rows i*s_h .. i*s_h + f_h - 1 and columns
j*s_w .. j*s_w + f_w - 1 of the (padded) previous layer.

Everything here goes through the core's own shape helpers and conv kernel, so the explorer shows exactly
what training does. Square inputs and filters keep the screen readable; the kernels themselves are general.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from convtui.core.ops import conv2d_forward, conv_output_size, resolve_padding, same_padding

MODES = ("valid", "same", "explicit")
LIMITS = {"n": (1, 64), "f": (1, 15), "s": (1, 8), "p": (0, 8)}
LECTURE_EXAMPLE = dict(n=32, f=5, s=1)  # "What will happen if you apply a 5x5 filter to a 32x32 input volume?"


@dataclass(frozen=True)
class PaddingSetup:
    """The learner's choice: input n x n, filter f x f, stride s, and a padding mode (p is used when explicit)."""

    n: int = 7
    f: int = 3
    s: int = 1
    mode: str = "valid"
    p: int = 1

    def padding_spec(self):
        """What the core's `resolve_padding` accepts: 'valid', 'same' or an int p."""
        return self.p if self.mode == "explicit" else self.mode

    def adjusted(self, field: str, delta: int) -> "PaddingSetup":
        """The setup with one of n, f, s, p moved by delta, clamped to LIMITS (p switches to explicit)."""
        low, high = LIMITS[field]
        value = min(max(getattr(self, field) + delta, low), high)
        changes = {field: value}
        if field == "p":
            changes["mode"] = "explicit"
        return replace(self, **changes)

    def next_mode(self) -> "PaddingSetup":
        return replace(self, mode=MODES[(MODES.index(self.mode) + 1) % len(MODES)])


@dataclass(frozen=True)
class SameRule:
    """TensorFlow's SAME rule worked for one axis: out = ceil(n / s), the total padding and its split."""

    out: int
    total: int
    before: int
    after: int


@dataclass(frozen=True)
class PaddingReport:
    """Everything the explorer shows for one setup. `out` is 0 (and `error` set) when the filter does not fit."""

    setup: PaddingSetup
    pad_before: int  # top (= left: square)
    pad_after: int  # bottom (= right)
    padded: int  # n + pad_before + pad_after
    out: int
    formula: str  # "(n + 2p - f) // s + 1 = (32 + 2*0 - 5) // 1 + 1 = 28"
    same_rule: SameRule
    unused: int  # padded rows at the bottom (and columns at the right) that no window reaches
    error: str = ""


def same_rule(n: int, f: int, s: int) -> SameRule:
    """TF SAME: out = ceil(n/s); pad_total = max((out - 1)*s + f - n, 0); before = total // 2, after = the rest."""
    out = -(-n // s)
    before, after = same_padding(n, f, s)
    return SameRule(out=out, total=before + after, before=before, after=after)


def explain(setup: PaddingSetup) -> PaddingReport:
    """Resolve the padding with the core and fill the output-size formula in with the numbers."""
    n, f, s = setup.n, setup.f, setup.s
    top, bottom, _, _ = resolve_padding(setup.padding_spec(), n, n, f, f, s, s)
    padded = n + top + bottom
    out = conv_output_size(n, f, s, top, bottom)
    # The formula's own value, even below 1 (a learner redoes it by hand); then what that means.
    result = f"{out}" if out >= 1 else f"{out}, less than 1: no output"
    if top == bottom:
        # The lecture's form: out = (n + 2p - f) // s + 1
        formula = f"(n + 2p - f) // s + 1 = ({n} + 2*{top} - {f}) // {s} + 1 = {result}"
    else:
        formula = f"(n + p_before + p_after - f) // s + 1 = ({n} + {top} + {bottom} - {f}) // {s} + 1 = {result}"
    error = ""
    if out < 1:
        error = f"a {f}x{f} filter does not fit a {padded}x{padded} padded input: no output"
        out = 0
    unused = padded - ((out - 1) * s + f) if out else 0
    return PaddingReport(setup, top, bottom, padded, out, formula, same_rule(n, f, s), unused, error)


def receptive_field(i: int, j: int, f: int, s: int) -> tuple[range, range]:
    """Rows i*s .. i*s + f - 1 and columns j*s .. j*s + f - 1 of the padded input feed output neuron (i, j)."""
    return range(i * s, i * s + f), range(j * s, j * s + f)


def sample_input(n: int, seed: int = 0) -> np.ndarray:
    """An n x n input of small positive integers (1..9), so padded zeros stand out from real pixels."""
    return np.random.default_rng(seed).integers(1, 10, size=(n, n)).astype(np.float64)


def padded_input(x: np.ndarray, pad_before: int, pad_after: int) -> np.ndarray:
    """The input with zero rows and columns added (before = top/left, after = bottom/right)."""
    return np.pad(x, ((pad_before, pad_after), (pad_before, pad_after)))


def window_sums(x: np.ndarray, setup: PaddingSetup) -> np.ndarray:
    """Each output neuron's value with an all-ones f x f filter, from the core's conv kernel: the sum of its window.

    The explorer shows this beside the highlighted window, so a learner can check the kernel reads exactly
    the cells the formula says.
    """
    w = np.ones((1, 1, setup.f, setup.f))
    return conv2d_forward(x[None, None], w, None, setup.s, setup.padding_spec())[0, 0]


def view_window(total: int, size: int, focus_start: int, focus_stop: int) -> tuple[int, int]:
    """The first and one-past-last index of a `size`-wide view on `total` cells that shows [focus_start, focus_stop).

    Used to keep large inputs usable on a small terminal: the grid scrolls so the receptive field stays visible.
    """
    if total <= size:
        return 0, total
    centre = (focus_start + focus_stop) // 2
    start = min(max(centre - size // 2, 0), total - size)
    # A receptive field wider than the view: show its start.
    start = min(start, focus_start) if focus_stop - focus_start > size else start
    return start, start + size
