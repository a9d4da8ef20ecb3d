"""`?`: the keys of the screen underneath (its BINDINGS and its focused widget's), of the app, and the screen's
HELP text."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def binding_rows(bindings) -> list[tuple[str, str]]:
    """(key, description) for each binding; Binding objects and (key, action, description) tuples alike."""
    rows = []
    for binding in bindings:
        if isinstance(binding, Binding):
            # The footer wants a word; the help can afford the tooltip's longer phrase.
            key, description = binding.key_display or binding.key, binding.tooltip or binding.description
        else:
            key, description = binding[0], binding[2] if len(binding) > 2 else binding[1]
        if description:
            rows.append((key.replace("question_mark", "?"), description))
    return rows


def own_bindings(node) -> list:
    """The bindings convtui itself gives `node`'s class and its convtui base classes (not Textual's defaults),
    most specific first, one per key."""
    bindings, seen = [], set()
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("convtui."):
            continue
        for binding in cls.__dict__.get("BINDINGS", []):
            key = binding.key if isinstance(binding, Binding) else binding[0]
            if key not in seen:
                seen.add(key)
                bindings.append(binding)
    return bindings


class HelpScreen(ModalScreen):
    """A key list for the screen it was opened over; any of escape, ? or q closes it."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", key_display="?"),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
        table.add_column("key")
        table.add_column("does")
        # The focused widget's own keys too: the lesson list, for one, carries Enter itself.
        focused = self.under.focused
        self.key_rows = (binding_rows(own_bindings(focused) if focused is not None else [])
                         + binding_rows(own_bindings(self.under)) + binding_rows(own_bindings(self.app)))
        for key, description in self.key_rows:
            table.add_row(key, description)
        title = getattr(self.under, "TITLE", None) or getattr(self.under, "title", None) or "convtui"
        with VerticalScroll(id="help-box"):
            yield Static(Text(f"Help: {title}", style="bold"), id="help-title")
            if getattr(self.under, "HELP", None):
                yield Static(self.under.HELP, id="help-text")
            yield Static(table, id="help-keys")
            yield Static(Text("PgUp/PgDn (or the mouse wheel) scroll a lesson taller than the terminal.\n"
                              "escape, ? or q closes this help", style="dim"))

    def action_close(self) -> None:
        self.dismiss()
