"""Numeric snapshots of a model for the dashboard's panels: plain arrays, no terminal code.

The dashboard's worker thread calls these every N steps and at each epoch end, then posts the small results to
the UI thread. Everything here is inference only (`training=False`), so taking a snapshot never changes the
model or its dropout random stream.

Images are NCHW float32 in [0, 1]: (N, 1, 28, 28), like the training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convtui.core.ops import softmax
from convtui.core.training.evaluate import confusion_matrix, correct_count, per_class_accuracy
from convtui.core.nn.layers import Conv2D, Dense, MaxPool2D, MeanPool2D, ReLU, Sigmoid
from convtui.core.nn.sequential import Sequential

# The percentiles drawn as bands, in the spirit of tensorflow-without-a-phd: the outer band holds 90% of the
# weights, the inner band the middle 50%, and the line is the median.
BAND_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)


@dataclass(frozen=True)
class DigitPredictions:
    """A sample of digits with the model's guesses, misclassified ones first."""

    images: np.ndarray  # (n, 28, 28) float in [0, 1]
    labels: np.ndarray  # (n,) int
    predicted: np.ndarray  # (n,) int
    confidence: np.ndarray  # (n,) probability of the predicted class
    indices: np.ndarray  # (n,) positions in the array the sample came from
    n_errors: int  # misclassified digits in the whole evaluated sample (may exceed n)
    n_evaluated: int
    loss: float  # mean cross-entropy -log p(true class) over the whole evaluated sample

    @property
    def accuracy(self) -> float:
        return 1.0 - self.n_errors / max(self.n_evaluated, 1)


def predict(model: Sequential, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Class probabilities (N, classes) for NCHW images, in batches."""
    return softmax(model.predict_logits(images, batch_size=batch_size).astype(np.float64))


def digit_predictions(model: Sequential, images: np.ndarray, labels: np.ndarray, show: int = 40,
                      probs: np.ndarray | None = None) -> DigitPredictions:
    """Predict `images` and keep `show` of them: every error first (in order), then the correct ones.

    `probs` may be passed in when the caller already predicted these images (the confusion matrix needs the
    same predictions), so a snapshot runs the model once.
    """
    labels = np.asarray(labels).astype(np.int64)
    if probs is None:
        probs = predict(model, images)
    predicted = probs.argmax(axis=1)
    wrong = predicted != labels
    # A stable sort on "is correct" puts errors first and keeps the data's order within each group.
    order = np.argsort(~wrong, kind="stable")[:show]
    return DigitPredictions(
        images=images[order].reshape(len(order), images.shape[-2], images.shape[-1]),
        labels=labels[order], predicted=predicted[order],
        confidence=probs[order, predicted[order]], indices=order,
        n_errors=len(labels) - correct_count(probs, labels), n_evaluated=len(labels),
        loss=cross_entropy(probs, labels))


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean of -log p(true class); probabilities are floored at 1e-12 so a confident mistake stays finite."""
    picked = probs[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


@dataclass(frozen=True)
class Bands:
    """Percentiles of one parameter array at one moment: `values[i]` is the `percentiles[i]`-th percentile."""

    name: str  # e.g. "dense1.w"
    values: tuple[float, ...]


def weight_bands(model: Sequential, percentiles=BAND_PERCENTILES) -> list[Bands]:
    """Percentiles of every weight and bias array of the model, in layer order."""
    return [Bands(p.name, tuple(float(v) for v in np.percentile(p.value, percentiles)))
            for p in model.params()]


@dataclass
class BandHistory:
    """Percentile bands per parameter over time, for the 'weights and biases' panel."""

    percentiles: tuple[float, ...] = BAND_PERCENTILES
    steps: list[int] = field(default_factory=list)
    series: dict[str, list[tuple[float, ...]]] = field(default_factory=dict)

    def add(self, step: int, bands: list[Bands]) -> None:
        self.steps.append(step)
        for band in bands:
            self.series.setdefault(band.name, []).append(band.values)

    def array(self, name: str) -> np.ndarray:
        """(time, percentiles) for one parameter."""
        return np.asarray(self.series[name], dtype=np.float64)


def first_conv_filters(model: Sequential) -> np.ndarray | None:
    """The first convolution's filters as (K, FH, FW) for a one-channel input, or None for a dense model."""
    conv = next((layer for layer in model.layers if isinstance(layer, Conv2D)), None)
    if conv is None:
        return None
    # (K, C, FH, FW); MNIST has one input channel, and for several channels the mean shows the overall shape.
    return conv.w.value.mean(axis=1)


def feature_maps(model: Sequential, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The activations of one image through the convolutional part of the model, named like the lecture.

    `convN` is the output after the N-th convolution's activation (ReLU), `poolN` after the N-th pooling.
    Returns [(name, (C, H, W))]; empty for a model without convolutions. Stops at the first dense layer.
    """
    x = np.asarray(image, dtype=np.float32).reshape((1,) + tuple(model.input_shape))
    maps: list[tuple[str, np.ndarray]] = []
    n_conv = n_pool = 0
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            break
        x = layer.forward(x, training=False)
        nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
        if isinstance(layer, Conv2D):
            n_conv += 1
            if not isinstance(nxt, (ReLU, Sigmoid)):
                maps.append((f"conv{n_conv}", x[0].copy()))
        elif isinstance(layer, (ReLU, Sigmoid)) and x.ndim == 4:
            maps.append((f"conv{n_conv}", x[0].copy()))
        elif isinstance(layer, (MaxPool2D, MeanPool2D)):
            n_pool += 1
            maps.append((f"pool{n_pool}", x[0].copy()))
    return maps


def has_convolutions(model: Sequential) -> bool:
    return any(isinstance(layer, Conv2D) for layer in model.layers)


@dataclass(frozen=True)
class Snapshot:
    """Everything the panels 3-6 and the filter/feature-map view need, taken at one moment."""

    step: int
    train: DigitPredictions
    test: DigitPredictions
    confusion: np.ndarray  # (classes, classes) on the test sample
    class_accuracy: np.ndarray  # (classes,)
    bands: list[Bands]
    filters: np.ndarray | None  # (K, FH, FW)
    feature_maps: list[tuple[str, np.ndarray]]
    feature_label: int | None  # the true label of the digit shown through the layers


def take_snapshot(model: Sequential, step: int, train_images: np.ndarray, train_labels: np.ndarray,
                  test_images: np.ndarray, test_labels: np.ndarray,
                  feature_digit: tuple[np.ndarray, int] | None = None, show: int = 32) -> Snapshot:
    """One snapshot over given samples. Keep the samples small (hundreds): this runs between training steps.

    `feature_digit` is (image (1, 28, 28), label) to follow through the layers; default: the first test image.
    """
    test_probs = predict(model, test_images)
    confusion = confusion_matrix(test_labels, test_probs.argmax(axis=1), n_classes=test_probs.shape[1])
    image, label = feature_digit if feature_digit is not None else (test_images[0], int(test_labels[0]))
    maps = feature_maps(model, image) if has_convolutions(model) else []
    return Snapshot(
        step=step,
        train=digit_predictions(model, train_images, train_labels, show),
        test=digit_predictions(model, test_images, test_labels, show, probs=test_probs),
        confusion=confusion, class_accuracy=per_class_accuracy(confusion),
        bands=weight_bands(model), filters=first_conv_filters(model), feature_maps=maps,
        feature_label=int(label) if maps else None)
