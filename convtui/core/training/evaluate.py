"""Accuracy, loss and the confusion matrix of a model on a dataset, in batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convtui.core import ops
from convtui.core.storage.datasets import DataError, Dataset, to_float
from convtui.core.nn.sequential import Sequential

N_CLASSES = 10


def correct_count(scores: np.ndarray, labels: np.ndarray) -> int:
    """How many rows of `scores` (N, classes) put their highest score on the row's label. Logits and softmax
    probabilities give the same count: the softmax keeps each row's order. The one accuracy of the package."""
    return int(np.count_nonzero(np.asarray(scores).argmax(axis=1) == np.asarray(labels)))


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """correct_count / N, from 0 to 1 (0 for no examples)."""
    return correct_count(scores, labels) / max(len(labels), 1)


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean cross-entropy
    accuracy: float  # 0..1
    predictions: np.ndarray  # (N,) predicted class
    probabilities: np.ndarray  # (N, classes) softmax outputs, float32
    n_correct: int


def evaluate(model: Sequential, data: Dataset, batch_size: int = 1000) -> Evaluation:
    """Inference mode (dropout off) over `data`; batches keep the activations small."""
    losses, probabilities = [], []
    for start in range(0, len(data), batch_size):
        images, labels = data.images[start:start + batch_size], data.labels[start:start + batch_size]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):  # see predict_logits
            logits = model.forward(to_float(images), training=False)
        loss, _, probs = ops.softmax_cross_entropy(logits, labels)
        losses.append(loss * len(labels))
        probabilities.append(probs)
    probabilities = np.concatenate(probabilities)
    n_correct = correct_count(probabilities, data.labels)
    return Evaluation(float(sum(losses) / len(data)), n_correct / len(data), probabilities.argmax(axis=1),
                      probabilities, n_correct)


def check_model_fits(model: Sequential, data: Dataset, where) -> int:
    """Raise DataError (naming `where`) unless `model` takes `data`'s images and has a score for each of its
    labels; return the model's class count."""
    if data.input_shape != model.input_shape:
        raise DataError(f"{where}: the model takes images of shape {model.input_shape}, the test set has "
                        f"{data.input_shape}")
    n_outputs = model.shapes()[-1][1][0]
    if data.n_classes > n_outputs:
        raise DataError(f"{where}: the model tells {n_outputs} classes apart, the test set has labels up to "
                        f"{data.n_classes - 1}")
    return n_outputs


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """counts[true, predicted]; rows are the true digits, columns the predictions."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return counts


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Diagonal over row sums (NaN for a class with no examples)."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)
