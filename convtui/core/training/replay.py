"""Replay: compact snapshots a training run records over time, so the Runs screen can scrub back through it.

Each snapshot holds, at one moment of training: the conv1 filters (when the model has a convolution), the
confusion matrix on a fixed sample of test digits, the predicted class and its confidence for a fixed set of
digits (their images are stored once), and the 5/25/50/75/95 percentiles of every weight and bias array. The
numbers come from `snapshots` (the dashboard's own functions), so a replayed moment reads like the live panels.

When one is taken (`recording_steps`): before the first step, after 1%, 3%, 10% and 30% of the first epoch, at
every epoch end, and where a stop or a time budget ends the run (then the last snapshot is the saved checkpoint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from convtui.core.nn.sequential import Sequential
from convtui.core.storage.datasets import Dataset, to_float
from convtui.core.training import snapshots

# Most of the learning happens in the first epoch, and early on accuracy grows about with the logarithm of the
# steps taken, so the points inside it are spaced by a factor of ~3 rather than evenly: evenly spaced points
# would all land after the model has learned most of what it will. Measured (`convtui train --model cnn`, full
# MNIST, accuracy on the 1,000 replay digits): 10.8% before the first step, then 50.5% after 6 steps (1%),
# 81.3% after 18, 93.9% after 60, 97.7% after 180, 98.8% at the end of epoch 1 and 99.2% after epoch 2.
FIRST_EPOCH_FRACTIONS = (0.01, 0.03, 0.10, 0.30)
SAMPLE_IMAGES = 1000  # test digits the confusion matrix counts (the Runs screen's quick evaluation uses 1,000 too)
DIGITS_PER_CLASS = 4  # 4 of each digit: 40 for MNIST, small enough to show on one screen
FORMAT, VERSION = "convtui-replay", 1


def recording_steps(steps_per_epoch: int) -> list[int]:
    """The steps of the first epoch after which a snapshot is taken (0 is before any step; the epoch's end is
    taken as an epoch end). A tiny epoch merges points: 2 steps per epoch give [0, 1]."""
    inside = {max(1, round(fraction * steps_per_epoch)) for fraction in FIRST_EPOCH_FRACTIONS}
    return [0] + sorted(step for step in inside if step < steps_per_epoch)


@dataclass(frozen=True)
class ReplaySample:
    """The fixed images every snapshot predicts: the confusion matrix's sample and, within it, the shown digits."""

    images: np.ndarray  # (N, H, W) or (N, C, H, W) uint8, the data's own pixels
    labels: np.ndarray  # (N,) uint8
    digits: np.ndarray  # (D,) positions in the sample of the digits shown with their predictions
    source: str  # "test", or "train" when the run has no test set


def choose_sample(data: Dataset, source: str, size: int = SAMPLE_IMAGES,
                  per_class: int = DIGITS_PER_CLASS) -> ReplaySample:
    """The first `size` images of `data` and, among them, the first `per_class` of each class in class order, so
    the same digits sit in the same places in every snapshot and a learner watches each one change its mind."""
    sample = data.head(size)
    labels = np.asarray(sample.labels)
    digits = [np.flatnonzero(labels == c)[:per_class] for c in range(data.n_classes)]
    chosen = np.concatenate(digits) if digits else np.zeros(0, dtype=np.int64)
    return ReplaySample(np.asarray(sample.images), labels.astype(np.uint8), chosen.astype(np.int64), source)


@dataclass(frozen=True)
class ReplaySnapshot:
    """One moment: after `step` steps of 0-based `epoch`, the weights having seen `trained_steps` updates."""

    epoch: int
    step: int
    trained_steps: int
    confusion: np.ndarray  # (classes, classes) counts on the sample: rows true, columns predicted
    predicted: np.ndarray  # (D,) uint8, the shown digits' predicted classes
    confidence: np.ndarray  # (D,) float16, the probability of that class
    bands: np.ndarray  # (params, 5) float32, BAND_PERCENTILES of each parameter array
    filters: np.ndarray | None  # (K, FH, FW) float16, conv1's filters


def take(model: Sequential, sample: ReplaySample, epoch: int, step: int, trained_steps: int) -> ReplaySnapshot:
    """Predict the sample once and keep what the Runs screen shows. Inference only: the model is unchanged."""
    probs = snapshots.predict(model, to_float(sample.images))
    n_classes = probs.shape[1]
    confusion = snapshots.confusion_matrix(sample.labels, probs.argmax(axis=1), n_classes=n_classes)
    shown = snapshots.digit_predictions(model, sample.images[sample.digits], sample.labels[sample.digits],
                                        show=len(sample.digits), probs=probs[sample.digits])
    # digit_predictions puts errors first; the record keeps the fixed order, so undo its permutation.
    predicted, confidence = np.empty(len(sample.digits), np.int64), np.empty(len(sample.digits), np.float64)
    predicted[shown.indices], confidence[shown.indices] = shown.predicted, shown.confidence
    bands = np.array([band.values for band in snapshots.weight_bands(model)], dtype=np.float32)
    filters = snapshots.first_conv_filters(model)
    # float16 keeps 3 significant digits: a heatmap of ~10 shades and a truncated "98%" cannot show more.
    return ReplaySnapshot(epoch, step, trained_steps, confusion.astype(np.int32), predicted.astype(np.uint8),
                          confidence.astype(np.float16), bands.reshape(-1, len(snapshots.BAND_PERCENTILES)),
                          None if filters is None else filters.astype(np.float16))


@dataclass
class Replay:
    """A run's snapshots in the order they were taken, with the digits they show (stored once)."""

    source: str  # which digits were predicted: "test", or "train" for a run without a test set
    sample_size: int  # images the confusion matrices count
    digit_images: np.ndarray  # (D, H, W) uint8
    digit_labels: np.ndarray  # (D,) uint8
    param_names: list[str]
    snapshots: list[ReplaySnapshot] = field(default_factory=list)

    @classmethod
    def for_sample(cls, sample: ReplaySample, param_names: list[str]) -> Replay:
        images = sample.images[sample.digits]
        if images.ndim == 4:  # (D, C, H, W): the mean over channels shows the shape
            images = images.mean(axis=1).round().astype(np.uint8)
        return cls(sample.source, len(sample.labels), images, sample.labels[sample.digits], list(param_names))

    def __len__(self) -> int:
        return len(self.snapshots)

    def fits(self, other: Replay) -> bool:
        """Whether `other` was taken on the same digits and model layout, so the two can share one record."""
        return (self.source == other.source and self.sample_size == other.sample_size
                and self.param_names == other.param_names and self.digit_images.shape == other.digit_images.shape
                and np.array_equal(self.digit_images, other.digit_images)
                and np.array_equal(self.digit_labels, other.digit_labels))

    def up_to(self, trained_steps: int) -> Replay:
        """The snapshots the weights had passed by `trained_steps` updates: a resumed run keeps those and drops
        any taken later by a run whose checkpoint is older (it diverged after them)."""
        kept = [s for s in self.snapshots if s.trained_steps <= trained_steps]
        return Replay(self.source, self.sample_size, self.digit_images, self.digit_labels, list(self.param_names),
                      kept)

    def label(self, index: int) -> str:
        """"step 60 of epoch 1 (3 of 15)": epochs count from 1, as everywhere a person reads them."""
        snapshot = self.snapshots[index]
        return f"step {snapshot.step:,} of epoch {snapshot.epoch + 1} ({index + 1} of {len(self)})"

    def digit_predictions(self, index: int) -> snapshots.DigitPredictions:
        """The shown digits at snapshot `index`, in their fixed order, as the dashboard's digit grid takes them."""
        snapshot = self.snapshots[index]
        labels, predicted = self.digit_labels.astype(np.int64), snapshot.predicted.astype(np.int64)
        return snapshots.DigitPredictions(
            images=self.digit_images.astype(np.float32) / np.float32(255.0), labels=labels, predicted=predicted,
            confidence=snapshot.confidence.astype(np.float64), indices=np.arange(len(labels)),
            n_errors=int(np.count_nonzero(predicted != labels)), n_evaluated=len(labels),
            loss=math.nan)  # only the predicted class's probability is recorded, not the true class's

    def band_history(self, index: int) -> snapshots.BandHistory:
        """The percentile bands from the first snapshot up to `index`, on the trained-steps axis."""
        history = snapshots.BandHistory()
        for snapshot in self.snapshots[: index + 1]:
            history.add(snapshot.trained_steps, [snapshots.Bands(name, tuple(float(v) for v in values))
                                                 for name, values in zip(self.param_names, snapshot.bands)])
        return history


class Recorder:
    """What the trainer calls: takes snapshots at the recording points and hands each new record to `save`."""

    def __init__(self, model: Sequential, sample: ReplaySample, steps_per_epoch: int, save,
                 earlier: Replay | None = None, first_epoch_points: bool = True):
        self.model, self.sample, self.save = model, sample, save
        self.replay = Replay.for_sample(sample, [p.name for p in model.params()])
        if earlier is not None and earlier.fits(self.replay):
            self.replay.snapshots = list(earlier.snapshots)
        self.points = set(recording_steps(steps_per_epoch)[1:]) if first_epoch_points else set()

    def due(self, epoch: int, step: int) -> bool:
        """A point inside the first epoch (the epoch ends and the start are recorded by `record` directly)."""
        return epoch == 0 and step in self.points

    def record(self, epoch: int, step: int, trained_steps: int) -> ReplaySnapshot:
        last = self.replay.snapshots[-1] if self.replay.snapshots else None
        if last is not None and last.trained_steps == trained_steps:
            return last  # a stop right after an epoch end, or a resumed run's start: those weights are recorded
        snapshot = take(self.model, self.sample, epoch, step, trained_steps)
        self.replay.snapshots.append(snapshot)
        self.save(self.replay)
        return snapshot
