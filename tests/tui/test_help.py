"""`?` on every screen: every key a learner can press is in the help, with what it does, as the terminal shows it
(no "[ ]" eaten as markup, no key of a group lost), under the screen's own name; `convtui --help` lists the screen
names; the README's Keys table names the same keys as the help of each screen."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.geometry import Region
from textual.widgets import Static

from convtui.tui.app import ConvTuiApp
from convtui.tui.lessons import LESSONS
from convtui.tui.screens.help import HelpScreen, key_name

SCREENS = ["index"] + [lesson.name for lesson in LESSONS]
TITLES = {"index": "Lessons", **{lesson.name: lesson.title for lesson in LESSONS}}
README = Path(__file__).parents[2] / "README.md"


def shown_lines(widget: Static) -> list[str]:
    """The widget's lines exactly as the terminal draws them (wrapped, markup applied), right-stripped."""
    strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return [strip.text.rstrip() for strip in strips]


def shown_table(widget: Static) -> list[tuple[str, str]]:
    """(key column, does column) per table row, a wrapped description joined back into one line."""
    lines = [line for line in shown_lines(widget) if line.strip()]
    header = lines[0]
    start, split = header.index("key"), header.index("does")
    rows: list[tuple[str, str]] = []
    for line in lines[1:]:
        key, does = line[start:split].strip(), line[split:].strip()
        if key:
            rows.append((key, does))
        else:  # the description wrapped
            rows[-1] = (rows[-1][0], f"{rows[-1][1]} {does}")
    return rows


def expected_bindings(screen) -> list[Binding]:
    """What a learner can press, found independently of the help: convtui's BINDINGS of the focused widget, the
    screen and the app (and their convtui base classes), the first level binding a key winning."""
    levels = [node for node in (screen.focused, screen, screen.app) if node is not None]
    found, seen = [], set()
    for node in levels:
        for cls in type(node).__mro__:
            if cls.__module__.startswith("convtui."):
                for binding in cls.__dict__.get("BINDINGS", []):
                    if binding.key not in seen and (binding.description or binding.tooltip):
                        seen.add(binding.key)
                        found.append(binding)
    return found


def documented(binding: Binding, rows: list[tuple[str, str]]) -> bool:
    """The binding's key is on a row that says what it does: its own row, a row of keys doing one thing
    ("esc/backspace  Back"), or named inside a group's row ("1-4  page: 1 forward, 2 backward, ...")."""
    name, phrase = key_name(binding), binding.tooltip or binding.description
    # The key itself must show: a group's mark such as "1-4" or "←↑↓→" does not say which key does what.
    own_names = {name, binding.key.replace("ctrl+", "^")}
    for key_column, does in rows:
        if does == phrase and own_names & set(key_column.split("/")):
            return True
        if ": " in does:
            for part in does.split(": ", 1)[1].split(", "):
                told = part[len(name) + 1:] if part.startswith(f"{name} ") else ""
                if told and phrase.lower().endswith(told.lower()):
                    return True
    return False


@pytest.mark.parametrize("name", SCREENS)
async def test_every_key_of_every_screen_is_in_its_help(name):
    app = ConvTuiApp(initial_screen=None if name == "index" else name)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        under = app.screen
        bindings = expected_bindings(under)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_screen = app.screen
        assert shown_lines(help_screen.query_one("#help-title", Static)) == [f"Help: {TITLES[name]}"]

        rows = shown_table(help_screen.query_one("#help-keys", Static))
        missing = [f"{key_name(b)} ({b.tooltip or b.description})" for b in bindings if not documented(b, rows)]
        assert not missing, f"not in the help of {name}: {missing}\nshown: {rows}"
        for display, description in getattr(under, "HELP_KEYS", ()):
            assert (display, description) in rows
        # No key on two rows: a group's first key is named in the group's row, not dropped nor repeated.
        named = [key for row in help_screen.rows for key in row.keys]
        assert len(named) == len(set(named)), named

        # The HELP paragraph reads as written: brackets and all, nothing taken for markup.
        if getattr(under, "HELP", ""):
            shown = " ".join(" ".join(shown_lines(help_screen.query_one("#help-text", Static))).split())
            assert shown == " ".join(under.HELP.split())
            assert "\\[" not in under.HELP  # a markup escape would show as a backslash


@pytest.mark.parametrize("name, row", [
    ("padding", ("←↑↓→", "neuron: ↑ up, ↓ down, ← left, → right")),
    ("padding", ("n/N", "n±: n input size n + 1, N input size n - 1")),
    ("padding", ("s/S", "s±: s stride s + 1, S stride s - 1")),
    ("backprop", ("1-4", "page: 1 forward, 2 backward, 3 checks, 4 update")),
    ("backprop", ("+/-", "eta: + up, - down")),
    ("train", ("[ ]", "Digit: [ Previous digit, ] Next digit")),
    ("train", ("1-7", "Zoom: " + ", ".join(f"{n} Zoom panel {n}" for n in range(1, 8)))),
    ("index", ("esc/backspace", "Back")),
])
async def test_the_issue_s_groups_show_every_key_once(name, row):
    app = ConvTuiApp(initial_screen=None if name == "index" else name)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert row in shown_table(app.screen.query_one("#help-keys", Static))


async def test_dashboard_help_keeps_its_brackets():
    app = ConvTuiApp(initial_screen="train")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        text = " ".join(" ".join(shown_lines(app.screen.query_one("#help-text", Static))).split())
        assert "pool2 ([ and ] choose the digit)." in text


def test_cli_help_lists_every_screen_without_importing_textual():
    result = subprocess.run([sys.executable, "-m", "convtui", "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0
    listed = " ".join(result.stdout.split())
    assert "--screen NAME open the app straight on one screen: " + ", ".join(SCREENS[1:]) in listed
    probe = ("import sys; from convtui.cli import build_parser; build_parser().format_help(); "
             "print('textual' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False,
                          timeout=60).stdout.strip() == "False"


def readme_keys() -> dict[str, set[str]]:
    """README's Keys table: the backticked keys of each row, `1`-`4` read as 1, 2, 3, 4."""
    section = README.read_text().split("### Keys", 1)[1].split("\n\n", 2)[1]
    table = {}
    for line in section.splitlines()[2:]:
        where, keys = line.strip("|").split("|", 1)
        tokens = set(re.findall(r"`([^`]+)`", keys))
        for low, high in re.findall(r"`(\d)`-`(\d)`", keys):
            tokens |= {str(n) for n in range(int(low), int(high) + 1)}
        table[where.strip()] = tokens
    return table


@pytest.mark.parametrize("name", SCREENS)
async def test_readme_keys_table_names_the_keys_of_each_help(name):
    table = readme_keys()
    app = ConvTuiApp(initial_screen=None if name == "index" else name)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        in_help = {key for row in app.screen.rows for key in row.keys}
        lesson_row = TITLES[name]
        common = table["Everywhere"] | (table["Every lesson"] if {"PgUp", "PgDn"} <= in_help else set())
        assert in_help == table[lesson_row] | common, (lesson_row, in_help ^ (table[lesson_row] | common))


async def test_notifications_wait_while_help_is_read_and_show_again_after():
    """A toast drawn over help would cover its last lines: help hides the notification rack, nothing is lost, and
    the lesson under it shows the notifications still current when help closes."""
    from textual.widgets._toast import Toast

    app = ConvTuiApp(initial_screen="pooling")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:  # off in tests by default
        await pilot.pause(0.2)
        app.notify("a kernel cache warning", timeout=60)
        await pilot.pause(0.2)
        assert len(app.screen.query(Toast)) == 1 and app.screen.query_one(Toast).region.area
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        def drawn():  # the toasts on the help screen that take up any of the terminal
            return [toast for toast in app.screen.query(Toast) if toast.display and toast.region.area]

        assert len(app.screen.query(Toast)) == 1 and drawn() == []  # nothing drawn over the help box
        app.notify("said while help is open", timeout=60)
        await pilot.pause(0.2)
        assert len(app.screen.query(Toast)) == 2 and drawn() == []
        await pilot.press("escape")
        await pilot.pause(0.2)
        shown = [str(toast.render()) for toast in app.screen.query(Toast)]
        assert len(shown) == 2 and "a kernel cache warning" in shown[0] and "said while help is open" in shown[1]
