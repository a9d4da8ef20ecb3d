"""The lecture's progression as data: five steps from a one-layer network to a CNN, and a class-length plan.

The lecture improves one MNIST classifier step by step ("Some Improvement (1/5)" to "(5/5)", lines 268-313),
then explains why flattening pixels is a bad idea and brings in convolutions (line 433). Each step here is one of
the presets (`config.PRESETS`), with what it changed quoted from the lecture (`Quote.line` is the line in
`cnn-lecture.txt`; a test checks every quote against the file).

`CLASS_PLAN` says how many training images and epochs each step gets so that all five finish within
`BUDGET_S` on a 2-core machine, by its own estimate (`Plan.estimate_s`, from the rates in `RATES`). Every step
validates on the same test images, so their accuracies compare. `find_reusable` picks run folders under ./runs
that trained a step exactly as the plan would (any seed), so a class can skip retraining them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from convtui.core.storage import atomic
from convtui.core.storage.regular_files import NotRegularFile, TooLarge, read_bounded
from convtui.core.storage.run_folder import MNIST_TRAIN_IMAGES, Run, RunError, find_runs, read_run
from convtui.core.training.config import TrainConfig

MNIST_TEST_IMAGES = 10_000
BUDGET_S = 300  # the "at most about 5 minutes on a 2-core laptop"
MARKER_FILE = "progression.json"  # in a run folder the progression wrote: which step, and its test images
MAX_MARKER_BYTES = 4096
# The settings that decide what a run learned; a run matches a step only if all of them equal the plan's.
MATCHED_SETTINGS = ("optimizer", "lr", "schedule", "decay", "momentum", "dropout", "batch_size")


@dataclass(frozen=True)
class Quote:
    """Words from the lecture: `text` appears on line `line` of cnn-lecture.txt (bold markers removed)."""

    line: int
    text: str


@dataclass(frozen=True)
class Rates:
    """How fast a model trains and predicts on this machine, in images per second."""

    train_images_per_s: float
    test_images_per_s: float


# Measured on this 2-core machine on 2026-11-30 while five other engineers worked on it. Training rates: the
# accuracy benchmark's full-length runs (benchmarks/accuracy.py, "img/s training"). The cnn's epochs there took
# 55 s to 150 s for 60,000 images as the load changed (1,100 to 400 img/s): 600 is in between. Test rates: `convtui bench`'s unloaded inference figures
# (README) halved for the load; mlp-sigmoid and mlp as mlp-relu, whose network is as large or larger.
RATES: dict[str, Rates] = {
    "softmax": Rates(700_000, 1_400_000),
    "mlp-sigmoid": Rates(56_000, 140_000),
    "mlp-relu": Rates(61_000, 140_000),
    "mlp": Rates(100_000, 140_000),
    "cnn": Rates(600, 2_000),
}
START_S = 2.0  # per step: building the model and loading the kernels from Numba's cache (a first compile is ~5 s)
SNAPSHOT_SHARE = 0.1  # the live curve's snapshots take at most ~10% of the training time (train_worker)


@dataclass(frozen=True)
class ProgressionStep:
    """One step of the lecture's story: a preset, what it changed in the lecture's words, and its share of the
    class: `images` training images (the first ones of MNIST's training set) for `epochs` epochs."""

    model: str
    changed: str  # one line for the table, made of the quotes' words
    quotes: tuple[Quote, ...]
    images: int
    epochs: int


@dataclass(frozen=True)
class Plan:
    """The five steps in the lecture's order, each validated on the first `test_images` test images."""

    steps: tuple[ProgressionStep, ...]
    test_images: int = MNIST_TEST_IMAGES
    seed: int = 0

    def config(self, step: ProgressionStep, threads: int | None = None) -> TrainConfig:
        """The step's preset with the plan's images and epochs: what the progression trains."""
        limit = None if step.images >= MNIST_TRAIN_IMAGES else step.images
        return TrainConfig.for_model(step.model, epochs=step.epochs, limit=limit, seed=self.seed, threads=threads)

    def step_estimate_s(self, step: ProgressionStep, rates: dict[str, Rates] = RATES) -> float:
        """Seconds the step should take here: start-up, training (plus the live snapshots) and one test pass
        per epoch."""
        rate = rates[step.model]
        training = step.images * step.epochs / rate.train_images_per_s * (1 + SNAPSHOT_SHARE)
        testing = self.test_images * step.epochs / rate.test_images_per_s
        return START_S + training + testing

    def estimate_s(self, rates: dict[str, Rates] = RATES) -> float:
        return sum(self.step_estimate_s(step, rates) for step in self.steps)

    def scaled(self, images: int, epochs: int, test_images: int) -> Plan:
        """The same steps on fewer images and epochs (a smoke run, the tests)."""
        return replace(self, test_images=test_images,
                       steps=tuple(replace(step, images=images, epochs=epochs) for step in self.steps))


def _step(model: str, images: int, epochs: int, *quotes: Quote, changed: str) -> ProgressionStep:
    return ProgressionStep(model, changed, quotes, images, epochs)


# The MLPs get all 60,000 images for 5 of the presets' 10 epochs (seconds each); the cnn, 50-100 times slower per
# image, gets one epoch, which already takes it past every MLP (98.6% after one epoch in the accuracy benchmark).
# Two cnn epochs would take 5 minutes on their own when the machine is busy (150 s an epoch was measured).
CLASS_PLAN = Plan(steps=(
    _step("softmax", 60_000, 5, Quote(60, "One-Layer Network For Classifying MNIST"),
          changed="One-Layer Network For Classifying MNIST"),
    _step("mlp-sigmoid", 60_000, 5, Quote(270, "Add more layers to improve the accuracy."),
          Quote(271, "sigmoid activation function"),
          changed="Add more layers to improve the accuracy. (sigmoid activation function)"),
    _step("mlp-relu", 60_000, 5, Quote(282, "He initialization"), Quote(283, "Adam optimizer"),
          Quote(293, "Better activation function"),
          changed="He initialization; Adam optimizer; Better activation function (ReLU)"),
    _step("mlp", 60_000, 5, Quote(304, "Overcome overfitting, e.g., using dropout"),
          Quote(312, "decay the learning rate exponentially"),
          changed="Overcome overfitting, e.g., using dropout; decay the learning rate exponentially"),
    _step("cnn", 60_000, 1,
          Quote(433, "CNN is a type of neural network that can take advantage of shape information."),
          changed="CNN is a type of neural network that can take advantage of shape information."),
))


# ---------------------------------------------------------------------------------------------- run folders
def write_marker(folder: str | Path, plan: Plan, step: ProgressionStep) -> Path:
    """Note in a run folder which step it trains and on how many test images its accuracy is measured: the
    one fact config.json does not record, and reuse must know it."""
    path = Path(folder) / MARKER_FILE
    atomic.write_text(path, json.dumps({"step": step.model, "test_images": plan.test_images}) + "\n")
    return path


def read_marker(folder: str | Path) -> dict | None:
    """The progression's note in a run folder; {} when there is none (a run of `convtui train` or the
    dashboard), None when it is there but cannot be read (then the run is not reused)."""
    path = Path(folder) / MARKER_FILE
    if not path.exists():
        return {}
    try:
        marker = json.loads(read_bounded(path, MAX_MARKER_BYTES).decode("utf-8"))
    except (OSError, NotRegularFile, TooLarge, ValueError):  # ValueError: bad UTF-8 or JSON
        return None
    return marker if isinstance(marker, dict) else None


@dataclass(frozen=True)
class Reuse:
    """A finished run that stands in for a step: its test accuracy per epoch up to the step's epochs."""

    model: str
    run: Run
    curve: tuple[tuple[int, float], ...]  # (epoch from 1, test accuracy 0..1)

    @property
    def accuracy(self) -> float:
        return self.curve[-1][1]


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def match_run(run: Run, marker: dict | None, plan: Plan, step: ProgressionStep) -> Reuse | None:
    """`run` as a stand-in for `step`, or None. It matches when it trained the same preset settings on the same
    training images (MNIST's first `step.images`), was tested on the plan's test images, and completed at least
    the step's epochs: its figures at that epoch are what the plan's run would give, bar the seed (the learning
    rate depends on the epoch only, so a longer run passes through the same point)."""
    if marker is None or run.model_name != step.model:
        return None
    config, wanted = run.config, plan.config(step)
    if config.get("data") is not None:
        return None  # another data set (Fashion-MNIST ...)
    if not all(name in config and _same(config[name], getattr(wanted, name)) for name in MATCHED_SETTINGS):
        return None
    limit = config.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        return None
    if min(limit or MNIST_TRAIN_IMAGES, MNIST_TRAIN_IMAGES) != min(step.images, MNIST_TRAIN_IMAGES):
        return None
    tested_on = marker.get("test_images", MNIST_TEST_IMAGES)  # convtui train and the dashboard test on all
    if not isinstance(tested_on, int) or min(tested_on, MNIST_TEST_IMAGES) != min(plan.test_images,
                                                                                   MNIST_TEST_IMAGES):
        return None
    # Whole epochs only: a stop cuts the last row short (its position is not a whole number).
    accuracy = run.metrics.get("val_accuracy", [])
    whole = {int(epoch): accuracy[i] for i, (epoch, position) in enumerate(zip(run.epochs, run.epoch_positions()))
             if epoch == position and i < len(accuracy) and math.isfinite(accuracy[i])}
    if not all(epoch in whole for epoch in range(1, step.epochs + 1)):
        return None
    return Reuse(step.model, run, tuple((epoch, whole[epoch]) for epoch in range(1, step.epochs + 1)))


def find_reusable(plan: Plan, root: str | Path = "runs") -> dict[str, Reuse]:
    """For each step, the newest run under `root` that matches it (see `match_run`). Unreadable folders are
    skipped: reuse is an offer, and a damaged run is simply retrained."""
    found: dict[str, Reuse] = {}
    try:
        folders = find_runs(root)  # newest first
    except RunError:
        return found
    for folder in folders:
        try:
            run = read_run(folder)
        except RunError:
            continue
        marker = read_marker(folder)
        for step in plan.steps:
            if step.model not in found:
                match = match_run(run, marker, plan, step)
                if match is not None:
                    found[step.model] = match
    return {step.model: found[step.model] for step in plan.steps if step.model in found}  # the lecture's order


def run_folder_name(model: str) -> str:
    """What `default_run_dir` puts after the timestamp: "…-progression-cnn", so a person sees it in Runs."""
    return f"progression-{model}"
