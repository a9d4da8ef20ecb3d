"""Backprop through one conv layer: the lecture's 3x3 X, 2x2 W, 2x2 H, forward, backward and update, in numbers.

Four pages (keys 1-4): the forward pass h11..h22 written as the lecture writes them; dE/dW11..dW22 as sums over
the four outputs, term by term; the checks (conv2d_backward, finite differences) and dE/dX; the update
W_next = W - eta * dE/dW with the error history. The maths is in `convtui.toy.backprop`.
"""

from __future__ import annotations

import math

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from convtui.toy.backprop import (DEFAULT_SEED, OUTPUTS, WEIGHTS, BackpropState, Gradients, error, error_terms,
                                  finite_difference, forward, forward_terms, gradients, make_state, name, step,
                                  with_eta)
from convtui.toy.formatting import format_value, relation, shown
from convtui.tui.screens.lesson_base import LessonScreen, lesson_state
from convtui.tui.widgets.grid import NumberGrid

PAGES = ("forward", "backward dE/dW", "checks and dE/dX", "update")
MANY_STEPS = 10


def format_error(value: float, decimals: int = 4) -> str:
    """E as the lesson shows it: truncated like every number here, and in powers of ten once a diverging run
    makes it huge (853667275000420656.7424 would not fit a line; 8.536e17 does)."""
    if not math.isfinite(value) or abs(value) < 1e6:
        return format_value(value, decimals)
    exponent = math.floor(math.log10(abs(value)))
    return f"{format_value(value / 10 ** exponent, 3)}e{exponent}"


def growing(history: tuple[float, ...]) -> bool:
    """E went up with the last update: the step was too big (NaN, from an overflow, counts as up)."""
    return len(history) >= 2 and (history[-1] > history[-2] or np.isnan(history[-1]))


def v(value: float, decimals: int = 2) -> str:
    """A factor in a product, bracketed as on the board: (-0.13)(2)."""
    return f"({format_value(value, decimals)})"


class BackpropScreen(LessonScreen):
    """Forward, backward and update for one convolutional layer, with a target to learn."""

    TITLE = "Backprop through one conv layer"
    HELP = ("The lecture's case: input X 3x3, one filter W 2x2, no padding, stride 1, output H 2x2. The error is "
            "E = E_h11 + E_h12 + E_h21 + E_h22 with E_hij = 1/2 (hij - tij)^2 against a target T (made by a "
            "hidden filter, so E can reach 0). Pages: 1 forward, 2 dE/dW term by term, 3 checks against the "
            "core's conv backward and finite differences, plus dE/dX, 4 the update. u takes one step "
            "W <- W - eta dE/dW, t takes ten; + and - change eta. Too big a step and E grows instead of "
            "shrinking: W jumps past the lowest point to higher ground on the other side, and further each time; "
            "the screen says so when it happens. r rolls a new problem, 0 starts this one again.\n\n"
            "Numbers are truncated to the places shown, never rounded (as on the slides). A line ends in '=' when "
            "the numbers on it, worked by hand and truncated, give the result shown; it ends in '≈' when the "
            "result was computed from more digits than are shown (W has more than 2 decimals after an update).")
    BINDINGS = [
        Binding("1", "page(0)", "page", key_display="1-4", tooltip="forward"),
        Binding("2", "page(1)", "backward", show=False),
        Binding("3", "page(2)", "checks", show=False),
        Binding("4", "page(3)", "update", show=False),
        Binding("u", "update(1)", "step"),
        Binding("t", f"update({MANY_STEPS})", f"{MANY_STEPS} steps"),
        Binding("plus", "eta(1)", "eta", key_display="+/-", tooltip="eta up"),
        Binding("minus", "eta(-1)", "eta down", key_display="-", show=False),
        Binding("r", "reroll", "new"),
        Binding("0", "restart", "restart", show=False),
    ]

    seed = lesson_state(DEFAULT_SEED)  # which problem: the input, the target and the first W
    state: BackpropState = lesson_state(lambda: make_state(DEFAULT_SEED))  # W, eta and the error history
    page = lesson_state(0)

    def __init__(self) -> None:
        super().__init__()
        self.grads: Gradients | None = None  # of `state`, worked out as the lesson is drawn

    def compose_lesson(self) -> ComposeResult:
        yield Static(id="bp-status", classes="status")
        with Horizontal(classes="panel-row"):
            yield NumberGrid(decimals=0, title="X", id="bp-x", classes="panel")
            yield NumberGrid(title="W", id="bp-w", classes="panel")
            yield NumberGrid(title="H = X * W", id="bp-h", classes="panel")
            yield NumberGrid(title="target T", id="bp-t", classes="panel")
            yield NumberGrid(title="dE/dW", id="bp-dw", classes="panel")
        yield Static(id="bp-page", classes="explanation")
        with Horizontal(id="bp-history-row"):
            yield Static("E per update", id="bp-history-label")
            yield Sparkline([], id="bp-history")
            yield Static("none yet: u takes one step", id="bp-history-empty")  # in the strip's place

    # ---------------------------------------------------------------- keys
    def action_page(self, page: int) -> None:
        self.page = page

    def action_update(self, count: int) -> None:
        for _ in range(count):
            self.state = step(self.state)

    def action_eta(self, delta: int) -> None:
        self.state = with_eta(self.state, delta)

    def action_reroll(self) -> None:
        self.seed += 1
        self.state = make_state(self.seed, self.state.eta)

    def action_restart(self) -> None:
        self.state = make_state(self.seed, self.state.eta)

    # ---------------------------------------------------------------- drawing
    def refresh_lesson(self) -> None:
        state = self.state
        self.grads = grads = gradients(state)
        self.query_one("#bp-x", NumberGrid).set_values(state.x)
        self.query_one("#bp-w", NumberGrid).set_values(state.w)
        self.query_one("#bp-h", NumberGrid).set_values(grads.h)
        self.query_one("#bp-t", NumberGrid).set_values(state.target)
        self.query_one("#bp-dw", NumberGrid).set_values(grads.dE_dW)
        updates = len(state.history) - 1
        status = (f"page [b]{self.page + 1} {PAGES[self.page]}[/b]   E = [b]{format_error(state.history[-1])}[/b]"
                  f"   eta = [b]{state.eta:g}[/b]   updates {updates}   problem {self.seed}")
        if growing(state.history):
            status += (f"\n[b]E grew[/b] ({format_error(state.history[-2])} -> "
                       f"{format_error(state.history[-1])}) with the last update: eta = {state.eta:g} makes "
                       f"the step too big, W overshoots the minimum. Press - for a smaller eta, 0 to start again.")
        self.query_one("#bp-status", Static).update(status)
        pages = (self.forward_page, self.backward_page, self.checks_page, self.update_page)
        self.query_one("#bp-page", Static).update(pages[self.page]())
        # One value would fill the whole strip with a solid bar that means nothing: wait for the first update.
        history = self.query_one("#bp-history", Sparkline)
        history.data = list(state.history)
        history.display = updates > 0
        self.query_one("#bp-history-empty", Static).display = updates == 0

    def forward_page(self) -> str:
        state = self.state
        lines = []
        for out in OUTPUTS:
            terms = forward_terms(state.x, state.w, out)
            symbols = " + ".join(f"{w_name}{x_name}" for w_name, x_name, _, _ in terms)
            numbers = " + ".join(f"{v(w_value)}{v(x_value, 0)}" for _, _, w_value, x_value in terms)
            h = self.grads.h[out]
            by_hand = sum(shown(w_value) * x_value for _, _, w_value, x_value in terms)
            lines.append(f"[b]{name('h', out)}[/b] = {symbols}")
            lines.append(f"    = {numbers} {relation(by_hand, h)} [b]{format_value(h)}[/b]")
        lines.append("H itself comes from the core's conv2d_forward (no padding, stride 1).")
        return "\n".join(lines)

    def backward_page(self) -> str:
        state, grads = self.state, self.grads
        e_terms = error_terms(grads.h, state.target)
        total = error(grads.h, state.target)
        by_hand = sum(shown(e, 4) for e in e_terms.ravel())
        lines = ["E = E_h11 + E_h12 + E_h21 + E_h22  with  E_hij = 1/2 (hij - tij)^2",
                 "  = " + " + ".join(format_value(e, 4) for e in e_terms.ravel())
                 + f" {relation(by_hand, total, 4)} [b]{format_value(total, 4)}[/b]",
                 "dE/dWuv = Σ dE_hij/dhij · dhij/dWuv = Σ (hij - tij) · (the X under Wuv)"]
        for w_index in WEIGHTS:
            label = name("W", w_index)
            symbols = " + ".join(f"(h{i + 1}{j + 1}-t{i + 1}{j + 1}){name('X', (i + w_index[0], j + w_index[1]))}"
                                 for i, j in OUTPUTS)
            numbers = " + ".join(f"{v(de_dh)}{v(dh_dw, 0)}" for de_dh, dh_dw, _ in grads.terms[label])
            by_hand = sum(shown(de_dh) * dh_dw for de_dh, dh_dw, _ in grads.terms[label])
            result = grads.dE_dW[w_index]
            lines.append(f"[b]dE/d{label}[/b] = {symbols}")
            lines.append(f"    = {numbers} {relation(by_hand, result)} [b]{format_value(result)}[/b]")
        return "\n".join(lines)

    def checks_page(self) -> str:
        grads = self.grads
        fd_w = finite_difference(self.state, "w")
        fd_x = finite_difference(self.state, "x")
        term_sums = {label: sum(t[2] for t in terms) for label, terms in grads.terms.items()}
        lines = [f"[b]{'':<9}{'term by term':>14}{'conv2d_backward':>17}{'finite diff':>14}[/b]"]
        for w_index in WEIGHTS:
            label = name("W", w_index)
            lines.append(f"dE/d{label:<5}{format_value(term_sums[label], 4):>14}"
                         f"{format_value(grads.dE_dW[w_index], 4):>17}{format_value(fd_w[w_index], 4):>14}")
        gap = max(np.abs(fd_w - grads.dE_dW).max(), np.abs(fd_x - grads.dE_dX).max())
        lines.append(f"largest |conv2d_backward - finite difference| over W and X: {gap:.1e}")
        lines.append("[b]dE/dX[/b]: each pixel collects (hij - tij) Wuv from every h it feeds")
        lines.append(f"  {'conv2d_backward':<30}   finite diff")
        for r in range(3):
            lines.append("  " + "".join(f"{format_value(grads.dE_dX[r, c], 4):>10}" for c in range(3))
                         + "   " + "".join(f"{format_value(fd_x[r, c], 4):>10}" for c in range(3)))
        return "\n".join(lines)

    def update_page(self) -> str:
        state, grads = self.state, self.grads
        w_next = state.w - state.eta * grads.dE_dW
        lines = []
        for w_index in WEIGHTS:
            label = name("W", w_index)
            by_hand = shown(state.w[w_index]) - state.eta * shown(grads.dE_dW[w_index])
            lines.append(f"{label}_next = {label} - eta dE/d{label} = {format_value(state.w[w_index])} - "
                         f"{state.eta:g} x {v(grads.dE_dW[w_index])} {relation(by_hand, w_next[w_index])} "
                         f"[b]{format_value(w_next[w_index])}[/b]")
        after = error(forward(state.x, w_next), state.target)
        lines.append(f"E now {format_value(state.history[-1], 4)}, after this update "
                     f"[b]{format_value(after, 4)}[/b]  (u: take it, t: take {MANY_STEPS})")
        if after > state.history[-1] or np.isnan(after):
            lines.append(f"[b]This update would make E grow[/b]: eta = {state.eta:g} is too big a step, so W "
                         "overshoots the lowest point. - makes eta smaller.")
        recent = state.history[-6:]
        first = len(state.history) - len(recent)
        lines.append("history: " + "  ".join(f"E{first + k}={format_error(e, 3)}" for k, e in enumerate(recent)))
        return "\n".join(lines)
