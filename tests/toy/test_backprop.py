"""Backprop through one conv layer: gradients vs central differences and the core's conv backward."""

import subprocess
import sys

import numpy as np
import pytest

from convtui.core.ops import conv2d_backward
from convtui.toy.backprop import (ETAS, error, finite_difference, forward, forward_terms, gradients, make_state, step,
                                  with_eta)


def test_forward_matches_the_lecture_formulas():
    state = make_state(0)
    x, w = state.x, state.w
    h = forward(x, w)
    assert h[0, 0] == pytest.approx(w[0, 0] * x[0, 0] + w[0, 1] * x[0, 1] + w[1, 0] * x[1, 0] + w[1, 1] * x[1, 1])
    assert h[0, 1] == pytest.approx(w[0, 0] * x[0, 1] + w[0, 1] * x[0, 2] + w[1, 0] * x[1, 1] + w[1, 1] * x[1, 2])
    assert h[1, 0] == pytest.approx(w[0, 0] * x[1, 0] + w[0, 1] * x[1, 1] + w[1, 0] * x[2, 0] + w[1, 1] * x[2, 1])
    assert h[1, 1] == pytest.approx(w[0, 0] * x[1, 1] + w[0, 1] * x[1, 2] + w[1, 0] * x[2, 1] + w[1, 1] * x[2, 2])
    terms = forward_terms(x, w, (0, 1))
    assert [(t[0], t[1]) for t in terms] == [("W11", "X12"), ("W12", "X13"), ("W21", "X22"), ("W22", "X23")]
    assert sum(wv * xv for _, _, wv, xv in terms) == pytest.approx(h[0, 1])


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 11])
def test_gradients_match_finite_differences_and_conv_backward(seed):
    state = make_state(seed)
    grads = gradients(state)
    np.testing.assert_allclose(grads.dE_dW, finite_difference(state, "w"), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads.dE_dX, finite_difference(state, "x"), rtol=1e-4, atol=1e-5)
    # Independently: the core's backward fed with dE/dh = h - t.
    h = forward(state.x, state.w)
    dx, dw, _ = conv2d_backward(state.x[None, None], state.w[None, None], (h - state.target)[None, None], 1, "valid")
    np.testing.assert_allclose(grads.dE_dW, dw[0, 0])
    np.testing.assert_allclose(grads.dE_dX, dx[0, 0])


def test_term_by_term_sums_equal_the_gradient():
    state = make_state(0)
    grads = gradients(state)
    h = forward(state.x, state.w)
    for (u, v), label in zip(((0, 0), (0, 1), (1, 0), (1, 1)), ("W11", "W12", "W21", "W22")):
        terms = grads.terms[label]
        assert len(terms) == 4
        # dE/dW_uv = sum_ij (h_ij - t_ij) * X_(i+u)(j+v)
        for (i, j), (de_dh, dh_dw, product) in zip(((0, 0), (0, 1), (1, 0), (1, 1)), terms):
            assert de_dh == pytest.approx(h[i, j] - state.target[i, j])
            assert dh_dw == state.x[i + u, j + v]
            assert product == pytest.approx(de_dh * dh_dw)
        assert sum(t[2] for t in terms) == pytest.approx(grads.dE_dW[u, v])


def test_error_is_half_squared_error_summed_over_the_four_outputs():
    state = make_state(0)
    h = forward(state.x, state.w)
    assert error(h, state.target) == pytest.approx(0.5 * np.sum((h - state.target) ** 2))
    assert state.history == (pytest.approx(error(h, state.target)),)


def test_update_is_w_minus_eta_grad_and_reduces_the_error():
    state = make_state()
    grads = gradients(state)
    after = step(state)
    np.testing.assert_allclose(after.w, state.w - state.eta * grads.dE_dW)
    assert after.history[-1] < after.history[0]
    for _ in range(20):
        after = step(after)
    assert len(after.history) == 22
    assert all(b < a for a, b in zip(after.history, after.history[1:]))
    assert after.history[-1] < 0.01 * after.history[0]


def test_too_large_eta_diverges():
    state = with_eta(make_state(), +10)
    assert state.eta == ETAS[-1]
    for _ in range(5):
        state = step(state)
    assert state.history[-1] > state.history[0]


def test_eta_notches():
    state = make_state(eta=0.02)
    assert with_eta(state, 1).eta == 0.05 and with_eta(state, -1).eta == 0.01
    assert with_eta(with_eta(state, -20), -1).eta == ETAS[0]


def test_lesson_maths_never_imports_textual():
    code = ("import sys, convtui.toy.padding, convtui.toy.receptive, convtui.toy.channels, convtui.toy.backprop;"
            "bad = [m for m in sys.modules if m.startswith(('textual', 'plotext', 'convtui.tui'))];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
