"""What is shown adds up: every formula on the vote and backprop screens, parsed from the screen text and worked
out again from the operands as shown, gives the result as shown (truncated to its places, as the slides do).
A line that ends in "≈" says its result came from longer numbers: it must be within the shown digits' error."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import pytest
from rich.console import Console
from textual.widgets import Static

from convtui.toy.formatting import format_value
from convtui.tui.app import ConvTuiApp

SIZE = (120, 40)
NUMBER = r"-?\d+(?:\.\d+)?"


@pytest.fixture(autouse=True)
def private_image_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path / "xo"))


def plain(app, selector: str) -> str:
    """A Static's content as the learner reads it (tables included), without colour or markup."""
    console = Console(width=200, record=True, color_system=None)
    widget = app.screen.query_one(selector, Static)
    content = widget.content  # the Table or markup string given to update(), not Textual's visual wrapper
    console.print(content if not isinstance(content, str) else widget.render())
    return console.export_text()


def places(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def evaluate(expression: str) -> Fraction:
    """Exact value of a shown expression such as `(-0.13)(2) + (0.47)(-2)` or `0.22 - 0.02 x (1.38)`."""
    expression = expression.replace(")(", ")*(").replace(" x ", " * ")
    assert re.fullmatch(r"[\d.\s()+*\-]+", expression), expression
    python = re.sub(NUMBER, lambda m: f"Fraction('{m.group(0)}')", expression)
    return eval(python, {"Fraction": Fraction})  # only numbers and + - * ( ), checked above


def check_formula(line: str) -> str:
    """`... = <operands> (=|≈) <result>`: recompute the operands exactly; return the relation used."""
    match = re.search(rf"=\s*([^=≈]*?)\s*([=≈])\s*({NUMBER})\s*$", line)
    assert match, line
    operands, relation, result = match.groups()
    exact = evaluate(operands)
    decimals = places(result)
    if relation == "=":
        assert format_value(float(exact), decimals) == result, f"{line!r}: by hand {float(exact)}"
    else:
        assert format_value(float(exact), decimals) != result, f"{line!r} is exact: it should say '='"
        # Operands truncated to 2 places, multiplied by at most |X| = 2 four times: within 0.1 of the truth.
        assert abs(float(exact) - float(result)) < 0.1, line
    return relation


async def test_every_vote_row_and_score_adds_up_on_every_image():
    app = ConvTuiApp(initial_screen="vote")
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        for _ in range(len(app.screen.images)):
            table = plain(app, "#vote-table")
            rows = [line.split() for line in table.splitlines()]
            votes = [r for r in rows if len(r) == 7 and r[0] in "\\X/"]
            assert len(votes) == 12
            totals = [Fraction(0), Fraction(0)]
            for _, _, value, w_x, vote_x, w_o, vote_o in votes:
                for k, (weight, vote) in enumerate(((w_x, vote_x), (w_o, vote_o))):
                    product = Fraction(value) * Fraction(weight)
                    assert format_value(float(product), 2) == vote, (value, weight, vote)
                    totals[k] += Fraction(vote)
            bias = next(r for r in rows if r and r[0] == "bias")
            score = next(r for r in rows if r and r[0] == "score")
            for k in range(2):
                assert totals[k] + Fraction(bias[1 + k]) == Fraction(score[1 + k])
            result = plain(app, "#vote-result")
            assert f"X scores {score[1]}, O scores {score[2]}" in result
            s_x, s_o = float(score[1]), float(score[2])
            p_best = 1 / (1 + math.exp(-abs(s_x - s_o)))
            assert f"({format_value(100 * p_best, 0)}%)" in result
            await pilot.press("n")


async def backprop_pages(pilot) -> list[str]:
    lines = []
    for page in "1234":
        await pilot.press(page)
        lines += plain(pilot.app, "#bp-page").splitlines()
    return lines


async def test_every_backprop_formula_adds_up_before_and_after_updates_and_divergence():
    app = ConvTuiApp(initial_screen="backprop")
    relations = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for keys in ((), ("u",), ("t",), ("r", "t"), ("plus",) * 4 + ("u", "u")):
            await pilot.press(*keys)
            formulas = [line for line in await backprop_pages(pilot)
                        if re.search(rf"[=≈]\s*{NUMBER}\s*$", line) and ("(" in line or "+" in line)]
            assert len(formulas) == 4 + 1 + 4 + 4  # h11..h22, E, dE/dW11..22, W11_next..W22_next
            relations += [check_formula(line) for line in formulas]
    assert "=" in relations and "≈" in relations  # both kinds occur: the test saw real after-update lines


async def test_backprop_says_when_the_step_is_too_big():
    app = ConvTuiApp(initial_screen="backprop")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "E grew" not in plain(app, "#bp-status")
        assert not app.screen.query_one("#bp-history").display  # no solid bar before any update
        assert "none yet" in plain(app, "#bp-history-empty")
        await pilot.press("u")
        assert app.screen.query_one("#bp-history").display
        assert "E grew" not in plain(app, "#bp-status")  # eta 0.02 on problem 3: E falls
        await pilot.press(*("plus",) * 4, "4")  # eta 0.2
        assert "This update would make E grow" in plain(app, "#bp-page")
        await pilot.press("u")
        status = plain(app, "#bp-status")
        assert "E grew" in status and "too big" in status
        await pilot.press("minus", "minus", "minus", "minus", "0", "u")
        assert "E grew" not in plain(app, "#bp-status")
