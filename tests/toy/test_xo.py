"""Golden numbers: the lecture's X through the three filters, ReLU and 2x2 max pooling.

The extracted lecture text is partly garbled (lost minus signs, merged rows), so the full 7x7 tables are
checked where the slide is legible (the `\\` map and its ReLU appear cleanly on the ReLU slides; all three
pooled 4x4 maps are legible), and the X and `/` maps row by row where their rows are legible.
"""

import numpy as np
import pytest

from convtui.toy.formatting import cell_strings
from convtui.toy.images import find_image, shipped_images
from convtui.toy.xo import (FILTERS, convolve, convolve_all, find_filter, is_partial_window, pool, pool_window, relu,
                            stack, window_positions, window_step)


def lecture(table: str) -> list[list[str]]:
    return [row.split() for row in table.strip().splitlines()]


def shown(values) -> list[list[str]]:
    return cell_strings(values)


X_IMAGE = find_image("x").pixels

BACKSLASH_MAP = lecture("""
0.77 -0.11 0.11 0.33 0.55 -0.11 0.33
-0.11 1.00 -0.11 0.33 -0.11 0.11 -0.11
0.11 -0.11 1.00 -0.33 0.11 -0.11 0.55
0.33 0.33 -0.33 0.55 -0.33 0.33 0.33
0.55 -0.11 0.11 -0.33 1.00 -0.11 0.11
-0.11 0.11 -0.11 0.33 -0.11 1.00 -0.11
0.33 -0.11 0.55 0.33 0.11 -0.11 0.77
""")

BACKSLASH_RELU = lecture("""
0.77 0 0.11 0.33 0.55 0 0.33
0 1.00 0 0.33 0 0.11 0
0.11 0 1.00 0 0.11 0 0.55
0.33 0.33 0 0.55 0 0.33 0.33
0.55 0 0.11 0 1.00 0 0.11
0 0.11 0 0.33 0 1.00 0
0.33 0 0.55 0.33 0.11 0 0.77
""")

POOLED = {
    "backslash": lecture("""
1.00 0.33 0.55 0.33
0.33 1.00 0.33 0.55
0.55 0.33 1.00 0.11
0.33 0.55 0.11 0.77
"""),
    "x": lecture("""
0.55 0.33 0.55 0.33
0.33 1.00 0.55 0.11
0.55 0.55 0.55 0.11
0.33 0.11 0.11 0.33
"""),
    "slash": lecture("""
0.33 0.55 1.00 0.77
0.55 0.55 1.00 0.33
1.00 1.00 0.11 0.55
0.77 0.33 0.55 0.33
"""),
}

# Rows of the X and / maps that survive legibly in the extracted slide "Three Filters Here, So Three Images Out".
LEGIBLE_ROWS = {
    "x": {1: "-0.55 0.55 -0.55 0.33 -0.55 0.55 -0.55", 4: "0.11 -0.55 0.55 -0.77 0.55 -0.55 0.11"},
    "slash": {0: "0.33 -0.11 0.55 0.33 0.11 -0.11 0.77", 6: "0.77 -0.11 0.11 0.33 0.55 -0.11 0.33"},
}


def test_issue_first_row_and_pooled_start():
    backslash = convolve(X_IMAGE, find_filter("backslash").weights)
    assert " ".join(shown(backslash)[0]) == "0.77 -0.11 0.11 0.33 0.55 -0.11 0.33"
    assert " ".join(shown(pool(relu(backslash)))[0]) == "1.00 0.33 0.55 0.33"


def test_backslash_map_and_relu_match_the_lecture():
    maps = convolve_all(X_IMAGE)
    assert shown(maps[0]) == BACKSLASH_MAP
    relu_text = [["0" if cell == "0.00" else cell for cell in row] for row in shown(relu(maps[0]))]
    assert relu_text == BACKSLASH_RELU


@pytest.mark.parametrize("name", ["x", "slash"])
def test_legible_rows_of_the_x_and_slash_maps(name):
    feature_map = convolve(X_IMAGE, find_filter(name).weights)
    assert feature_map[3, 3] == pytest.approx({"x": 1.0, "slash": 5 / 9}[name])
    for row, text in LEGIBLE_ROWS[name].items():
        assert " ".join(shown(feature_map)[row]) == text


def test_mirror_symmetry_of_the_three_maps():
    # The X image is its own mirror image, and `/` is the mirror of `\`, so the `/` map mirrors the `\` map.
    maps = convolve_all(X_IMAGE)
    np.testing.assert_allclose(maps[2], maps[0][:, ::-1])
    np.testing.assert_allclose(maps[1], maps[1][:, ::-1])


@pytest.mark.parametrize("name", ["backslash", "x", "slash"])
def test_relu_of_each_map_zeroes_exactly_the_negatives(name):
    feature_map = convolve(X_IMAGE, find_filter(name).weights)
    rectified = relu(feature_map)
    assert (rectified >= 0).all()
    np.testing.assert_array_equal(rectified[feature_map > 0], feature_map[feature_map > 0])
    assert (rectified[feature_map <= 0] == 0).all()


@pytest.mark.parametrize("name", ["backslash", "x", "slash"])
def test_pooled_maps_match_the_lecture(name):
    feature_map = convolve(X_IMAGE, find_filter(name).weights)
    assert shown(pool(relu(feature_map))) == POOLED[name]


def test_convolution_matches_plain_numpy_on_every_shipped_image():
    for image in shipped_images():
        maps = convolve_all(image.pixels)
        for k, toy_filter in enumerate(FILTERS):
            expected = np.array([[np.sum(image.pixels[r:r + 3, c:c + 3] * toy_filter.weights) / 9
                                  for c in range(7)] for r in range(7)])
            np.testing.assert_allclose(maps[k], expected, atol=1e-12)


def test_window_step_shows_patch_products_sum_and_output():
    toy_filter = find_filter("\\")
    step = window_step(X_IMAGE, toy_filter.weights, 0, 0)
    assert step.total == 7.0 and step.value == pytest.approx(7 / 9)
    assert (step.products == 1).sum() == 8 and (step.products == -1).sum() == 1
    maps = convolve(X_IMAGE, toy_filter.weights)
    for r, c in window_positions(9):
        assert window_step(X_IMAGE, toy_filter.weights, r, c).value == pytest.approx(maps[r, c])
    assert len(window_positions(9)) == 49
    with pytest.raises(ValueError):
        window_step(X_IMAGE, toy_filter.weights, 7, 0)


def test_pool_windows_keep_partial_edges():
    assert pool_window(0, 0, 7) == (0, 0, 1, 1)
    assert pool_window(3, 3, 7) == (6, 6, 6, 6)
    assert pool_window(1, 3, 7) == (2, 6, 3, 6)
    assert is_partial_window(3, 0, 7) and is_partial_window(0, 3, 7) and not is_partial_window(2, 2, 7)
    feature_map = convolve(X_IMAGE, FILTERS[0].weights)
    pooled = pool(feature_map)
    for i in range(4):
        for j in range(4):
            top, left, bottom, right = pool_window(i, j, 7)
            assert pooled[i, j] == feature_map[top:bottom + 1, left:right + 1].max()


def test_mean_pooling_divides_by_the_cells_a_window_covers():
    feature_map = convolve(X_IMAGE, FILTERS[0].weights)
    pooled = pool(feature_map, "mean")
    assert pooled[0, 0] == pytest.approx(np.mean(feature_map[0:2, 0:2]))
    assert pooled[3, 3] == pytest.approx(feature_map[6, 6])
    assert pooled[0, 3] == pytest.approx(np.mean(feature_map[0:2, 6]))
    with pytest.raises(ValueError):
        pool(feature_map, "median")


def test_stack_shapes_down_to_the_twelve_vote_features():
    stages = stack(X_IMAGE, depth=2)
    assert [(s.name, s.maps.shape) for s in stages] == [
        ("image", (1, 9, 9)), ("conv 1", (3, 7, 7)), ("relu 1", (3, 7, 7)), ("pool 1", (3, 4, 4)),
        ("conv 2", (3, 4, 4)), ("relu 2", (3, 4, 4)), ("pool 2", (3, 2, 2)),
    ]
    # Layer 2 filters pooled map k with filter k, zero-padded to keep 4x4: check one cell by hand.
    pooled = stages[3].maps[0]
    padded = np.pad(pooled, 1)
    assert stages[4].maps[0, 0, 0] == pytest.approx(np.sum(padded[0:3, 0:3] * FILTERS[0].weights) / 9)


def test_filter_names_and_aliases():
    assert find_filter("\\").name == "backslash" and find_filter("/").name == "slash"
    assert find_filter("X").name == "x" and find_filter("nope") is None


# ---------------------------------------------------------------- one toy network (issue 11)
def test_the_toy_net_is_one_network_everywhere():
    from convtui.toy.receptive import XO_TOY, layer_shapes
    from convtui.toy.xo import TOY_NET, stack

    image = np.ones((9, 9))
    shapes = [s.maps.shape for s in stack(image, depth=2) if not s.name.startswith("relu")]
    assert shapes == [tuple(s) for s in layer_shapes(XO_TOY)]  # the receptive-fields lesson traces this net
    assert shapes[-1] == (3, 2, 2)  # the vote's 12 numbers
    assert [layer.padding for layer in TOY_NET if layer.kind == "conv"] == ["valid", "same"]


def test_later_convs_sum_over_all_input_maps_like_the_channels_lesson():
    from convtui.toy.xo import convolve_deep, deep_filters

    rng = np.random.default_rng(0)
    maps = rng.uniform(-1, 1, size=(3, 4, 4))
    w = deep_filters()
    assert w.shape == (3, 3, 3, 3)
    padded = np.pad(maps, ((0, 0), (1, 1), (1, 1)))
    expected = np.array([[[np.sum(padded[:, i:i + 3, j:j + 3] * w[k]) / 9 for j in range(4)] for i in range(4)]
                         for k in range(3)])
    np.testing.assert_allclose(convolve_deep(maps), expected, atol=1e-12)
