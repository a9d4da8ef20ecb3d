"""Shift, rotate and scale about the centre (core/training/transforms.py): the conventions, exactness where the
maths is exact, and the errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convtui.core.errors import ConvtuiError
from convtui.core.training import transforms as tf


def dot(row, col, size=28, dtype=np.float64):
    image = np.zeros((1, size, size), dtype=dtype)
    image[0, row, col] = 1.0
    return image


def blob(size=28, centre=(13.5, 13.5), radius=8.0):
    """A smooth digit-sized blob, exactly 0 beyond `radius` of its centre (so nothing near the border)."""
    rows, cols = np.mgrid[0:size, 0:size]
    squared = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / radius ** 2
    return (np.clip(1 - squared, 0, None) ** 2)[None]


@given(row=st.integers(0, 27), col=st.integers(0, 27), dx=st.integers(-27, 27), dy=st.integers(-27, 27))
@settings(max_examples=200, deadline=None)
def test_a_whole_pixel_shift_moves_each_pixel_by_exactly_that_much_and_drops_what_leaves(row, col, dx, dy):
    moved = tf.shift(dot(row, col), dx, dy)[0]
    inside = 0 <= row + dy < 28 and 0 <= col + dx < 28
    assert moved.sum() == (1.0 if inside else 0.0)  # exactly one pixel of 1, or nothing: no blur
    if inside:
        assert moved[row + dy, col + dx] == 1.0  # +x is right, +y is down


@pytest.mark.parametrize(("dx", "dy"), [(1, 0), (0, -3), (4, 2), (-2, 5)])
def test_shifting_back_restores_the_interior(dx, dy):
    images = np.random.default_rng(0).random((5, 28, 28)).astype(np.float32)
    back = tf.shift(tf.shift(images, dx, dy), -dx, -dy)
    rows = slice(max(0, -dy, dy), 28 - max(0, dy, -dy))
    cols = slice(max(0, -dx, dx), 28 - max(0, dx, -dx))
    np.testing.assert_array_equal(back[:, rows, cols], images[:, rows, cols])
    assert back.dtype == np.float32


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 1, 28, 28), (2, 9, 13)])
def test_rotation_by_0_and_360_and_scale_1_are_the_identity(shape):
    images = np.random.default_rng(1).random(shape)
    for out in (tf.rotate(images, 0), tf.rotate(images, 360), tf.rotate(images, -720), tf.scale(images, 1),
                tf.transform(images)):
        assert out.shape == images.shape
        np.testing.assert_allclose(out, images, atol=1e-12)


@pytest.mark.parametrize("turns", [1, 2, 3, -1])
def test_quarter_turns_equal_rot90_counter_clockwise_as_seen(turns):
    images = np.random.default_rng(2).random((3, 28, 28))
    np.testing.assert_allclose(tf.rotate(images, 90 * turns), np.rot90(images, turns, axes=(1, 2)), atol=1e-9)


def test_a_positive_angle_turns_counter_clockwise_as_seen():
    # A dot right of the centre, on the centre row of an odd image, goes up (a smaller row) by +90 degrees.
    turned = tf.rotate(dot(7, 11, size=15), 90)[0]
    assert turned[3, 7] == pytest.approx(1.0)


@given(dx=st.floats(-3, 3), dy=st.floats(-3, 3))
@settings(max_examples=60, deadline=None)
def test_bilinear_shifts_conserve_mass_away_from_the_borders(dx, dy):
    # Each input pixel's weights over its four output neighbours sum to 1: sum(out) = sum(in) exactly.
    image = blob()
    assert tf.shift(image, dx, dy).sum() == pytest.approx(image.sum(), rel=1e-9)


@pytest.mark.parametrize("degrees", [10, 33, 45, 137])
def test_rotations_keep_the_mass_and_the_centre_of_mass_of_a_centred_blob(degrees):
    image = blob()
    turned = tf.rotate(image, degrees)
    assert turned.sum() == pytest.approx(image.sum(), rel=0.01)  # bilinear blurs a little, but loses nothing
    rows, cols = np.mgrid[0:28, 0:28]
    assert (turned[0] * rows).sum() / turned.sum() == pytest.approx(13.5, abs=1e-6)
    assert (turned[0] * cols).sum() / turned.sum() == pytest.approx(13.5, abs=1e-6)


def test_rotating_an_off_centre_blob_moves_its_centre_counter_clockwise():
    turned = tf.rotate(blob(centre=(13.5, 19.5), radius=4.0), 90)[0]  # 6 px right of the centre
    rows, cols = np.mgrid[0:28, 0:28]
    assert (turned * rows).sum() / turned.sum() == pytest.approx(7.5, abs=1e-6)  # now 6 px above
    assert (turned * cols).sum() / turned.sum() == pytest.approx(13.5, abs=1e-6)


def test_a_scale_by_2_of_a_centred_dot_covers_the_expected_pixels():
    # Odd image, dot on the centre pixel: output pixel q reads the input at 7 + (q - 7) / 2, so the neighbours
    # read half way to the next (zero) pixel: 0.5, the diagonals 0.25, and nothing further out.
    grown = tf.scale(dot(7, 7, size=15), 2)[0]
    expected = np.zeros((15, 15))
    expected[6:9, 6:9] = [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]
    np.testing.assert_allclose(grown, expected, atol=1e-12)


def test_a_scale_by_2_doubles_the_offset_from_the_centre_and_quadruples_the_mass():
    image = np.zeros((1, 28, 28))
    image[0, 15:17, 15:17] = 1.0  # a 2x2 square centred 2 px right of and below the centre (13.5, 13.5)
    grown = tf.scale(image, 2)[0]
    rows, cols = np.mgrid[0:28, 0:28]
    assert grown.sum() == pytest.approx(16.0)
    assert (grown * rows).sum() / grown.sum() == pytest.approx(17.5)
    assert (grown * cols).sum() / grown.sum() == pytest.approx(17.5)
    shrunk = tf.scale(image, 0.5)[0]
    assert (shrunk * rows).sum() / shrunk.sum() == pytest.approx(14.5)  # half the offset


def test_apply_names_each_transform():
    images = np.random.default_rng(3).random((2, 1, 28, 28))
    np.testing.assert_array_equal(tf.apply("shift", images, 3), tf.shift(images, 3, 0))
    np.testing.assert_array_equal(tf.apply("rotate", images, 30), tf.rotate(images, 30))
    np.testing.assert_array_equal(tf.apply("scale", images, 1.2), tf.scale(images, 1.2))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: tf.scale(np.zeros((1, 28, 28)), 0), "the scale must be above 0"),
    (lambda: tf.scale(np.zeros((1, 28, 28)), -1.5), "the scale must be above 0"),
    (lambda: tf.rotate(np.zeros((1, 28, 28)), float("nan")), "the angle must be finite"),
    (lambda: tf.shift(np.zeros((1, 28, 28)), float("inf")), "the shift dx must be finite"),
    (lambda: tf.shift(np.zeros((1, 28, 28)), "three"), "the shift dx must be a number"),
    (lambda: tf.rotate(np.zeros((28, 28)), 5), "must be (N, H, W) or (N, 1, H, W)"),
    (lambda: tf.rotate(np.zeros((1, 3, 28, 28)), 5), "have 3 channels"),
    (lambda: tf.rotate(np.zeros((1, 28, 28), dtype=np.uint8), 5), "must be floats"),
    (lambda: tf.apply("shear", np.zeros((1, 28, 28)), 1), "unknown transform 'shear'"),
])
def test_bad_arguments_raise_one_clear_error(call, message):
    with pytest.raises(ConvtuiError, match=None) as caught:
        call()
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)
