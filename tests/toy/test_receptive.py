"""Receptive-field footprints against brute force on the core's kernels: perturb a pixel, see what changes."""

import numpy as np
import pytest

from convtui.core.ops import conv2d_forward, maxpool2d_forward
from convtui.toy.receptive import (MNIST_CNN, PRESETS, STRIDED, XO_TOY, LayerSpec, Stack, layer_shapes,
                                   receptive_field_size, sample_image, trace)


def brute_force_influence(stack: Stack, layer: int) -> np.ndarray:
    """changed[p, q, i, j]: does output (i, j) of `layer` move when input pixel (p, q) is pushed up?

    All-ones filters and positive inputs mean a large push can never cancel out, and always wins a max pool
    window it enters, so "changes" is exactly "is connected to".
    """
    n = stack.input_size
    base = np.random.default_rng(0).uniform(0, 1, size=(1, 1, n, n))
    batch = np.repeat(base, n * n + 1, axis=0)
    for index in range(n * n):
        batch[index + 1, 0, index // n, index % n] += 1000.0
    x = batch
    for spec in stack.layers[:layer]:
        if spec.kind == "conv":
            x = conv2d_forward(x, np.ones((1, 1, spec.f, spec.f)), None, spec.s, spec.padding)
        else:
            x, _ = maxpool2d_forward(x, spec.f, spec.s)
    changed = x[1:, 0] != x[0, 0]  # (n*n, oh, ow)
    return changed.reshape(n, n, *changed.shape[1:])


@pytest.mark.parametrize("stack", PRESETS, ids=lambda s: s.name)
def test_footprints_match_brute_force_for_every_cell_of_every_layer(stack):
    for layer in range(1, len(stack.layers) + 1):
        influence = brute_force_influence(stack, layer)
        _, height, width = layer_shapes(stack)[layer]
        assert influence.shape[2:] == (height, width)
        for i in range(height):
            for j in range(width):
                image = trace(stack, layer, i, j)[-1]
                expected = np.zeros((stack.input_size, stack.input_size), dtype=bool)
                expected[image.rows[0]:image.rows[1] + 1, image.cols[0]:image.cols[1] + 1] = True
                np.testing.assert_array_equal(influence[:, :, i, j], expected, err_msg=f"layer {layer} cell {i},{j}")


def test_mnist_cnn_shapes_come_from_the_core_layers():
    assert layer_shapes(MNIST_CNN) == [(1, 28, 28), (32, 28, 28), (32, 14, 14), (64, 14, 14), (64, 7, 7)]


def test_mnist_centre_neuron_sees_16x16_and_each_level_is_listed():
    levels = trace(MNIST_CNN, 4, 3, 3)
    assert [f.level for f in levels] == [4, 3, 2, 1, 0]
    assert [f.size for f in levels] == [(1, 1), (2, 2), (6, 6), (12, 12), (16, 16)]
    assert levels[-1].rows == (6, 21) and levels[-1].cols == (6, 21)
    assert [receptive_field_size(MNIST_CNN, k) for k in (1, 2, 3, 4)] == [5, 6, 14, 16]


def test_corner_neuron_footprint_is_clipped_by_padding():
    image = trace(MNIST_CNN, 4, 0, 0)[-1]
    # Unclipped it would be rows -6..9 (16 wide); the six padding rows are cut off.
    assert image.rows == (0, 9) and image.size == (10, 10) and image.reach == 16


def test_trace_rejects_cells_outside_the_layer():
    with pytest.raises(ValueError, match="outside"):
        trace(MNIST_CNN, 4, 7, 0)
    with pytest.raises(ValueError, match="layer must be"):
        trace(MNIST_CNN, 5, 0, 0)


def test_pool_partial_window_at_the_edge():
    stack = Stack("odd", 7, (LayerSpec("pool", 2, 2),))
    assert layer_shapes(stack)[1] == (1, 4, 4)
    assert trace(stack, 1, 3, 3)[-1].rows == (6, 6)


def test_sample_images_are_a_real_digit_and_the_lecture_x():
    digit = sample_image(MNIST_CNN)
    assert digit.shape == (28, 28) and digit.min() == 0.0 and digit.max() == 1.0
    assert 50 < np.count_nonzero(digit > 0.5) < 400  # a stroke, not noise or a blank
    x = sample_image(XO_TOY)
    assert x.shape == (9, 9)
    np.testing.assert_array_equal(np.diag(x), [-1, 1, 1, 1, 1, 1, 1, 1, -1])  # the X's diagonal, border paper
    assert sample_image(STRIDED) is not None  # also 28x28


def test_missing_mnist_file_gives_none(monkeypatch, tmp_path):
    import convtui.core.storage.datasets as data
    import convtui.toy.receptive as receptive

    assert receptive.mnist_test_digit(10**6) is None  # past the end of the real test set
    monkeypatch.setattr(data, "mnist_dir", lambda: tmp_path)
    assert receptive.mnist_test_digit(0) is None
