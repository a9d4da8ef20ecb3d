"""Every screen at the smallest supported terminal, 80x24: nothing runs off the right edge (the footer's keys
included: a cut footer hides keys), and a lesson's intro is still there to read, under the panels."""

from __future__ import annotations

import importlib

import pytest
from textual.widgets import Footer, Static

from convtui.tui.app import ConvTuiApp
from convtui.tui.lessons import LESSONS
from convtui.tui.screens.lesson_base import LessonScreen

WIDTH, HEIGHT = 80, 24
SCREENS = [lesson.name for lesson in LESSONS]


def _has_intro(lesson) -> bool:
    module_name, class_name = lesson.target.split(":")
    screen_class = getattr(importlib.import_module(module_name), class_name)
    return issubclass(screen_class, LessonScreen) and bool(screen_class.INTRO)


WITH_INTRO = [lesson.name for lesson in LESSONS if _has_intro(lesson)]


def _off_the_edge(screen) -> list[str]:
    """Visible widgets whose right edge is past the terminal's (ignoring the body's own scrolling viewport)."""
    return [f"{type(widget).__name__}#{widget.id}" for widget in screen.query("*")
            if widget.display and widget.region.width and widget.region.right > WIDTH]


@pytest.mark.parametrize("name", SCREENS)
async def test_every_screen_fits_80_columns_footer_included(name):
    app = ConvTuiApp(initial_screen=name)
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert type(screen).__name__ not in ("TooSmallScreen", "IndexScreen")
        assert _off_the_edge(screen) == []
        footer = screen.query_one(Footer)
        keys = list(footer.query("FooterKey"))
        assert keys, "the footer shows no keys"
        assert max(key.region.right for key in keys) <= WIDTH
        assert all(key.region.width > 0 for key in keys), "a footer key was squeezed out"


@pytest.mark.parametrize("name", WITH_INTRO)
async def test_a_lessons_intro_follows_its_panels_on_a_short_terminal(name):
    app = ConvTuiApp(initial_screen=name)
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        screen = app.screen
        above, below = screen.query(Static).filter(".lesson-text")
        assert not above.display and below.display
        assert str(below.render()) == str(above.render())
    app = ConvTuiApp(initial_screen=name)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        above, below = app.screen.query(Static).filter(".lesson-text")
        assert above.display and not below.display
