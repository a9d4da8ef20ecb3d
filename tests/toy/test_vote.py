"""The vote's weights are trained with the core's Dense layer and softmax cross-entropy, deterministically."""

import numpy as np
import pytest

from convtui.core.ops import softmax_cross_entropy
from convtui.toy.images import shipped_images
from convtui.toy.vote import feature_matrix, train_vote_weights, vote


@pytest.fixture(scope="module")
def weights():
    return train_vote_weights(shipped_images())


def test_twelve_features_like_the_lecture(weights):
    x, y = feature_matrix(shipped_images())
    assert x.shape == (12, 12) and weights.w.shape == (12, 2)
    assert list(y[:6]) == [0] * 6 and list(y[6:]) == [1] * 6


def test_training_lowers_the_loss_and_classifies_every_shipped_image(weights):
    x, y = feature_matrix(shipped_images())
    untrained_loss = softmax_cross_entropy(np.zeros((12, 2)), y)[0]
    assert untrained_loss == pytest.approx(np.log(2))
    assert weights.loss < 0.2 < untrained_loss
    assert weights.train_accuracy == 1.0
    for image in shipped_images():
        assert vote(image.pixels, weights).prediction == image.label, image.name


def test_training_is_deterministic(weights):
    again = train_vote_weights(shipped_images())
    np.testing.assert_array_equal(again.w, weights.w)


def test_votes_add_up_to_the_scores(weights):
    image = shipped_images()[0]
    result = vote(image.pixels, weights)
    np.testing.assert_allclose(result.votes, result.features[:, None] * weights.w)
    np.testing.assert_allclose(result.scores, result.votes.sum(axis=0) + weights.b)
    assert result.probabilities.sum() == pytest.approx(1.0)
    # A blank page has no features at all, so only the biases speak.
    blank = vote(-np.ones((9, 9)), weights)
    assert not blank.features.any()
    np.testing.assert_allclose(blank.scores, weights.b)


def test_shown_working_adds_up_and_agrees_with_the_network():
    from convtui.toy.formatting import truncate
    from convtui.toy.images import shipped_images
    from convtui.toy.vote import FEATURE_DECIMALS, shipped_vote_weights, vote, working

    weights = shipped_vote_weights()
    for image in shipped_images():
        result = vote(image.pixels, weights)
        shown = working(result, weights)
        assert shown.prediction == result.prediction
        assert np.abs(shown.scores - result.scores).max() < 0.05
        for f, w, v in zip(shown.features, shown.weights, shown.votes):
            assert f == truncate(f, FEATURE_DECIMALS)
            for k in range(2):
                assert v[k] == truncate(f * w[k], 2)
        np.testing.assert_allclose(shown.scores, shown.votes.sum(axis=0) + shown.bias, atol=1e-9)
