"""The dashboard's numeric snapshots, checked against plain NumPy on small hand-built models."""

import numpy as np
import pytest

from convtui.core import ops

from convtui.core.training import drawn_digits, snapshots
from convtui.core.nn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from convtui.core.nn.sequential import Sequential


def small_cnn(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential([
        Conv2D(1, 4, 3, padding="same", rng=rng, name="conv1"), ReLU(), MaxPool2D(2),
        Conv2D(4, 6, 3, padding="same", rng=rng, name="conv2"), ReLU(), MaxPool2D(2),
        Flatten(), Dense(6 * 7 * 7, 10, rng=rng, name="dense1"),
    ])


def softmax_model(seed=0):
    return Sequential([Flatten(), Dense(784, 10, rng=np.random.default_rng(seed), name="dense1")])


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    probs = ops.softmax(np.array([[1000.0, 1000.0, 0.0], [0.0, 1.0, 2.0]]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[0], [0.5, 0.5, 0.0], atol=1e-12)
    e = np.exp([0.0, 1.0, 2.0])
    np.testing.assert_allclose(probs[1], e / e.sum())


def test_digit_predictions_put_errors_first_in_data_order():
    model = softmax_model()
    rng = np.random.default_rng(1)
    images = rng.random((30, 1, 28, 28), dtype=np.float32)
    probs = snapshots.predict(model, images)
    predicted = probs.argmax(axis=1)
    labels = predicted.copy()
    wrong_at = [3, 17, 25]
    labels[wrong_at] = (labels[wrong_at] + 1) % 10
    sample = snapshots.digit_predictions(model, images, labels, show=10)
    np.testing.assert_array_equal(sample.indices[:3], wrong_at)
    np.testing.assert_array_equal(sample.indices[3:], [0, 1, 2, 4, 5, 6, 7])
    assert sample.n_errors == 3 and sample.n_evaluated == 30
    assert sample.accuracy == pytest.approx(27 / 30)
    np.testing.assert_array_equal(sample.predicted, predicted[sample.indices])
    np.testing.assert_allclose(sample.confidence, probs[sample.indices, predicted[sample.indices]])
    assert sample.images.shape == (10, 28, 28)
    assert sample.loss == pytest.approx(-np.log(probs[np.arange(30), labels]).mean())
    np.testing.assert_array_equal(sample.images[0], images[3, 0])


def test_weight_bands_match_numpy_percentiles_and_history_stacks_them():
    model = softmax_model()
    bands = snapshots.weight_bands(model)
    assert [b.name for b in bands] == ["dense1.w", "dense1.b"]
    expected = np.percentile(model.layers[1].w.value, snapshots.BAND_PERCENTILES)
    np.testing.assert_allclose(bands[0].values, expected)
    assert bands[0].values[0] < bands[0].values[2] < bands[0].values[4]
    history = snapshots.BandHistory()
    history.add(0, bands)
    model.layers[1].w.value *= 2
    history.add(10, snapshots.weight_bands(model))
    series = history.array("dense1.w")
    assert series.shape == (2, 5) and history.steps == [0, 10]
    np.testing.assert_allclose(series[1], 2 * series[0], rtol=1e-6)


def test_first_conv_filters_and_none_for_dense_model():
    model = small_cnn()
    filters = snapshots.first_conv_filters(model)
    np.testing.assert_array_equal(filters, model.layers[0].w.value[:, 0])
    assert snapshots.first_conv_filters(softmax_model()) is None
    assert snapshots.has_convolutions(model) and not snapshots.has_convolutions(softmax_model())


def test_feature_maps_follow_conv_relu_pool_with_numpy_reference():
    model = small_cnn()
    image = np.random.default_rng(2).random((1, 28, 28), dtype=np.float32)
    maps = snapshots.feature_maps(model, image)
    assert [(name, a.shape) for name, a in maps] == [
        ("conv1", (4, 28, 28)), ("pool1", (4, 14, 14)), ("conv2", (6, 14, 14)), ("pool2", (6, 7, 7))]
    # conv1 by hand: 3x3 same convolution (zero padding 1), plus bias, then ReLU.
    w, b = model.layers[0].w.value, model.layers[0].b.value
    padded = np.pad(image[0].astype(np.float64), 1)
    reference = np.zeros((4, 28, 28))
    for k in range(4):
        for i in range(28):
            for j in range(28):
                reference[k, i, j] = (padded[i:i + 3, j:j + 3] * w[k, 0]).sum() + b[k]
    np.testing.assert_allclose(maps[0][1], np.maximum(reference, 0), rtol=1e-4, atol=1e-5)
    pooled = maps[0][1].reshape(4, 14, 2, 14, 2).max(axis=(2, 4))
    np.testing.assert_allclose(maps[1][1], pooled)
    assert snapshots.feature_maps(softmax_model(), image) == []


def test_snapshot_is_inference_only_and_consistent():
    model = small_cnn()
    rng = np.random.default_rng(3)
    train_x = rng.random((20, 1, 28, 28), dtype=np.float32)
    test_x = rng.random((25, 1, 28, 28), dtype=np.float32)
    train_y, test_y = rng.integers(0, 10, 20), rng.integers(0, 10, 25)
    before = [p.value.copy() for p in model.params()]
    snap = snapshots.take_snapshot(model, 7, train_x, train_y, test_x, test_y,
                                 feature_digit=(test_x[4], int(test_y[4])), show=12)
    for p, old in zip(model.params(), before):
        np.testing.assert_array_equal(p.value, old)
    assert snap.step == 7 and snap.confusion.sum() == 25
    assert np.trace(snap.confusion) == 25 - snap.test.n_errors
    assert len(snap.train.labels) == 12 and snap.feature_label == int(test_y[4])
    assert [name for name, _ in snap.feature_maps] == ["conv1", "pool1", "conv2", "pool2"]
    assert snap.filters.shape == (4, 3, 3)


def test_resize_bilinear_keeps_constants_and_interpolates_linearly():
    np.testing.assert_allclose(drawn_digits.resize_bilinear(np.full((5, 7), 0.3), 10, 3), 0.3)
    ramp = np.tile(np.arange(4.0), (2, 1))  # 0 1 2 3 along x
    doubled = drawn_digits.resize_bilinear(ramp, 2, 8)
    # Pixel centres of the doubled image sit at x = -0.25, 0.25, 0.75, ... in the source (clipped at 0 and 3).
    np.testing.assert_allclose(doubled[0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0])


def test_centre_like_mnist_scales_to_20_pixels_and_centres_the_mass():
    canvas = np.zeros((28, 28))
    canvas[2:12, 1:6] = 1.0  # a 10x5 block in the top-left corner
    out = drawn_digits.centre_like_mnist(canvas)
    rows, cols = np.nonzero(out > 0.5)
    assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 == 10
    cy = (out.sum(axis=1) * np.arange(28)).sum() / out.sum()
    cx = (out.sum(axis=0) * np.arange(28)).sum() / out.sum()
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5
    assert out.max() <= 1.0 and out.min() >= 0.0


def test_centre_like_mnist_leaves_an_empty_canvas_empty():
    assert not drawn_digits.centre_like_mnist(np.zeros((28, 28))).any()


def test_inference_copy_predicts_the_same_and_owns_its_weights():
    model = small_cnn()
    x = np.random.default_rng(4).random((3, 1, 28, 28), dtype=np.float32)
    model.forward(x, training=True)  # fills the conv workspaces, which the copy must not share
    model.layers[0].forward(x, training=True)  # and a layer's own cache, which the copy must not carry
    clone = model.inference_copy()
    assert model.layers[0]._x is not None and clone.layers[0]._x is None
    assert model.layers[0].workspace and clone.layers[0].workspace == {}
    np.testing.assert_array_equal(clone.predict_logits(x), model.predict_logits(x))
    model.layers[0].w.value += 1.0  # training goes on ...
    assert not np.allclose(clone.layers[0].w.value, model.layers[0].w.value)  # ... the copy keeps its weights
