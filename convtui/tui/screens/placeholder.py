"""Stands in for a lesson whose screen module is not built yet (or failed to load)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from convtui.tui.lessons import Lesson


class PlaceholderScreen(Screen):
    """Says which lesson this will be, and why it cannot open yet."""

    def __init__(self, lesson: Lesson, problem: str | None = None) -> None:
        super().__init__()
        self.lesson = lesson
        self.problem = problem
        self.title = lesson.title

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="placeholder"):
            yield Static(f"[b]{self.lesson.title}[/b]\n{self.lesson.summary}", id="placeholder-title")
            if self.problem:
                yield Static(f"This lesson could not open: {self.problem}", id="placeholder-message")
            else:
                yield Static("Coming soon: this lesson is not built yet.", id="placeholder-message")
            yield Static("Press escape to go back to the lessons.")
        yield Footer()
