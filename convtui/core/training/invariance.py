"""Why convolutions: accuracy on shifted, rotated and scaled test digits, and what a dense layer would cost.

The lecture's "Vanilla Deep Neural Networks Challenges": flattening discards shape, "vanilla deep neural networks
do not scale" (28 x 28 = 784 weights per neuron), and rotation and scale variation are hard. This module measures
both claims on real models: `sweep` gives the accuracy of a model on test digits transformed by each amount of a
transform (see `transforms` for the conventions), `parameter_counts` reads the weights per layer from the
model's own architecture, and `verdict` says in words what the measured curves show, and only that.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convtui.core.nn.sequential import Sequential
from convtui.core.storage.run_folder import RunError, find_runs, read_run
from convtui.core.training import transforms
from convtui.core.training.evaluate import correct_count


@dataclass(frozen=True)
class SweepSpec:
    kind: str  # one of transforms.TRANSFORM_KINDS
    amounts: tuple[float, ...]
    unit: str  # for the plot's x label

    def describe(self, amount: float) -> str:
        """'3 px right', '45° ccw', 'x1.3': how the screen and the verdict name one amount."""
        if self.kind == "shift":
            return f"{amount:g} px right"
        if self.kind == "rotate":
            return f"{amount:g}° ccw"
        return f"x{amount:g}"


# MNIST digits are centred in a 20x20 box, so 4 pixels of margin: shifts past 4 push strokes off the image.
SWEEPS = {
    "shift": SweepSpec("shift", tuple(float(k) for k in range(9)), "shift (pixels right)"),
    "rotate": SweepSpec("rotate", tuple(float(a) for a in range(0, 181, 15)), "angle (degrees ccw)"),
    "scale": SweepSpec("scale", tuple(round(0.5 + 0.1 * i, 1) for i in range(11)), "scale factor"),
}
NOUNS = {"shift": "shift", "rotate": "rotation", "scale": "change of scale"}  # for "a small ..."
IDENTITY = {"shift": 0.0, "rotate": 0.0, "scale": 1.0}  # the amounts that leave the digits as they are
# The amounts the verdict quotes: a small change, where robustness shows, and a large one.
SMALL, LARGE = {"shift": 2.0, "rotate": 30.0, "scale": 0.8}, {"shift": 6.0, "rotate": 90.0, "scale": 0.5}
# A network "keeps" a digit class it can still read at this accuracy; below it the verdict says it fails.
FAILS_BELOW = 0.5


def accuracy_under(model: Sequential, images: np.ndarray, labels: np.ndarray, kind: str, amount: float,
                   batch_size: int = 1000) -> float:
    """Accuracy (0..1) of `model` on `images` (N, 1, H, W) floats in [0, 1] transformed by `kind` and `amount`.
    The identity amounts (shift 0, angle 0, scale 1) give the images unchanged, so they match `evaluate`."""
    moved = transforms.apply(kind, images, amount)
    logits = model.predict_logits(moved, batch_size=batch_size)
    return correct_count(logits, labels) / max(len(labels), 1)


def sweep(model: Sequential, images: np.ndarray, labels: np.ndarray, kind: str,
          amounts: tuple[float, ...] | None = None) -> Iterator[tuple[float, float]]:
    """(amount, accuracy) for each amount of `kind` (its SWEEPS amounts by default), one at a time, so a caller
    can stop between points or hold a lock for each one only."""
    for amount in SWEEPS[kind].amounts if amounts is None else amounts:
        yield amount, accuracy_under(model, images, labels, kind, amount)


# ---------------------------------------------------------------- parameters: the "does not scale" slide

@dataclass(frozen=True)
class LayerCount:
    name: str
    description: str  # "dense 784 -> 128", "conv 5x5x1 -> 32 (shared)"
    weights: int
    biases: int

    @property
    def total(self) -> int:
        return self.weights + self.biases


def parameter_counts(model: Sequential) -> list[LayerCount]:
    """One LayerCount per layer with weights, read from `model.architecture()` (Dense: in x out weights + out
    biases; Conv2D: kh x kw x in x out shared weights + out biases, whatever the image size)."""
    counts = []
    for spec in model.architecture()["layers"]:
        if spec["kind"] == "Dense":
            n_in, n_out = spec["in_features"], spec["out_features"]
            counts.append(LayerCount(spec["name"], f"dense {n_in} -> {n_out}", n_in * n_out, n_out))
        elif spec["kind"] == "Conv2D":
            (kh, kw), n_in, n_out = spec["kernel_size"], spec["in_channels"], spec["out_channels"]
            counts.append(LayerCount(spec["name"], f"conv {kh}x{kw}x{n_in} -> {n_out} (shared)",
                                     kh * kw * n_in * n_out, n_out))
    return counts


def dense_equivalent_of_first_conv(model: Sequential) -> LayerCount | None:
    """A dense layer making the first conv layer's whole output (e.g. 28x28x32) from the whole input (28x28):
    every output value gets its own weight for every pixel, where the conv shares one small filter per channel.
    None when the model has no conv layer."""
    input_shape, n_in = model.input_shape, int(np.prod(model.input_shape))
    for layer, (_, output_shape) in zip(model.architecture()["layers"], model.shapes()):
        if layer["kind"] == "Conv2D":
            n_out = int(np.prod(output_shape))
            channels, height, width = output_shape
            return LayerCount(f"dense instead of {layer['name']}",
                              f"dense {'x'.join(map(str, input_shape[1:]))} -> {height}x{width}x{channels}",
                              n_in * n_out, n_out)
    return None


# ---------------------------------------------------------------- the verdict, from the measured curves

def percent(value: float) -> str:
    """0.995 -> '99%': truncated, never rounded, as every lesson shows percentages (99.5% is not 100%)."""
    return f"{math.floor(value * 100 + 1e-9):.0f}%"  # + 1e-9: 0.29 * 100 is 28.999999999999996


def _at(points: dict[float, float], amount: float) -> float | None:
    return next((acc for a, acc in points.items() if math.isclose(a, amount)), None)


def verdict(kind: str, curves: dict[str, dict[float, float]]) -> list[str]:
    """Plain sentences on what the measured `curves` ({network name: {amount: accuracy}}) show for `kind`.

    Every number quoted is read from the curves; a claim ("keeps more", "fails") is made only when the numbers
    show it. A network's figure is quoted once its curve has the identity and the quoted amount; comparisons wait
    for every network's point, and the pooling sentence for the cnn's whole sweep."""
    spec, identity = SWEEPS[kind], IDENTITY[kind]
    names = [name for name, points in curves.items() if _at(points, identity) is not None]
    if not names:
        return []
    lines = []
    for amount in (SMALL[kind], LARGE[kind]):
        measured = {name: _at(curves[name], amount) for name in names if _at(curves[name], amount) is not None}
        if not measured:
            continue
        parts = [f"the {name} keeps {percent(measured[name])} (from {percent(_at(curves[name], identity))})"
                 for name in measured]
        lines.append(f"At {spec.describe(amount)}, " + " and ".join(parts) + ".")
        if len(measured) < len(names):  # comparisons wait for every network's point
            continue
        if amount == SMALL[kind] and len(names) == 2:
            (first, a), (second, b) = measured.items()
            if abs(a - b) >= 0.05:
                better, worse = (first, second) if a > b else (second, first)
                lines.append(f"The {better} is more robust to a small {NOUNS[kind]} than the {worse}.")
            else:
                lines.append(f"Neither network copes better with a small {NOUNS[kind]}: they are within 5 points.")
        if amount == LARGE[kind]:
            failing = [name for name in names if measured[name] < FAILS_BELOW]
            if len(failing) == len(names) == 1:
                lines.append(f"The {failing[0]} does not handle {spec.describe(amount)}: it falls below "
                             f"{percent(FAILS_BELOW)}.")
            elif len(failing) == len(names):
                lines.append(f"Neither network handles {spec.describe(amount)}: both fall below "
                             f"{percent(FAILS_BELOW)}.")
            elif failing:
                lines.append(f"At {spec.describe(amount)} only the {failing[0]} falls below {percent(FAILS_BELOW)}.")
    cnn = curves.get("cnn", {})
    if kind == "shift" and "cnn" in names and len(cnn) == len(spec.amounts):
        lines.append(_pooling_sentence(cnn[identity], cnn[SMALL[kind]], min(cnn.values())))
    return lines


def _points_between(high: float, low: float) -> int:
    """The drop a learner works out from the two percentages shown (98% and 15%: 83 points), not the truncated
    exact drop (98.8 - 15.9 = 82.9: 82), so the sentence agrees with the plot and the status line."""
    return int(percent(high)[:-1]) - int(percent(low)[:-1])


def _pooling_sentence(unmoved: float, small_shift: float, lowest: float) -> str:
    """What the cnn's whole shift sweep says about pooling: robustness to small shifts only if the small shift
    costs under 5 points, invariance only if the whole sweep does."""
    if unmoved - lowest < 0.05:
        return "The cnn keeps its accuracy within 5 points over the whole shift sweep."
    lost = (f"the cnn loses {_points_between(unmoved, lowest)} points over the sweep (an invariant network would "
            "lose none)")
    if unmoved - small_shift < 0.05:
        return f"Pooling gives some robustness to small shifts, not invariance: {lost}."
    return f"Even small shifts cost the cnn {_points_between(unmoved, small_shift)} points, and {lost}."


# ---------------------------------------------------------------- which runs to compare

MLP_MODELS = ("mlp", "mlp-relu", "mlp-sigmoid")  # the dense networks, the lecture's best first
CNN_MODELS = ("cnn",)


def run_candidates(runs, models: tuple[str, ...]) -> list:
    """The runs (run_folder.Run) of one of `models` that have a checkpoint, best first: the higher final test
    accuracy, then the model earlier in `models`. A run without a test accuracy comes last."""
    usable = [run for run in runs if run.model_name in models and run.checkpoint is not None]

    def rank(run):
        accuracy = run.final("val_accuracy")
        return (-(accuracy if accuracy is not None else -1.0), models.index(run.model_name), str(run.path))

    return sorted(usable, key=rank)


def read_runs(root: str | Path) -> list:
    """Every readable run under `root` (unreadable ones are skipped: the Runs screen is where to see why)."""
    runs = []
    for path in find_runs(root):
        try:
            runs.append(read_run(path))
        except RunError:
            continue
    return runs
