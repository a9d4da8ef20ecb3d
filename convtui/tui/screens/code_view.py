"""A read-only, scrollable page of source code over the current screen (the Runs screen's `p`)."""

from __future__ import annotations

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


class CodeScreen(ModalScreen):
    """Shows `source` with a title; escape (or q) goes back to the screen underneath."""

    BINDINGS = [Binding("escape", "dismiss", "Back"), Binding("q", "dismiss", "Back", show=False)]
    DEFAULT_CSS = """
    CodeScreen { align: center middle; }
    CodeScreen #code-box { width: 96%; height: 92%; border: round $primary; padding: 0 1; background: $surface; }
    """

    def __init__(self, title: str, source: str) -> None:
        super().__init__()
        self.title_text, self.source = title, source

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="code-box") as box:
            box.border_title = self.title_text
            yield Static(Syntax(self.source, "python", theme="ansi_dark", word_wrap=True), id="code")
        yield Footer()

    def action_dismiss(self) -> None:
        self.app.pop_screen()
