"""Shown instead of a broken layout while the terminal is smaller than the app's minimum."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Middle
from textual.screen import ModalScreen
from textual.widgets import Static

# Below this the lesson layouts break, so the app shows this screen instead.
MIN_WIDTH, MIN_HEIGHT = 80, 24


class TooSmallScreen(ModalScreen):
    """Covers the app until the terminal is at least MIN_WIDTH x MIN_HEIGHT; the app pops it on resize."""

    BINDINGS = [Binding("q", "app.quit", "Quit")]

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width, self.height = width, height

    def compose(self) -> ComposeResult:
        with Middle():
            with Center():
                yield Static(self.message(), id="too-small-message")

    def message(self) -> str:
        return (f"Terminal too small: {self.width}x{self.height}.\n"
                f"convtui needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\n"
                "Enlarge the window, or press q to quit.")

    def update_size(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.query_one("#too-small-message", Static).update(self.message())
