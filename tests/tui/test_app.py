"""The app shell: index, lazy lesson screens, a lesson that fails to open, help, back, quit, --screen, terminal too
small."""

from __future__ import annotations

import os
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


def _blocking_warm_up(name, calls, release, steps=2):
    """A KernelWarmUp of `steps` steps standing in for a cold Numba cache: its last step waits for `release`."""
    from convtui.tui.lessons import KernelWarmUp

    def step(index):
        def run():
            calls.append(f"{name}{index}")
            if index == steps:
                release.wait(10)
        return run

    return KernelWarmUp(name, tuple(step(index) for index in range(1, steps + 1)))


async def _wait_for(pilot, condition, seconds=5.0):
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await pilot.pause(0.02)
    return condition()


def _stand_in_text(app) -> str:
    return str(app.screen.query_one("#kernels-compiling", Static).render())


async def test_a_lesson_opened_before_its_kernels_are_ready_shows_progress_then_opens(monkeypatch):
    """With the warm-up on (as `convtui` runs), a lesson whose kernels are still compiling shows its stand-in at
    once: its title and "step n of m"; the app's keys work meanwhile; the lesson takes the stand-in's place when
    the kernels are ready (esc then goes back to the index); a lesson without kernels opens at once."""
    import threading

    from convtui.tui import app as app_module
    from convtui.tui.screens.lesson_base import KernelsCompilingScreen

    release, calls = threading.Event(), []
    monkeypatch.setattr(app_module, "KERNEL_WARM_UPS", {"backprop": _blocking_warm_up("b", calls, release, 3)})
    app = ConvTuiApp(initial_screen="backprop", warm_kernels=True)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await _wait_for(pilot, lambda: calls == ["b1", "b2", "b3"] and "step 3 of 3" in _stand_in_text(app))
        assert isinstance(app.screen, KernelsCompilingScreen) and app.screen.title == "Backprop through one conv layer"
        assert _stand_in_text(app).startswith("Compiling this lesson's kernels: step 3 of 3…\n")
        await pilot.press("question_mark")  # keys stay live while the kernels compile
        assert isinstance(app.screen, HelpScreen)
        assert str(app.screen.query_one("#help-title", Static).render()) == "Help: Backprop through one conv layer"
        await pilot.press("escape")
        assert isinstance(app.screen, KernelsCompilingScreen)
        release.set()
        assert await _wait_for(pilot, lambda: type(app.screen).__name__ == "BackpropScreen")
        assert [type(screen) for screen in app.screen_stack[1:]] == [IndexScreen, type(app.screen)]
        assert str(app.screen_stack[-2].query_one("#index-status", Static).render()) == "Lessons ready."
        await pilot.press("escape")
        assert isinstance(app.screen, IndexScreen)
        app.open_lesson("receptive-fields")  # no kernels to wait for
        await pilot.pause()
        assert type(app.screen).__name__ == "ReceptiveFieldsScreen"


async def test_the_waiting_lessons_kernels_go_next_at_the_next_step(monkeypatch):
    """Opening a lesson moves its warm-up ahead of the one running, at that one's next step, not its end."""
    import threading

    from convtui.tui import app as app_module

    first_running, release_first, release_second, calls = threading.Event(), threading.Event(), threading.Event(), []
    ready = threading.Event()
    ready.set()
    first = _blocking_warm_up("a", calls, release_second, 2)
    held = first.steps[0]

    def first_step():  # holds the first warm-up's first step until the lesson below has been asked for
        first_running.set()
        release_first.wait(10)
        held()

    first = type(first)("a", (first_step, first.steps[1]))
    monkeypatch.setattr(app_module, "KERNEL_WARM_UPS",
                        {"pixels": first, "backprop": _blocking_warm_up("b", calls, ready, 1)})
    app = ConvTuiApp(warm_kernels=True)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await _wait_for(pilot, first_running.is_set)
        app.open_lesson("backprop")
        release_first.set()
        assert await _wait_for(pilot, lambda: type(app.screen).__name__ == "BackpropScreen")
        # The lesson opens as soon as b1 is done; the first warm-up's second step starts a moment later.
        assert await _wait_for(pilot, lambda: len(calls) >= 3)
        assert calls[:3] == ["a1", "b1", "a2"]
        release_second.set()
        await pilot.pause(0.2)  # let the lesson finish mounting before the app exits


async def test_a_stand_in_left_or_covered_behaves(monkeypatch):
    """esc on the stand-in goes back to the index for good (the lesson does not pop up later); kernels that get
    ready while help covers the stand-in open the lesson when help closes."""
    import threading

    from convtui.tui import app as app_module
    from convtui.tui.screens.lesson_base import KernelsCompilingScreen

    release, calls = threading.Event(), []
    monkeypatch.setattr(app_module, "KERNEL_WARM_UPS", {"vote": _blocking_warm_up("v", calls, release, 1),
                                                        "backprop": _blocking_warm_up("b", calls, release, 1)})
    app = ConvTuiApp(initial_screen="vote", warm_kernels=True)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await _wait_for(pilot, lambda: calls == ["v1"])
        assert _stand_in_text(app).startswith("Compiling this lesson's kernels: step 1 of 1…")
        await pilot.press("escape")
        assert isinstance(app.screen, IndexScreen)
        app.open_lesson("backprop")
        await pilot.pause()
        await pilot.press("question_mark")
        release.set()
        assert await _wait_for(pilot, lambda: app.warmed_lessons == {"vote", "backprop"})
        assert isinstance(app.screen, HelpScreen)
        assert [type(screen) for screen in app.screen_stack[1:-1]] == [IndexScreen, KernelsCompilingScreen]
        await pilot.press("escape")
        assert await _wait_for(pilot, lambda: type(app.screen).__name__ == "BackpropScreen")
        assert [type(screen) for screen in app.screen_stack[1:]] == [IndexScreen, type(app.screen)]


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_stand_in_reads_without_colour_at_both_sizes(monkeypatch, size):
    import threading

    from convtui.tui import app as app_module

    monkeypatch.setenv("NO_COLOR", "1")
    release, calls = threading.Event(), []
    monkeypatch.setattr(app_module, "KERNEL_WARM_UPS", {"channels": _blocking_warm_up("c", calls, release, 4)})
    app = ConvTuiApp(initial_screen="channels", warm_kernels=True)
    async with app.run_test(size=size) as pilot:
        assert await _wait_for(pilot, lambda: len(calls) == 4)
        await pilot.pause(0.1)
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "Multiple feature maps (channels)" in text
        assert "Compiling this lesson's kernels: step 4 of 4…" in text
        assert "esc goes back to the index." in text.replace("\n", " ").replace("  ", " ") or "esc goes back" in text
        assert "esc" in text.splitlines()[-1] and "Help" in text.splitlines()[-1]  # the footer's keys
        release.set()


def test_convtui_runs_the_app_with_the_warm_up(monkeypatch):
    from convtui.tui import app as app_module

    seen = {}
    monkeypatch.setattr(app_module.ConvTuiApp, "run", lambda self: seen.setdefault("warm", self.warm_kernels))
    # The real one blocks SIGTERM/SIGHUP in this (pytest's) process: record the call instead.
    monkeypatch.setattr(app_module, "watch_exit_signals", lambda app: seen.setdefault("signals", app.warm_kernels))
    assert run_app() == 0 and seen == {"warm": True, "signals": True}


