"""`?`: the keys of the screen underneath (its focused widget's, its own and the app's), and the screen's HELP text.

The help is generated from the bindings, so it cannot drift from them. Keys that the footer shows as one entry
("1-4 page", "←↑↓→ neuron": a shown binding followed by hidden ones with the same action) are one row here too,
and that row names every key of the group with what it does, the first one included. All text is plain: a
description or HELP text is never read as Rich markup, so "[ and ]" reach the screen as typed.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


@dataclass(frozen=True)
class HelpRow:
    """One line of the key table: `display` in the key column, `description` beside it, and `keys`, every key
    the row stands for (as the help names them: "↑", "[", "1")."""

    display: str
    description: str
    keys: tuple[str, ...]


# Words a learner reads more easily than Textual's symbols ("⏎", "⌫", "pgup").
KEY_NAMES = {"enter": "enter", "backspace": "backspace", "escape": "esc", "pageup": "PgUp", "pagedown": "PgDn"}


def key_name(binding: Binding) -> str:
    """The key itself as the help names it ("↑", "[", "1", "esc"), whatever the footer shows for its group."""
    return KEY_NAMES.get(binding.key) or format_key(binding.key)


def _phrase(binding: Binding) -> str:
    # The footer wants a word; the help can afford the tooltip's longer phrase.
    return binding.tooltip or binding.description


def _action_name(binding: Binding) -> str:
    return binding.action.split("(", 1)[0]


def _as_binding(binding) -> Binding:
    if isinstance(binding, Binding):
        return binding
    key, action, *rest = binding
    return Binding(key, action, rest[0] if rest else "")


def _stands_for_a_group(binding: Binding) -> bool:
    """A key_display such as "1-4" or "←↑↓→" that is not the key itself: the footer's mark of a group."""
    own = {key_name(binding), format_key(binding.key), binding.key.replace("ctrl+", "^")}  # "^s" is ctrl+s itself
    return bool(binding.key_display) and binding.key_display not in own


def _after_heading(phrase: str, word: str) -> str:
    """A member's phrase without the group's heading when one word is left ("neuron down" -> "↓ down"); a
    longer phrase is kept whole, since "stride s + 1" cut to "s + 1" beside the key s would read "s s + 1"."""
    rest = phrase[len(word) + 1:] if phrase.lower().startswith(word.lower() + " ") else ""
    return rest if rest and " " not in rest else phrase


def _group_row(group: list[Binding]) -> HelpRow:
    head = group[0]
    keys = tuple(key_name(binding) for binding in group)
    if len(group) == 1:
        return HelpRow(head.key_display or keys[0], _phrase(head), keys)
    phrases = [_phrase(binding) for binding in group]
    if not _stands_for_a_group(head):  # esc/backspace "Back": keys that do one thing, all named in the key column
        return HelpRow("/".join(keys), phrases[0], keys)
    word = head.description
    parts = [f"{key} {_after_heading(phrase, word)}" for key, phrase in zip(keys, phrases)]
    return HelpRow(head.key_display, f"{word}: {', '.join(parts)}", keys)


def help_rows(bindings) -> list[HelpRow]:
    """Rows for `bindings` in order. A hidden binding joins the row before it when it calls the same action
    (with other arguments) and either that row's key_display stands for a group ("1-4 page" then 2, 3, 4) or
    it does the same thing (esc, backspace: Back). Every other binding is a row of its own."""
    groups: list[list[Binding]] = []
    for binding in map(_as_binding, bindings):
        if not (binding.description or binding.tooltip):
            continue
        head = groups[-1][0] if groups else None
        if (head is not None and not binding.show and _action_name(binding) == _action_name(head)
                and (_stands_for_a_group(head) or _phrase(binding) == _phrase(head))):
            groups[-1].append(binding)
        else:
            groups.append([binding])
    return [_group_row(group) for group in groups]


def own_bindings(node) -> list[Binding]:
    """The bindings convtui itself gives `node`'s class and its convtui base classes (not Textual's defaults),
    most specific first, one per key."""
    bindings, seen = [], set()
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("convtui."):
            continue
        for binding in map(_as_binding, cls.__dict__.get("BINDINGS", [])):
            if binding.key not in seen:
                seen.add(binding.key)
                bindings.append(binding)
    return bindings


def active_bindings(screen: Screen) -> list[Binding]:
    """The keys a learner can press on `screen`, in the order Textual tries them: the focused widget's, the
    screen's, then the app's. A key bound at two levels is listed once, by the level that wins."""
    levels = [screen.focused, screen, screen.app] if screen.focused is not None else [screen, screen.app]
    bindings, seen = [], set()
    for node in levels:
        for binding in own_bindings(node):
            if binding.key not in seen:
                seen.add(binding.key)
                bindings.append(binding)
    return bindings


def screen_help_rows(screen: Screen) -> list[HelpRow]:
    """Every row of `screen`'s help: keys its widgets handle themselves (`HELP_KEYS`, pairs of display and
    description, such as a form's tab and enter), then its bindings."""
    widget_rows = [HelpRow(display, description, tuple(display.split("/")))
                   for display, description in getattr(screen, "HELP_KEYS", ())]
    return widget_rows + help_rows(active_bindings(screen))


def help_title(screen: Screen) -> str:
    """The screen's name as the index lists it (every screen has one; the app's name would not say which)."""
    from convtui.tui.lessons import lesson_for_screen

    lesson = lesson_for_screen(screen)
    title = (getattr(screen, "HELP_TITLE", None) or (lesson.title if lesson else None)
             or getattr(type(screen), "TITLE", None) or type(screen).__name__)
    return f"Help: {title}"


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
        self.rows = screen_help_rows(under)
        self.title_text = help_title(under)

    @property
    def key_rows(self) -> list[tuple[str, str]]:
        """(key column, description) as shown, row by row."""
        return [(row.display, row.description) for row in self.rows]

    def compose(self) -> ComposeResult:
        table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
        table.add_column("key", no_wrap=True)
        table.add_column("does")
        for row in self.rows:
            table.add_row(Text(row.display), Text(row.description))  # Text: never parsed as markup
        with VerticalScroll(id="help-box"):
            yield Static(Text(self.title_text, style="bold"), id="help-title")
            if getattr(self.under, "HELP", None):
                yield Static(Text(self.under.HELP), id="help-text")
            yield Static(table, id="help-keys")
            yield Static(Text("escape, ? or q closes this help", style="dim"))

    def action_close(self) -> None:
        self.dismiss()
