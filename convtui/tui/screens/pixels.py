"""Lesson: what computers see. X and O as -1/+1 grids; compare two cell by cell; edit and save your own."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.markup import escape
from textual.widgets import Static

from convtui.core.training.text import plural
from convtui.toy.formatting import format_percent
from convtui.toy.images import (LABELS, ImageFormatError, XOImage, find_image, mismatches, save_user_image,
                                user_dir)
from convtui.toy.vote import shipped_vote_weights, vote
from convtui.tui.screens.lesson_base import cursor_bindings, lesson_state
from convtui.tui.screens.xo_base import XOLessonScreen
from convtui.tui.widgets.grid import NumberGrid

MISMATCH_STYLE = "bold color(203)"
EDITED_STYLE = "bold color(51)"


def shifted_x_claim() -> str:
    """The INTRO's claim, counted from the shipped images rather than asserted: x against x-shifted."""
    x, shifted = find_image("x"), find_image("x-shifted")
    if x is None or shifted is None:
        return "many cells no longer match"
    differ = len(mismatches(x.pixels, shifted.pixels))
    return (f"{differ} of its {x.pixels.size} cells no longer match (m compares x with x-shifted), "
            "yet a person still sees the same X")


class PixelsScreen(XOLessonScreen):
    """Browse, compare and edit the toy images."""

    TITLE = "What computers see"
    INTRO = ("A computer sees a 9x9 grid of numbers: 1 where there is ink, -1 where there is none. "
             "Computers are literal: shift an X by one pixel and {shifted}.")
    HELP = ("n/p browse the images (the lecture's X and O, their trickier variants, then yours). "
            "m compares with a second image (b picks which): red [brackets] mark cells that differ. "
            "e edits: arrows move the cursor (>like this<), space flips a pixel (your flips are marked (like this)), l switches "
            f"the label, s saves a new image under {user_dir()} (or $CONVTUI_XO_DIR). e turns comparing off so "
            "your flips show; m while editing compares your edit with another image. Leaving with unsaved "
            "edits (q, esc, n, p) warns first; the same key again leaves without saving. "
            "The vote lesson classifies saved images too.")
    BINDINGS = XOLessonScreen.IMAGE_BINDINGS + [
        Binding("m", "compare", "Compare"),
        Binding("b", "next_other", "Other", tooltip="compare with the next image"),
        Binding("e", "edit", "Edit"),
        Binding("space", "toggle_pixel", "Flip", tooltip="flip the pixel under the cursor (while editing)"),
        Binding("l", "switch_label", "Label", show=False),
        Binding("s", "save", "Save"),
    ] + cursor_bindings("Move cursor") + [
        # Guarded versions of the app's keys: unsaved edits are lost on leaving, so the first press warns.
        Binding("q", "leave('quit')", "Quit"),
        Binding("escape", "leave('back')", "Back"),
        Binding("backspace", "leave('back')", "Back", show=False),
    ]

    comparing = lesson_state(False)
    other_index = lesson_state(1)  # the image compared with (taken modulo the number of images)
    editing = lesson_state(False)
    cursor = lesson_state((4, 4))
    edit_pixels: np.ndarray = lesson_state(None)  # the edited copy; replaced, never changed in place
    edit_label = lesson_state("x")

    def __init__(self) -> None:
        super().__init__()
        self.INTRO = self.INTRO.format(shifted=shifted_x_claim())
        names = [image.name for image in self.images]
        if "x-shifted" in names:  # `m` first compares what the intro speaks of: x against x-shifted
            self.other_index = names.index("x-shifted")
        self.warned_leave: str | None = None  # the leave key already warned about (pressed again: it leaves)
        self.image_changed()

    def compose_lesson(self) -> ComposeResult:
        yield Static(id="pixels-caption", classes="status")
        with Horizontal(classes="panel-row"):
            yield NumberGrid(decimals=0, palette="pixels", title="image", id="pixels-image", classes="panel")
            yield NumberGrid(decimals=0, palette="pixels", title="compared with", id="pixels-other",
                             classes="panel")
        yield Static(id="pixels-status", classes="status")

    # ---------------------------------------------------------------- state
    def image_changed(self) -> None:
        self.editing = False
        self.edit_pixels = self.image.pixels.copy()
        self.edit_label = self.image.label

    def shown_pixels(self) -> np.ndarray:
        return self.edit_pixels if self.editing else self.image.pixels

    @property
    def other_image(self) -> XOImage:
        return self.images[self.other_index % len(self.images)]  # the list may have shrunk since

    def unsaved_edits(self) -> bool:
        return bool(mismatches(self.edit_pixels, self.image.pixels)) or self.edit_label != self.image.label

    def differing_cells(self) -> list[tuple[int, int]]:
        return mismatches(self.shown_pixels(), self.other_image.pixels)

    # ---------------------------------------------------------------- drawing
    def refresh_lesson(self) -> None:
        self.warned_leave = None  # something changed since the warning: warn again before leaving
        self.query_one("#pixels-caption", Static).update(self.image_caption())
        grid = self.query_one("#pixels-image", NumberGrid)
        grid.set_values(self.shown_pixels())
        grid.border_title = f"{self.image.name}{' (editing)' if self.editing else ''}"
        grid.cursor = self.cursor if self.editing else None
        grid.clear_highlights()
        other = self.query_one("#pixels-other", NumberGrid)
        other.display = self.comparing
        lines = []
        if self.comparing:
            other_image = self.other_image
            other.set_values(other_image.pixels)
            other.border_title = f"compared with {other_image.name}"
            differ = self.differing_cells()
            grid.highlight("mismatch", differ, MISMATCH_STYLE)
            other.highlight("mismatch", differ, MISMATCH_STYLE)
            lines.append(f"{len(differ)} of {self.shown_pixels().size} cells differ from {other_image.name} "
                         "(red brackets)" if differ else f"identical to {other_image.name}, cell for cell")
        if self.editing:
            changed = mismatches(self.edit_pixels, self.image.pixels)
            if not self.comparing:
                grid.highlight("edited", changed, EDITED_STYLE, marks="()")  # [ ] already means "differs"
            result = vote(self.edit_pixels, shipped_vote_weights())
            marked = "not marked while comparing" if self.comparing else "marked on the grid"
            lines.append(f"editing: cursor row {self.cursor[0]}, col {self.cursor[1]}; "
                         f"{plural(len(changed), 'pixel')} flipped ({marked}); label {self.edit_label.upper()}; "
                         f"the toy ConvNet votes [b]{result.prediction.upper()}[/b] "
                         f"({format_percent(result.probabilities.max())}); s saves")
        if not lines:
            lines.append("m compares with another image, e edits this one")
        if self.skipped:  # files in the learner's folder that are not images: say so rather than hide them
            lines.append(f"{len(self.skipped)} file(s) in {user_dir()} not read: "
                         + "; ".join(escape(f"{p.path.name} ({p.reason})") for p in self.skipped))
        self.query_one("#pixels-status", Static).update("\n".join(lines))

    # ---------------------------------------------------------------- keys
    def action_compare(self) -> None:
        self.comparing = not self.comparing
        if self.comparing and self.other_index == self.image_index:
            self.other_index = (self.image_index + 1) % len(self.images)

    def action_next_other(self) -> None:
        self.comparing = True
        self.other_index = (self.other_index + 1) % len(self.images)

    def action_edit(self) -> None:
        self.editing = not self.editing
        if self.editing and self.comparing:
            # Comparing hides the edit marks: turn it off so the flips show at once, and say so.
            self.comparing = False
            self.notify("editing: compare turned off so your flips show; m compares your edit again")

    def action_leave(self, how: str) -> None:
        """q, esc and backspace: leave at once, unless there are unsaved edits and this key has not warned yet."""
        if self.unsaved_edits() and self.warned_leave != how:
            self.warned_leave = how
            again = "q" if how == "quit" else "esc"
            self.notify(f"unsaved edits to {self.image.name}: s saves them, {again} again "
                        f"{'quits' if how == 'quit' else 'goes back'} without saving", severity="warning")
            return
        self.app.exit() if how == "quit" else self.app.action_back()

    def action_next_image(self) -> None:
        if self.keep_edits("next"):
            super().action_next_image()

    def action_previous_image(self) -> None:
        if self.keep_edits("previous"):
            super().action_previous_image()

    def keep_edits(self, how: str) -> bool:
        """True when it is fine to change image: no unsaved edits, or the same key pressed after a warning."""
        if not self.unsaved_edits() or self.warned_leave == how:
            return True
        self.warned_leave = how
        self.notify(f"unsaved edits to {self.image.name}: s saves them; {how[0]} again drops them",
                    severity="warning")
        return False

    def action_move(self, d_row: int, d_col: int) -> None:
        if not self.editing:
            self.editing = True
        last = self.edit_pixels.shape[0] - 1
        row, col = self.cursor
        self.cursor = (min(last, max(0, row + d_row)), min(last, max(0, col + d_col)))

    def action_toggle_pixel(self) -> None:
        if not self.editing:
            self.editing = True
        else:
            flipped = self.edit_pixels.copy()
            flipped[self.cursor] = -flipped[self.cursor]
            self.edit_pixels = flipped

    def action_switch_label(self) -> None:
        self.editing = True
        self.edit_label = LABELS[1 - LABELS.index(self.edit_label)]

    def action_save(self) -> None:
        if not self.editing:
            self.notify("press e to edit first, then s saves your version", severity="warning")
            return
        if not mismatches(self.edit_pixels, self.image.pixels) and self.edit_label == self.image.label:
            self.notify("nothing changed yet: space flips the pixel under the cursor", severity="warning")
            return
        try:
            saved = save_user_image(self.edit_pixels, self.edit_label, self.image.name,
                                    note=f"edited from {self.image.name}")
        except (OSError, ImageFormatError) as exc:
            self.notify(f"could not save: {exc}", severity="error")
            return
        self.on_screen_resume()
        self.select_image(saved.name)
        self.notify(escape(f"saved as {saved.name} in {saved.path.parent}"))
