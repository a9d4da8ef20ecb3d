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
from convtui.toy.formatting import truncate
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


FEATURE_DECIMALS = 4  # features are shown to 4 places: at 2, the +-19 weights would turn 0.01 into 0.19 of score


@dataclass(frozen=True)
class VoteWorking:
    """The vote as the screen shows it, worked from the shown (truncated) numbers, so a learner who redoes any
    sum by hand gets the number on screen: vote = truncate(shown value x shown weight) to 2 places, score = sum
    of the shown votes + the shown bias (exact), percentage = softmax of the shown scores. The shown scores stay
    within 0.05 of the network's full-precision ones on the shipped images (tests/toy/test_vote.py)."""

    features: np.ndarray  # (F,) truncated to FEATURE_DECIMALS places
    weights: np.ndarray  # (F, 2) truncated to 2 places
    votes: np.ndarray  # (F, 2) truncate(features * weights) to 2 places, from the shown operands
    bias: np.ndarray  # (2,) truncated to 2 places
    scores: np.ndarray  # (2,) sum of votes + bias: exact sums of 2-place numbers
    probabilities: np.ndarray  # (2,) softmax of the shown scores

    @property
    def prediction(self) -> str:
        return LABELS[int(np.argmax(self.scores))]


def _units(values, decimals: int) -> np.ndarray:
    """Numbers as whole counts of 10**-decimals (int64), truncated as shown: 0.1499 -> 14 at 2 places.
    Integer arithmetic keeps the sums exact."""
    return np.vectorize(lambda v: round(truncate(v, decimals) * 10 ** decimals),
                        otypes=[np.int64])(np.asarray(values, np.float64))


def working(result: Vote, weights: VoteWeights) -> VoteWorking:
    """The shown working for a vote (see VoteWorking)."""
    feature_units = _units(result.features, FEATURE_DECIMALS)
    weight_units = _units(weights.w, 2)
    products = feature_units[:, None] * weight_units  # in 10**-(FEATURE_DECIMALS + 2)
    scale = 10 ** FEATURE_DECIMALS
    vote_units = np.sign(products) * (np.abs(products) // scale)  # truncated toward zero to hundredths
    bias_units = _units(weights.b, 2)
    scores = (vote_units.sum(axis=0) + bias_units) / 100
    shifted = np.exp(scores - scores.max())
    return VoteWorking(feature_units / scale, weight_units / 100, vote_units / 100, bias_units / 100, scores,
                       shifted / shifted.sum())


_TRAINED: VoteWeights | None = None


def shipped_vote_weights() -> VoteWeights:
    """The weights trained on the shipped images, computed once per process (a fraction of a second)."""
    global _TRAINED
    if _TRAINED is None:
        from convtui.toy.images import shipped_images

        _TRAINED = train_vote_weights(shipped_images())
    return _TRAINED
