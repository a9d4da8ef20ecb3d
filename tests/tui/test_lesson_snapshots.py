"""Snapshots (pytest-textual-snapshot) of the mechanics lessons at 120x40, each after a few keys, so the lesson
base, the tcss layout and the widgets are checked as the learner sees them.

Regenerate after an intended visual change with `pytest tests/tui/test_lesson_snapshots.py --snapshot-update`
and look at the SVGs in tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

import pytest

from convtui.tui.app import ConvTuiApp

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def no_user_images(monkeypatch, tmp_path):
    # Learner images on the test machine would otherwise change what the X/O lessons list.
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))


def test_padding_same_with_stride_two(snap_compare):
    # n 7, f 4, s 2, SAME: 1 row of padding before and 2 after; the neuron (1, 2) and its field in brackets.
    assert snap_compare(ConvTuiApp(initial_screen="padding"), terminal_size=SIZE,
                        press=["f", "f", "F", "s", "m", "down", "right", "right"])


def test_receptive_fields_of_a_corner_cell(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="receptive-fields"), terminal_size=SIZE,
                        press=["left", "left", "up", "left_square_bracket"])


def test_channels_second_cell_of_the_second_filter(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="channels"), terminal_size=SIZE, press=["n", "f"])


def test_backprop_gradients_after_one_update(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="backprop"), terminal_size=SIZE, press=["u", "2"])


def test_pixels_editing_a_pixel(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="pixels"), terminal_size=SIZE, press=["e", "up", "space"])


def test_pooling_mean_on_a_corner(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="pooling"), terminal_size=SIZE,
                        press=["t", "down", "down", "down", "right"])


def test_filter_example_non_matching_field(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="filter-example"), terminal_size=SIZE, press=["t"])


def test_stacking_second_pool(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="stacking"), terminal_size=SIZE,
                        press=["right", "right", "right", "right", "right"])
