"""The lesson index: every lesson from convtui/tui/lessons.py, grouped by part, in the lecture's order."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from convtui.tui.lessons import LESSONS, Lesson

CURSOR_MARK = "> "  # the highlighted lesson also reads without colour (NO_COLOR, a monochrome projector)


def lesson_prompt(lesson: Lesson, highlighted: bool = False) -> Text:
    """A lesson's two lines in the list; the highlighted one starts with CURSOR_MARK instead of spaces."""
    mark = CURSOR_MARK if highlighted else " " * len(CURSOR_MARK)
    return Text.assemble((f"{mark}{lesson.title}", "bold"), (f"\n    {lesson.summary}", "dim"))


class LessonList(OptionList):
    """The lessons. Its keys live on the list itself, not on the screen with priority: a priority Enter would run
    before the j/k presses queued ahead of it (typed fast, or arriving in one burst over SSH) and open the wrong
    lesson."""

    BINDINGS = [
        Binding("enter", "select", "Open lesson"),
        # OptionList binds the arrows already; naming them here puts them in the help beside j and k.
        Binding("down", "cursor_down", "Down", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]


class IndexScreen(Screen):
    """Pick a lesson with the arrow keys and Enter."""

    HELP_TITLE = "Lessons"
    HELP = "Lessons follow the lecture. Move with up/down (or j/k), open with Enter."
    # The line under the intro where the app reports its kernel warm-up (see ConvTuiApp.warm_up_kernels).
    DEFAULT_CSS = """
    #index-status { padding: 0 1; color: $text-muted; height: auto; }
    """

    status_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Learn convolutional neural networks from the lecture, one screen at a time.",
                     id="index-intro")
        status = Static(Text(self.status_text), id="index-status")
        status.display = bool(self.status_text)  # no blank line when nothing is being prepared
        yield status
        options: list[Option | None] = []
        part = None
        for lesson in LESSONS:
            if lesson.part != part:
                if part is not None:
                    options.append(None)
                part = lesson.part
                options.append(Option(Text(part, style="bold underline"), disabled=True))
            options.append(Option(lesson_prompt(lesson), id=lesson.name))
        yield LessonList(*options, id="lessons")
        yield Footer()

    def on_mount(self) -> None:
        lessons = self.query_one("#lessons", OptionList)
        lessons.focus()
        lessons.highlighted = next(i for i, option in enumerate(lessons.options) if not option.disabled)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # The list's highlight is a background colour only: move the text mark along with it.
        lessons = self.query_one("#lessons", OptionList)
        for lesson in LESSONS:
            lessons.replace_option_prompt(lesson.name, lesson_prompt(lesson, lesson.name == event.option.id))

    def show_status(self, text: str) -> None:
        """One line under the intro: what the app is preparing, or that it is ready (plain text, not markup)."""
        self.status_text = text
        for status in self.query("#index-status").results(Static):  # none yet before compose: it reads status_text
            status.update(Text(text))
            status.display = bool(text)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.app.open_lesson(event.option.id)
