"""What the X/O lesson screens share: the image list (shipped and the learner's), image and filter keys,
and a scrolling lesson body so a small terminal scrolls instead of cutting panels off.

A subclass sets INTRO, yields its panels from `compose_lesson()` and redraws them in `update_lesson()`.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from convtui.toy.images import XOImage, all_images
from convtui.toy.xo import FILTERS, ToyFilter


class LessonBody(VerticalScroll, can_focus=False):
    """The scrolling lesson body. It never takes focus, so arrow keys reach the lesson's own bindings without
    `priority` (priority keys would overtake ordinary ones queued ahead of them); PgUp/PgDn scroll it instead."""


def cursor_bindings(description: str) -> list[Binding]:
    """Arrow keys bound to `move(row_step, col_step)`."""
    return [Binding(key, f"move({dr}, {dc})", description, show=False)
            for key, dr, dc in (("left", 0, -1), ("right", 0, 1), ("up", -1, 0), ("down", 1, 0))]


class XOLessonScreen(Screen):
    """Base of the toy ConvNet lessons: `n`/`p` step through the images, `f` (where bound) through the filters."""

    INTRO = ""
    IMAGE_BINDINGS = [
        Binding("n", "next_image", "Image", tooltip="Next image"),
        Binding("p", "previous_image", "Previous image", show=False),
    ]
    FILTER_BINDINGS = [Binding("f", "next_filter", "Filter", tooltip="Next filter: \\, X, /")]
    BINDINGS = IMAGE_BINDINGS + [
        Binding("pageup", "scroll_body(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_body(1)", "Scroll down", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.images: list[XOImage] = all_images()
        self.image_index = 0
        self.filter_index = 0

    # ---------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Header()
        with LessonBody(classes="lesson-body"):
            if self.INTRO:
                yield Static(self.INTRO, classes="lesson-text")
            yield from self.compose_lesson()
        yield Footer(compact=True)

    def action_scroll_body(self, direction: int) -> None:
        body = self.query_one(LessonBody)
        body.scroll_page_down() if direction > 0 else body.scroll_page_up()

    def compose_lesson(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.update_lesson()

    def on_screen_resume(self) -> None:
        # The learner may have saved an image in the pixels lesson meanwhile: list it here too.
        current = self.image.name
        self.images = all_images()
        self.image_index = next((i for i, image in enumerate(self.images) if image.name == current), 0)
        self.update_lesson()

    def update_lesson(self) -> None:
        """Redraw every panel from the current image and filter."""

    # ---------------------------------------------------------------- current things
    @property
    def image(self) -> XOImage:
        return self.images[self.image_index]

    @property
    def toy_filter(self) -> ToyFilter:
        return FILTERS[self.filter_index]

    def image_caption(self) -> str:
        image = self.image
        where = "yours" if image.source == "yours" else "shipped"
        note = f" - {image.note}" if image.note else ""
        return (f"image [b]{image.name}[/b] ({image.label.upper()}, {where}) "
                f"{self.image_index + 1}/{len(self.images)}{note}")

    def select_image(self, name: str) -> bool:
        for i, image in enumerate(self.images):
            if image.name == name:
                self.image_index = i
                self.image_changed()
                self.update_lesson()
                return True
        return False

    def image_changed(self) -> None:
        """Hook: reset per-image state (e.g. a half-built map)."""

    # ---------------------------------------------------------------- keys
    def action_next_image(self) -> None:
        self.image_index = (self.image_index + 1) % len(self.images)
        self.image_changed()
        self.update_lesson()

    def action_previous_image(self) -> None:
        self.image_index = (self.image_index - 1) % len(self.images)
        self.image_changed()
        self.update_lesson()

    def action_next_filter(self) -> None:
        self.filter_index = (self.filter_index + 1) % len(FILTERS)
        self.update_lesson()
