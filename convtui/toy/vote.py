"""The fully connected vote: flatten the final maps, let every feature vote for X and for O, compare scores.

The weights are LEARNED, not set by hand: a single Dense layer (12 features -> 2 classes) trained with
softmax cross-entropy and SGD from `convtui.core` on the twelve shipped images (the lecture's X and O and
their trickier variants), in float64, seeded, so every run gives the same weights. The learner's own images
are never trained on: they are only classified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convtui.core.ops import sgd_update, softmax_cross_entropy
from convtui.core.nn.layers import Dense
from convtui.toy.images import LABELS, XOImage
from convtui.toy.xo import features

DEPTH = 2  # conv-ReLU-pool twice: 3 maps of 2x2 = 12 features, as many as the lecture's vote vector


@dataclass(frozen=True)
class VoteWeights:
    """w (features, 2) and b (2,), columns in LABELS order (x, o), plus how training went."""

    w: np.ndarray
    b: np.ndarray
    epochs: int
    loss: float
    train_accuracy: float
    method: str = "trained: Dense + softmax cross-entropy + SGD on the 12 shipped images"


@dataclass(frozen=True)
class Vote:
    features: np.ndarray  # (F,) the flattened final maps
    votes: np.ndarray  # (F, 2) feature * weight, for x and for o
    scores: np.ndarray  # (2,) sum of votes + bias
    probabilities: np.ndarray  # (2,) softmax of the scores

    @property
    def prediction(self) -> str:
        return LABELS[int(np.argmax(self.scores))]


def feature_matrix(images: list[XOImage], depth: int = DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """(N, F) features and (N,) label indices (0 = x, 1 = o)."""
    x = np.stack([features(image.pixels, depth) for image in images])
    y = np.array([LABELS.index(image.label) for image in images], dtype=np.int64)
    return x, y


def train_vote_weights(images: list[XOImage], epochs: int = 400, learning_rate: float = 2.0,
                       momentum: float = 0.9, seed: int = 0, depth: int = DEPTH) -> VoteWeights:
    """Full-batch SGD with momentum on the given images; deterministic for a given seed."""
    x, y = feature_matrix(images, depth)
    dense = Dense(x.shape[1], len(LABELS), rng=np.random.default_rng(seed), dtype=np.float64, name="vote")
    velocities = [np.zeros_like(p.value) for p in dense.params()]
    loss = float("nan")
    for _ in range(epochs):
        logits = dense.forward(x, training=True)
        loss, dlogits, _ = softmax_cross_entropy(logits, y)
        dense.backward(dlogits)
        for param, velocity in zip(dense.params(), velocities):
            sgd_update(param.value, param.grad, velocity, learning_rate, momentum)
    predictions = np.argmax(dense.forward(x), axis=1)
    # Final loss after the last update, so the number shown matches the weights shown.
    loss, _, _ = softmax_cross_entropy(dense.forward(x), y)
    return VoteWeights(dense.w.value.copy(), dense.b.value.copy(), epochs, float(loss),
                       float(np.mean(predictions == y)))


def vote(pixels: np.ndarray, weights: VoteWeights, depth: int = DEPTH) -> Vote:
    """Every feature's vote for x and for o, and the two scores."""
    feature_vector = features(pixels, depth)
    votes = feature_vector[:, None] * weights.w  # (F, 2)
    scores = votes.sum(axis=0) + weights.b
    shifted = np.exp(scores - scores.max())
    return Vote(feature_vector, votes, scores, shifted / shifted.sum())


_TRAINED: VoteWeights | None = None


def shipped_vote_weights() -> VoteWeights:
    """The weights trained on the shipped images, computed once per process (a fraction of a second)."""
    global _TRAINED
    if _TRAINED is None:
        from convtui.toy.images import shipped_images

        _TRAINED = train_vote_weights(shipped_images())
    return _TRAINED
