"""Numeric snapshots of a model for the dashboard's panels: plain arrays, no terminal code.

The dashboard's worker thread calls these every N steps and at each epoch end, then posts the small results to
the UI thread. Everything here is inference only (`training=False`), so taking a snapshot never changes the
model or its dropout random stream.

Images are NCHW float32 in [0, 1]: (N, 1, 28, 28), like the training data.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from convtui.core.evaluate import confusion_matrix, per_class_accuracy
from convtui.core.layers import Conv2D, Dense, MaxPool2D, MeanPool2D, Param, ReLU, Sequential, Sigmoid

# The percentiles drawn as bands, in the spirit of tensorflow-without-a-phd: the outer band holds 90% of the
# weights, the inner band the middle 50%, and the line is the median.
BAND_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so large logits do not overflow."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


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
    """Class probabilities (N, 10) for NCHW images, in batches."""
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
        n_errors=int(wrong.sum()), n_evaluated=len(labels), loss=cross_entropy(probs, labels))


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
    confusion: np.ndarray  # (10, 10) on the test sample
    class_accuracy: np.ndarray  # (10,)
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
    confusion = confusion_matrix(test_labels, test_probs.argmax(axis=1))
    image, label = feature_digit if feature_digit is not None else (test_images[0], int(test_labels[0]))
    maps = feature_maps(model, image) if has_convolutions(model) else []
    return Snapshot(
        step=step,
        train=digit_predictions(model, train_images, train_labels, show),
        test=digit_predictions(model, test_images, test_labels, show, probs=test_probs),
        confusion=confusion, class_accuracy=per_class_accuracy(confusion),
        bands=weight_bands(model), filters=first_conv_filters(model), feature_maps=maps,
        feature_label=int(label) if maps else None)


# ---------------------------------------------------------------------------------------------- drawn digits
MNIST_BOX = 20  # MNIST digits were scaled to fit a 20x20 box, then centred by mass in 28x28


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resampling at pixel centres (enough for a 28x28 drawing)."""
    h, w = image.shape
    ys = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def centre_like_mnist(canvas: np.ndarray, size: int = 28) -> np.ndarray:
    """A drawing (size x size, ink in [0, 1]) prepared the way MNIST's digits were: the ink's bounding box is
    scaled so its longer side is 20 pixels, then the digit is moved so its centre of mass sits in the middle.
    An empty canvas comes back empty."""
    canvas = np.asarray(canvas, dtype=np.float64)
    rows, cols = np.nonzero(canvas > 0.05)
    if len(rows) == 0:
        return np.zeros((size, size))
    crop = canvas[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = MNIST_BOX / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    digit = np.clip(resize_bilinear(crop, h, w), 0, 1)
    # Centre of mass of the scaled digit, then the top-left corner that puts it at the middle of the image,
    # kept inside the image.
    total = digit.sum()
    cy = (digit.sum(axis=1) * np.arange(h)).sum() / total
    cx = (digit.sum(axis=0) * np.arange(w)).sum() / total
    top = int(np.clip(round((size - 1) / 2 - cy), 0, size - h))
    left = int(np.clip(round((size - 1) / 2 - cx), 0, size - w))
    out = np.zeros((size, size))
    out[top:top + h, left:left + w] = digit
    return out


def inference_copy(model: Sequential) -> Sequential:
    """A copy of `model` for prediction on another thread while training goes on: its own weights, none of the
    activations the layers keep for backward (a deep copy would duplicate those too: tens of MB for the cnn)."""
    layers = []
    for layer in model.layers:
        clone = copy.copy(layer)
        for name, value in vars(layer).items():
            if isinstance(value, Param):
                setattr(clone, name, Param(value.name, value.value.copy()))
            elif name.startswith("_"):
                setattr(clone, name, None)  # caches for backward, refilled by the next forward
            elif name == "workspace":
                setattr(clone, name, {})  # the conv's reusable buffers: sharing them would mix two models' data
        layers.append(clone)
    return Sequential(layers, input_shape=model.input_shape)
