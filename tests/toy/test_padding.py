"""The padding and stride explorer's maths against the core's conv kernel and the lecture's numbers."""

import itertools

import numpy as np
import pytest

from convtui.core.ops import conv2d_forward
from convtui.toy.padding import (PaddingSetup, explain, padded_input, receptive_field, same_rule, sample_input,
                                 view_window, window_sums)


def test_lecture_example_5x5_on_32x32():
    valid = explain(PaddingSetup(n=32, f=5, s=1, mode="valid"))
    same = explain(PaddingSetup(n=32, f=5, s=1, mode="same"))
    assert valid.out == 28
    assert valid.formula.endswith("(32 + 2*0 - 5) // 1 + 1 = 28")
    assert same.out == 32
    assert (same.pad_before, same.pad_after) == (2, 2)


@pytest.mark.parametrize("n,f,s,p", [
    (n, f, s, p) for n, f, s, p in itertools.product((1, 2, 5, 7, 8, 13), (1, 2, 3, 4, 5), (1, 2, 3), (0, 1, 2))
    if n + 2 * p >= f])
def test_output_size_formula_matches_kernel_shape(n, f, s, p):
    report = explain(PaddingSetup(n=n, f=f, s=s, mode="explicit", p=p))
    y = conv2d_forward(np.zeros((1, 1, n, n)), np.zeros((1, 1, f, f)), None, s, p)
    assert report.out == (n + 2 * p - f) // s + 1 == y.shape[2] == y.shape[3]
    assert report.formula.endswith(f"({n} + 2*{p} - {f}) // {s} + 1 = {report.out}")


@pytest.mark.parametrize("n, f, s, value", [(1, 5, 1, -3), (1, 15, 8, -1), (3, 5, 2, 0)])
def test_a_filter_bigger_than_its_input_shows_the_formulas_own_value(n, f, s, value):
    """The learner redoes (n + 2p - f) // s + 1 by hand: the screen must show the same number, then say why
    there is no output, rather than a 0 the arithmetic does not give."""
    report = explain(PaddingSetup(n=n, f=f, s=s, mode="valid"))
    assert value == (n - f) // s + 1
    assert report.formula.endswith(f"({n} + 2*0 - {f}) // {s} + 1 = {value}, less than 1: no output")
    assert report.out == 0 and "no output" in report.error


@pytest.mark.parametrize("n,f,s", itertools.product((1, 4, 5, 7, 28, 32), (1, 2, 3, 4, 5), (1, 2, 3)))
def test_same_padding_gives_ceil_n_over_s_with_tf_split(n, f, s):
    rule = same_rule(n, f, s)
    out_expected = -(-n // s)
    total = max((out_expected - 1) * s + f - n, 0)
    assert (rule.out, rule.total, rule.before, rule.after) == (out_expected, total, total // 2, total - total // 2)
    report = explain(PaddingSetup(n=n, f=f, s=s, mode="same"))
    y = conv2d_forward(np.zeros((1, 1, n, n)), np.zeros((1, 1, f, f)), None, s, "same")
    assert report.out == y.shape[2] == out_expected
    assert (report.pad_before, report.pad_after) == (rule.before, rule.after)


def test_same_padding_is_asymmetric_with_the_extra_pixel_after():
    # 7 wide, 4x4 filter, stride 2: out 4, total (4-1)*2 + 4 - 7 = 3 -> 1 before, 2 after.
    rule = same_rule(7, 4, 2)
    assert (rule.out, rule.total, rule.before, rule.after) == (4, 3, 1, 2)
    report = explain(PaddingSetup(n=7, f=4, s=2, mode="same"))
    assert report.formula == "(n + p_before + p_after - f) // s + 1 = (7 + 1 + 2 - 4) // 2 + 1 = 4"


def test_filter_bigger_than_padded_input_reports_an_error_not_a_crash():
    report = explain(PaddingSetup(n=3, f=5, s=1, mode="valid"))
    assert report.out == 0 and "does not fit" in report.error


@pytest.mark.parametrize("n,f,s,mode,p", [(7, 3, 1, "valid", 0), (7, 3, 2, "explicit", 1), (8, 4, 2, "same", 0),
                                          (9, 5, 3, "explicit", 2), (6, 2, 2, "same", 0)])
def test_receptive_field_rows_are_what_the_kernel_reads(n, f, s, mode, p):
    """With an all-ones filter, the kernel's output (i, j) equals the sum of the highlighted padded window."""
    setup = PaddingSetup(n=n, f=f, s=s, mode=mode, p=p)
    report = explain(setup)
    x = sample_input(n, seed=1)
    padded = padded_input(x, report.pad_before, report.pad_after)
    assert padded.shape == (report.padded, report.padded)
    sums = window_sums(x, setup)
    assert sums.shape == (report.out, report.out)
    for i in range(report.out):
        for j in range(report.out):
            rows, cols = receptive_field(i, j, f, s)
            assert rows == range(i * s, i * s + f)
            assert sums[i, j] == padded[rows.start:rows.stop, cols.start:cols.stop].sum()


def test_unused_rows_when_stride_does_not_divide():
    report = explain(PaddingSetup(n=8, f=3, s=2, mode="valid"))
    assert report.out == 3 and report.unused == 1  # windows end at row 6; row 7 is never read


def test_adjust_clamps_and_explicit_p_switches_mode():
    setup = PaddingSetup(n=2, f=3, s=1, mode="valid")
    assert setup.adjusted("n", -5).n == 1
    assert setup.adjusted("p", 1).mode == "explicit"
    assert setup.next_mode().mode == "same" and setup.next_mode().next_mode().mode == "explicit"


@pytest.mark.parametrize("total,size,a,b", [(36, 12, 0, 5), (36, 12, 30, 36), (36, 12, 14, 19), (5, 12, 0, 3),
                                            (40, 10, 3, 18)])
def test_view_window_keeps_the_focus_visible(total, size, a, b):
    start, stop = view_window(total, size, a, b)
    assert stop - start == min(total, size) and 0 <= start and stop <= total
    if b - a <= size:
        assert start <= a and b <= stop
    else:
        assert start == a
