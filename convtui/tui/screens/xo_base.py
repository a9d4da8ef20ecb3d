"""What the X/O lesson screens share: the image list (shipped and the learner's), and the image and filter keys.

A subclass is a `LessonScreen` (see lesson_base): it sets INTRO, yields its panels from `compose_lesson()` and
draws them in `refresh_lesson()`. `image_index` and `filter_index` are lesson state: changing them redraws.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.markup import escape

from convtui.toy.images import Skipped, XOImage, load_images
from convtui.toy.xo import FILTERS, ToyFilter
from convtui.tui.screens.lesson_base import LessonScreen, lesson_state


class XOLessonScreen(LessonScreen):
    """Base of the toy ConvNet lessons: `n`/`p` step through the images, `f` (where bound) through the filters."""

    IMAGE_BINDINGS = [
        Binding("n", "next_image", "Image", tooltip="Next image"),
        Binding("p", "previous_image", "Previous image", show=False),
    ]
    FILTER_BINDINGS = [Binding("f", "next_filter", "Filter", tooltip="Next filter: \\, X, /")]
    BINDINGS = IMAGE_BINDINGS

    image_index = lesson_state(0)
    filter_index = lesson_state(0)

    def __init__(self) -> None:
        super().__init__()
        self.images: list[XOImage]
        self.skipped: list[Skipped]  # the learner's files that could not be read, with reasons
        self.images, self.skipped = load_images()

    def on_screen_resume(self) -> None:
        # The learner may have saved an image in the pixels lesson meanwhile: list it here too.
        current = self.image.name
        self.images, self.skipped = load_images()
        self.image_index = next((i for i, image in enumerate(self.images) if image.name == current), 0)

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
        note = f" - {escape(image.note)}" if image.note else ""  # the learner's text, not markup
        return (f"image [b]{escape(image.name)}[/b] ({image.label.upper()}, {where}) "
                f"{self.image_index + 1}/{len(self.images)}{note}")

    def select_image(self, name: str) -> bool:
        for i, image in enumerate(self.images):
            if image.name == name:
                self.image_index = i
                self.image_changed()
                return True
        return False

    def image_changed(self) -> None:
        """Hook: reset per-image state (e.g. a half-built map) when the learner picks another image."""

    # ---------------------------------------------------------------- keys
    def action_next_image(self) -> None:
        self.image_index = (self.image_index + 1) % len(self.images)
        self.image_changed()

    def action_previous_image(self) -> None:
        self.image_index = (self.image_index - 1) % len(self.images)
        self.image_changed()

    def action_next_filter(self) -> None:
        self.filter_index = (self.filter_index + 1) % len(FILTERS)
