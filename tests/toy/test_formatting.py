"""Values as the lecture prints them: truncated toward zero at two decimals, robust to float error."""

import math

import numpy as np
import pytest

from convtui.toy.formatting import BLANK, format_grid, format_value, truncate


@pytest.mark.parametrize("value, shown", [
    (7 / 9, "0.77"), (5 / 9, "0.55"), (-1 / 9, "-0.11"), (1.0, "1.00"), (3 / 9, "0.33"), (-7 / 9, "-0.77"),
    (-5 / 9, "-0.55"), (0.0, "0.00"), (-0.0, "0.00"), (-0.004, "0.00"), (0.1 + 0.2, "0.30"), (0.3, "0.30"),
    (0.29 + 1e-12, "0.29"), (0.57, "0.57"), (1.15, "1.15"), (0.999999, "0.99"), (-1.0, "-1.00"), (6600, "6600.00"),
])
def test_truncates_toward_zero_at_two_decimals(value, shown):
    assert format_value(value) == shown


def test_float_noise_does_not_truncate_a_digit_away():
    # 0.57 * 100 == 56.99999999999999 in floats; a naive trunc would print 0.56.
    assert math.trunc(0.57 * 100) == 56
    assert format_value(0.57) == "0.57"
    assert truncate(0.57) == 0.57
    assert format_value(4 * (1 / 9) + 3 * (1 / 9)) == "0.77"


def test_zero_decimals_and_blank():
    assert format_value(6600, decimals=0) == "6600"
    assert format_value(-1.0, decimals=0) == "-1"
    assert format_value(float("nan")) == BLANK


def test_grid_text_and_markdown_align():
    grid = np.array([[7 / 9, -1 / 9], [1.0, 0.0]])
    assert format_grid(grid) == " 0.77 -0.11\n 1.00  0.00"
    markdown = format_grid(grid, markdown=True, title="map").splitlines()
    assert markdown[0] == "**map**"
    assert markdown[4] == "|  0.77 | -0.11 |"
    assert markdown[3].count(":") == 2


def test_percentages_truncate_like_every_other_number():
    from convtui.toy.formatting import format_percent

    assert format_percent(0.997) == "99%" and format_percent(0.997, 1) == "99.7%"
    assert format_percent(1.0) == "100%" and format_percent(0.0) == "0%"


def test_relation_says_equals_only_when_the_shown_operands_give_the_shown_result():
    from convtui.toy.formatting import relation

    assert relation(0.19 - 0.02 * 1.22, 0.1700001) == "≈"  # the W22_next: 0.1656 shows as 0.16
    assert relation(0.19 - 0.02 * 1.22, 0.1699) == "="


def test_overflowing_values_print_as_inf():
    from convtui.toy.formatting import format_value

    assert format_value(float("inf")) == "inf" and format_value(float("-inf"), 4) == "-inf"
