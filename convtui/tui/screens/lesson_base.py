"""The one way to write a lesson screen: every lesson in convtui/tui/lessons.py is a `LessonScreen`.

A lesson subclass gives

- `TITLE`, `HELP` (what `?` shows above the keys) and, optionally, `INTRO` (a paragraph above the panels; under
  30 rows it follows them instead, so the panels fit);
- `BINDINGS`; the arrow keys come from `cursor_bindings(...)` and call `action_move(row_step, col_step)`;
- its state as `lesson_state(default)` attributes. Actions only assign state; keep it valid where it is set
  (a `validate_<name>` method can clip it), so drawing never has to change it;
- `compose_lesson()`, which yields the panels, and `refresh_lesson()`, which draws them from the state.

The base adds the header, a scrolling body (PgUp/PgDn), the footer, and the redraw: `refresh_lesson()` runs on
mount, on resize, and once after any message (a key press, a worker's result) that assigned a `lesson_state`,
however many it assigned. Layout is in convtui.tcss (`.lesson-text`, `.panel-row`, `.pair`, `.panel`,
`.status`, `.caption`, `.explanation`), not in Python.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

ARROWS = (("up", -1, 0), ("down", 1, 0), ("left", 0, -1), ("right", 0, 1))


class lesson_state(reactive):  # noqa: N801 - used like Textual's own `reactive`
    """A piece of a lesson's state: assigning it redraws the lesson.

    Every assignment counts, equal or not (`always_update`): some states hold NumPy arrays, which `!=` cannot
    compare, and an assignment is the lesson saying that its state changed anyway.
    """

    def __init__(self, default) -> None:
        super().__init__(default, init=False, always_update=True)


class LessonBody(VerticalScroll, can_focus=False):
    """The scrolling lesson body. It never takes focus, so arrow keys reach the lesson's own bindings without
    `priority` (priority keys would overtake ordinary ones queued ahead of them); PgUp/PgDn scroll it instead."""


def cursor_bindings(description: str, show: bool = False) -> list[Binding]:
    """The arrow keys bound to `move(row_step, col_step)`, each described as `description`.

    With `show`, the footer has one `←↑↓→ description` entry, and the help one row naming each arrow:
    "←↑↓→  description: ↑ up, ↓ down, ← left, → right" (see convtui/tui/screens/help.py).
    """
    if not show:
        return [Binding(key, f"move({d_row}, {d_col})", description, show=False)
                for key, d_row, d_col in sorted(ARROWS, key=lambda arrow: "lrud".index(arrow[0][0]))]
    # The up arrow carries the footer's entry; its tooltip is what the up arrow itself does.
    return [Binding(key, f"move({d_row}, {d_col})", description if key == "up" else f"{description} {key}",
                    key_display="←↑↓→" if key == "up" else None, show=key == "up",
                    tooltip=f"{description} up" if key == "up" else "")
            for key, d_row, d_col in ARROWS]


class LessonScreen(Screen):
    """Base of every lesson screen (see the module docstring for what a subclass provides)."""

    INTRO = ""
    HELP = ""
    BINDINGS = [
        Binding("pageup", "scroll_body(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_body(1)", "Scroll down", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._redraw_pending = False
        self._intro_shown = ""  # the intro's text as drawn, so a redraw rewrites it only when it changed

    # ---------------------------------------------------------------- what a lesson overrides
    def compose_lesson(self) -> ComposeResult:
        """Yield the lesson's panels (inside the scrolling body, under the intro)."""
        yield from ()

    def refresh_lesson(self) -> None:
        """Draw every panel from the current state. Never assigns a `lesson_state` (it would redraw again)."""

    # ---------------------------------------------------------------- the frame
    def intro(self) -> str:
        """The paragraph above the panels: INTRO, unless the lesson's state changes what it says (pooling's mode)."""
        return self.INTRO

    def show_intro(self) -> None:
        """Redraw the intro (both copies, see `compose`) from `intro()` if it changed: for a lesson whose intro
        follows its state, called on every redraw."""
        text = self.intro()
        if text == self._intro_shown:
            return
        self._intro_shown = text
        for widget in self.query(".lesson-text").results(Static):
            widget.update(text)

    def compose(self) -> ComposeResult:
        yield Header()
        self._intro_shown = self.intro()
        with LessonBody(classes="lesson-body"):
            if self.INTRO:
                yield Static(self._intro_shown, classes="lesson-text")
            yield from self.compose_lesson()
            if self.INTRO:  # under 30 rows the intro moves below the panels, where PgDn reaches it
                yield Static(self._intro_shown, classes="lesson-text lesson-text-below")
        yield Footer(compact=True)

    def action_scroll_body(self, direction: int) -> None:
        body = self.query_one(LessonBody)
        body.scroll_page_down() if direction > 0 else body.scroll_page_up()

    # ---------------------------------------------------------------- the redraw
    @classmethod
    def lesson_state_names(cls) -> list[str]:
        """The names of the class's `lesson_state` attributes, its own and inherited."""
        names = []
        for klass in cls.__mro__:
            names += [name for name, value in vars(klass).items()
                      if isinstance(value, lesson_state) and name not in names]
        return names

    def on_mount(self) -> None:
        for name in self.lesson_state_names():
            self.watch(self, name, self._state_changed, init=False)
        self.refresh_lesson()

    def on_resize(self) -> None:
        # Some lessons size their views to the terminal (the padding input, the receptive-field zoom).
        self._state_changed()

    def _state_changed(self) -> None:
        # After the current message, not at once: an action assigns several states, and the panels must be
        # drawn from all of them together, once.
        if not self._redraw_pending:
            self._redraw_pending = True
            self.call_next(self._redraw)

    def _redraw(self) -> None:
        self._redraw_pending = False
        if self.is_mounted:
            self.refresh_lesson()


class KernelsCompilingScreen(LessonScreen):
    """Stands in for a lesson whose Numba kernels are still compiling (a first run, with a cold cache): the
    lesson's title and how far the compile is, while the app's keys stay live. The app puts the lesson itself in
    its place when the kernels are ready (`convtui.tui.app`), or at once on returning here from help."""

    DEFAULT_CSS = """
    #kernels-compiling-title { dock: top; width: 100%; height: 1; content-align: center middle; background: $panel;
                               text-style: bold; }
    """
    HELP = ("This lesson computes with Numba kernels, which are compiled the first time convtui runs and loaded "
            "from Numba's cache after that. The lesson opens by itself when they are ready; esc goes back to the "
            "index meanwhile.")

    def __init__(self, lesson_name: str, title: str, done: int = 0, total: int = 0) -> None:
        super().__init__()
        self.lesson_name = lesson_name
        self.title = title
        self.HELP_TITLE = title  # the help screen's (see help.help_title)
        self.progress = (done, total)
        self.kernels_ready = False  # set by the app when the kernels are ready but this screen is covered

    def compose(self) -> ComposeResult:
        # A plain title line, not Textual's Header: the app replaces this screen as soon as the kernels are
        # ready, and a Header removed before its own title watchers have run raises NoMatches in them.
        yield Static(Text(f"{self.title} — {self.app.sub_title}"), id="kernels-compiling-title")
        with LessonBody(classes="lesson-body"):
            yield Static(self.progress_text(), id="kernels-compiling", classes="status")
        yield Footer(compact=True)

    def progress_text(self) -> str:
        done, total = self.progress
        step = f": step {min(done + 1, total)} of {total}" if total else ""
        return (f"Compiling this lesson's kernels{step}…\n\n"
                "Numba compiles them once, the first time convtui runs; after that they load from its cache in "
                "well under a second. The lesson opens by itself when they are ready. esc goes back to the index.")

    def show_progress(self, done: int, total: int) -> None:
        self.progress = (done, total)
        if self.is_mounted:
            self.query_one("#kernels-compiling", Static).update(self.progress_text())

    def on_screen_resume(self) -> None:
        if self.kernels_ready:  # the kernels finished while help covered this screen
            self.app.call_later(self.app.open_lesson, self.lesson_name)
