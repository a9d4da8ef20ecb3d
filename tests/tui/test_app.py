"""The app shell: index, lazy lesson screens, a lesson that fails to open, help, back, quit, --screen, terminal too
small."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from convtui.tui.app import ConvTuiApp, run_app
from convtui.tui.lessons import LESSONS, find_lesson
from convtui.tui.screens.help import HelpScreen
from convtui.tui.screens.index import IndexScreen
from convtui.tui.screens.lesson_base import LessonScreen
from convtui.tui.screens.too_small import TooSmallScreen
from textual.widgets import OptionList, Static


async def test_index_lists_every_lesson_in_order():
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, IndexScreen)
        options = app.screen.query_one("#lessons", OptionList)
        ids = [option.id for option in options.options if option.id]
        assert ids == [lesson.name for lesson in LESSONS]


async def test_enter_opens_the_highlighted_lesson_and_escape_returns():
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        options = app.screen.query_one("#lessons", OptionList)
        first = options.get_option_at_index(options.highlighted).id
        assert first == LESSONS[0].name
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, IndexScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, IndexScreen)
        await pilot.press("backspace")  # back on the index does nothing, it must not empty the stack
        await pilot.pause()
        assert isinstance(app.screen, IndexScreen)


async def test_a_burst_of_keys_opens_the_lesson_the_cursor_reached():
    """Keys that arrive together (typed fast, or bunched over SSH) are handled in order: Enter must not overtake
    the j presses ahead of it."""
    from textual import events

    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for key in ["j", "j", "j", "j", "enter"]:
            app.post_message(events.Key(key, "\r" if key == "enter" else key))
        await pilot.pause(0.5)
        assert app.screen.__class__.__name__ == "FiltersScreen"  # the 5th lesson in the index


async def test_every_lesson_is_a_lesson_screen():
    """Every entry of the index imports and builds (there is no "coming soon" any more); the X/O, mechanics and
    curve lessons all share the one lesson-screen base."""
    from textual.app import App

    async with App().run_test():  # screens are built inside a running app
        screens = {lesson.name: lesson.load_screen() for lesson in LESSONS}
    assert set(screens) == {lesson.name for lesson in LESSONS}
    not_lessons = sorted(name for name, screen in screens.items() if not isinstance(screen, LessonScreen))
    assert not_lessons == ["draw", "runs", "train"]  # the MNIST tools, not lessons with a lesson body


async def test_a_lesson_that_fails_to_import_says_why_and_the_app_stays_up(monkeypatch):
    from convtui.tui import app as app_module
    from convtui.tui.lessons import Lesson

    ghost = Lesson("ghost", "Ghost lesson", "not written", "convtui.tui.screens.no_such_module:Nope", "Part")
    monkeypatch.setattr(app_module, "find_lesson", lambda name: ghost if name == "ghost" else find_lesson(name))
    app = ConvTuiApp()
    notes = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        monkeypatch.setattr(app, "notify", lambda message, **options: notes.append((message, options)))
        app.open_lesson("ghost")
        await pilot.pause()
        assert isinstance(app.screen, IndexScreen)
        [(message, options)] = notes
        assert message.startswith("Ghost lesson could not open: ModuleNotFoundError")
        assert "convtui.tui.screens.no_such_module" in message and options["severity"] == "error"


async def test_help_lists_the_keys_of_the_screen_underneath():
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = {row.description: row.display for row in app.screen.rows}
        assert rows["Open lesson"] == "enter" and rows["Quit"] == "q" and rows["Help"] == "?"
        assert rows["Down"] == "↓/j" and rows["Back"] == "esc/backspace"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, IndexScreen)


async def test_q_quits():
    app = ConvTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert not app.is_running


@pytest.mark.parametrize("name", ["pixels", "train"])
async def test_initial_screen_opens_that_lesson_over_the_index(name):
    app = ConvTuiApp(initial_screen=name)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not isinstance(app.screen, IndexScreen)
        assert isinstance(app.screen_stack[-2], IndexScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, IndexScreen)


async def test_terminal_too_small_shows_a_message_and_recovers():
    app = ConvTuiApp()
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        message = str(app.screen.query_one("#too-small-message", Static).render())
        assert "Terminal too small: 70x20" in message and "80x24" in message
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, IndexScreen)
        await pilot.resize_terminal(79, 30)
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)


def test_unknown_screen_is_a_usage_error(capsys):
    assert run_app(screen="nope") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown screen 'nope'" in err and "pixels" in err
    with pytest.raises(ValueError):
        ConvTuiApp(initial_screen="nope")


def test_cli_unknown_screen_exits_2_without_traceback():
    result = subprocess.run([sys.executable, "-m", "convtui", "--screen", "nope"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "unknown screen 'nope'" in result.stderr


def test_every_kernel_warm_up_runs():
    """Each warm-up calls the lessons' maths as the lessons do: a changed toy API fails here, not silently."""
    from convtui.tui.lessons import KERNEL_WARM_UPS

    for warm_up in set(KERNEL_WARM_UPS.values()):
        warm_up()
    assert set(KERNEL_WARM_UPS) <= {lesson.name for lesson in LESSONS}


async def test_a_lesson_opened_before_its_kernels_are_ready_says_so_then_opens(monkeypatch):
    """With the warm-up on (as `convtui` runs), opening a lesson whose kernels are still compiling keeps the index
    up with a line saying so, and opens the lesson when they are ready; a lesson without kernels opens at once."""
    import threading

    from convtui.tui import app as app_module

    release = threading.Event()
    calls = []

    def slow_warm_up():  # stands in for a cold Numba cache
        calls.append("backprop")
        release.wait(10)

    monkeypatch.setattr(app_module, "KERNEL_WARM_UPS", {"backprop": slow_warm_up})
    app = ConvTuiApp(initial_screen="backprop", warm_kernels=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        assert isinstance(app.screen, IndexScreen)
        status = str(app.screen.query_one("#index-status", Static).render())
        assert status == "Opening Backprop through one conv layer: compiling its kernels (first run only)…"
        release.set()
        for _ in range(50):
            await pilot.pause(0.05)
            if not isinstance(app.screen, IndexScreen):
                break
        assert type(app.screen).__name__ == "BackpropScreen" and calls == ["backprop"]
        assert str(app.screen_stack[-2].query_one("#index-status", Static).render()) == "Lessons ready."
        await pilot.press("escape")
        await pilot.pause()
        app.open_lesson("receptive-fields")  # no kernels to wait for
        await pilot.pause()
        assert type(app.screen).__name__ == "ReceptiveFieldsScreen"


def test_convtui_runs_the_app_with_the_warm_up(monkeypatch):
    from convtui.tui import app as app_module

    seen = {}
    monkeypatch.setattr(app_module.ConvTuiApp, "run", lambda self: seen.setdefault("warm", self.warm_kernels))
    assert run_app() == 0 and seen == {"warm": True}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
async def test_a_scheduler_signal_leaves_the_app_as_q_does(signum):
    """The real entry point (warm_kernels=True) turns SIGTERM and SIGHUP into a clean exit with 128 + the
    signal's number: screens unmount (a dashboard run stops and saves) and the terminal is restored."""
    app = ConvTuiApp(warm_kernels=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        os.kill(os.getpid(), signum)
        for _ in range(100):
            if app.return_code is not None:
                break
            await pilot.pause(0.05)
    assert app.return_code == 128 + signum
