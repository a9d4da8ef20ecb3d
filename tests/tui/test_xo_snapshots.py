"""Snapshots (pytest-textual-snapshot) of a few lesson screens at a fixed size.

Regenerate after an intended visual change with `pytest tests/tui/test_xo_snapshots.py --snapshot-update`
and look at the SVGs in tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

import pytest

from convtui.tui.app import ConvTuiApp


@pytest.fixture(autouse=True)
def no_user_images(monkeypatch, tmp_path):
    # Learner images on the test machine would otherwise change what the screens list.
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))


def test_filters_after_two_steps(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="filters"), terminal_size=(100, 32), press=["space", "space"])


def test_pooling_on_a_partial_window(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="pooling"), terminal_size=(110, 30),
                        press=["right", "right", "right"])


def test_pixels_comparing_with_the_shifted_x(snap_compare):
    """`m` first compares what the intro speaks of: 14 of the 81 cells differ when an X moves one pixel."""
    assert snap_compare(ConvTuiApp(initial_screen="pixels"), terminal_size=(100, 30), press=["m"])


def test_terminal_too_small(snap_compare):
    assert snap_compare(ConvTuiApp(initial_screen="relu"), terminal_size=(60, 18))
