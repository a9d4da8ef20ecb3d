"""The lesson index: every lesson from convtui/tui/lessons.py, grouped by part, in the lecture's order."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from convtui.tui.lessons import LESSONS


class LessonList(OptionList):
    """The lessons. Its keys live on the list itself, not on the screen with priority: a priority Enter would run
    before the j/k presses queued ahead of it (typed fast, or arriving in one burst over SSH) and open the wrong
    lesson."""

    BINDINGS = [
        Binding("enter", "select", "Open lesson"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]


class IndexScreen(Screen):
    """Pick a lesson with the arrow keys and Enter."""

    HELP = "Lessons follow the lecture. Move with up/down (or j/k), open with Enter."

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Learn convolutional neural networks from the lecture, one screen at a time.",
                     id="index-intro")
        options: list[Option | None] = []
        part = None
        for lesson in LESSONS:
            if lesson.part != part:
                if part is not None:
                    options.append(None)
                part = lesson.part
                options.append(Option(Text(part, style="bold underline"), disabled=True))
            prompt = Text.assemble((f"  {lesson.title}", "bold"), (f"\n    {lesson.summary}", "dim"))
            options.append(Option(prompt, id=lesson.name))
        yield LessonList(*options, id="lessons")
        yield Footer()

    def on_mount(self) -> None:
        lessons = self.query_one("#lessons", OptionList)
        lessons.focus()
        lessons.highlighted = next(i for i, option in enumerate(lessons.options) if not option.disabled)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.app.open_lesson(event.option.id)
