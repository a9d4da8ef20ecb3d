"""The convtui Textual app: a lesson index, one screen per lesson, help, quit, and a "too small" guard.

How a screen plugs in
---------------------
1. Add (or keep) an entry in `convtui/tui/lessons.py`: `Lesson(name, title, summary, "module:Class", part)`.
2. Write `Class` in that module as a `textual.screen.Screen` subclass whose `__init__` takes no required
   arguments. Give it `BINDINGS` with descriptions (the footer and the `?` help list them) and, optionally,
   a `HELP` string (plain text or Rich markup) that `?` shows above the keys. Include a `Footer()` in `compose`.
3. That is all: the index imports the module lazily when the learner opens the lesson; until the module exists
   the entry shows "coming soon" and opens a placeholder. `convtui --screen NAME` opens it directly.

The app owns these keys on every screen: `?` help, `q` quit, `escape`/`backspace` back to the index.
To open a lesson from code use `app.open_lesson("name")`; to push any other screen, `app.push_screen(Screen())`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from convtui.tui.lessons import LESSONS, Lesson, find_lesson

# Below this the lesson layouts break, so the app shows a plain message instead.
MIN_WIDTH, MIN_HEIGHT = 80, 24


def lesson_available(lesson: Lesson) -> bool:
    """True when the lesson's screen module exists (found without importing it)."""
    module_name = lesson.target.split(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


def load_lesson_screen(lesson: Lesson) -> Screen:
    """Import the lesson's screen lazily; a missing module gives the placeholder, a broken one says why."""
    from convtui.tui.screens.placeholder import PlaceholderScreen

    module_name, class_name = lesson.target.split(":")
    if not lesson_available(lesson):
        return PlaceholderScreen(lesson)
    try:
        screen_class = getattr(importlib.import_module(module_name), class_name)
        return screen_class()
    except Exception as exc:  # a bug in one lesson must not take the whole app down
        return PlaceholderScreen(lesson, problem=f"{type(exc).__name__}: {exc}")


class ConvTuiApp(App):
    """Learn convolutional neural networks in the terminal: the lecture's lessons, one screen each."""

    TITLE = "convtui"
    SUB_TITLE = "convolutional neural networks, step by step"
    CSS_PATH = "convtui.tcss"
    ENABLE_COMMAND_PALETTE = False  # every action has its own key; ctrl+p would only crowd the footer
    # Screens get the class -narrow below 110 columns (side-by-side panels stack) and -wide above.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    # Below 30 rows lesson screens drop their intro paragraph so the panels fit in 24 rows.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "back", "Back"),
        Binding("backspace", "back", "Back", show=False),
    ]

    def __init__(self, initial_screen: str | None = None) -> None:
        super().__init__()
        if initial_screen is not None and find_lesson(initial_screen) is None:
            raise ValueError(unknown_screen_message(initial_screen))
        self.initial_screen = initial_screen

    def on_mount(self) -> None:
        from convtui.tui.screens.index import IndexScreen

        self.push_screen(IndexScreen())
        if self.initial_screen:
            self.open_lesson(self.initial_screen)
        self.check_size()

    def open_lesson(self, name: str) -> None:
        """Push the screen of the lesson called `name` (see convtui/tui/lessons.py)."""
        lesson = find_lesson(name)
        if lesson is None:
            self.notify(unknown_screen_message(name), severity="error")
            return
        self.push_screen(load_lesson_screen(lesson))

    # ---------------------------------------------------------------- keys
    def action_help(self) -> None:
        from convtui.tui.screens.help import HelpScreen
        from convtui.tui.screens.too_small import TooSmallScreen

        if not isinstance(self.screen, HelpScreen | TooSmallScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_back(self) -> None:
        from convtui.tui.screens.index import IndexScreen
        from convtui.tui.screens.too_small import TooSmallScreen

        if not isinstance(self.screen, IndexScreen | TooSmallScreen) and len(self.screen_stack) > 2:
            self.pop_screen()

    # ---------------------------------------------------------------- too small
    def on_resize(self, event: events.Resize) -> None:
        self.check_size(event.size.width, event.size.height)

    def check_size(self, width: int | None = None, height: int | None = None) -> None:
        """Cover everything with a plain message while the terminal is under MIN_WIDTH x MIN_HEIGHT."""
        from convtui.tui.screens.too_small import TooSmallScreen

        width = self.size.width if width is None else width
        height = self.size.height if height is None else height
        too_small = width < MIN_WIDTH or height < MIN_HEIGHT
        showing = isinstance(self.screen, TooSmallScreen)
        if too_small and not showing:
            self.push_screen(TooSmallScreen(width, height))
        elif too_small and showing:
            self.screen.update_size(width, height)
        elif not too_small and showing:
            self.pop_screen()


def unknown_screen_message(name: str) -> str:
    return f"unknown screen {name!r}; choose one of: {', '.join(lesson.name for lesson in LESSONS)}"


def run_app(screen: str | None = None) -> int:
    """Run the app (optionally straight on one lesson); returns the process exit code (2 for a bad name)."""
    if screen is not None and find_lesson(screen) is None:
        print(f"convtui: error: {unknown_screen_message(screen)}", file=sys.stderr)
        return 2
    app = ConvTuiApp(initial_screen=screen)
    app.run()
    return app.return_code or 0
