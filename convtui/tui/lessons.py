"""The lesson index, in the lecture's order. The app builds its index screen and `--screen NAME` from this list.

Each entry names a Screen class by import path, so the index never imports every screen at start-up: a lesson's
module is imported when the learner opens it (`load_screen`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the list itself needs no Textual: `--screen NAME` is checked before the app starts
    from textual.screen import Screen


@dataclass(frozen=True)
class Lesson:
    name: str  # used by `convtui --screen NAME`
    title: str
    summary: str
    target: str  # "package.module:ScreenClass"
    part: str  # heading in the index

    def load_screen(self) -> Screen:
        """Import the lesson's module and build its screen. Raises whatever the import or the screen raises."""
        module_name, class_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), class_name)()


LESSONS: tuple[Lesson, ...] = (
    # Lecture: "Receptive Fields and Filters" (the curve detector), then the convolutional layer.
    Lesson("filter-example", "Receptive field and filter", "the curve detector: 6600 on a match, little elsewhere",
           "convtui.tui.screens.filter_example:FilterExampleScreen", "How a convolutional layer works"),
    Lesson("padding", "Padding and stride", "output size (n + 2p - f) // s + 1, VALID and SAME",
           "convtui.tui.screens.padding:PaddingScreen", "How a convolutional layer works"),
    Lesson("receptive-fields", "Receptive fields across layers", "trace a neuron's footprint back to the image",
           "convtui.tui.screens.receptive_fields:ReceptiveFieldsScreen", "How a convolutional layer works"),
    # Lecture: "A Toy ConvNet: X's and O's" up to "Putting It All Together".
    Lesson("pixels", "What computers see", "X and O as -1/+1 grids; computers are literal",
           "convtui.tui.screens.pixels:PixelsScreen", "A toy ConvNet: X's and O's"),
    Lesson("filters", "Filters match pieces", "slide a 3x3 filter window by window",
           "convtui.tui.screens.filters:FiltersScreen", "A toy ConvNet: X's and O's"),
    Lesson("relu", "ReLU", "negatives become 0",
           "convtui.tui.screens.relu:ReluScreen", "A toy ConvNet: X's and O's"),
    Lesson("pooling", "Pooling", "2x2 max pooling, stride 2: 7x7 -> 4x4",
           "convtui.tui.screens.pooling:PoolingScreen", "A toy ConvNet: X's and O's"),
    Lesson("stacking", "Deep stacking", "conv, ReLU, pool, again",
           "convtui.tui.screens.stacking:StackingScreen", "A toy ConvNet: X's and O's"),
    Lesson("vote", "Fully connected vote", "every feature votes for X or O",
           "convtui.tui.screens.vote:VoteScreen", "A toy ConvNet: X's and O's"),
    # Lecture: "One more example", then "Training CNNs".
    Lesson("channels", "Multiple feature maps (channels)", "7x7x3 input, two 3x3x3 filters, stride 2 -> 3x3x2",
           "convtui.tui.screens.channels:ChannelsScreen", "Channels and learning"),
    Lesson("backprop", "Backprop through one conv layer", "dE/dW term by term, then W - eta dE/dW",
           "convtui.tui.screens.backprop:BackpropScreen", "Channels and learning"),
    # Lecture: "Let's Start With An Example" (MNIST), trained for real.
    Lesson("train", "Train on MNIST", "live loss and accuracy on our own kernels",
           "convtui.tui.screens.dashboard:DashboardScreen", "Real MNIST"),
    Lesson("draw", "Draw a digit", "a 28x28 canvas, predicted live",
           "convtui.tui.screens.draw:DrawScreen", "Real MNIST"),
    Lesson("runs", "Runs and compare", "open a run folder, overlay curves",
           "convtui.tui.screens.runs:RunsScreen", "Real MNIST"),
)


def find_lesson(name: str) -> Lesson | None:
    return next((lesson for lesson in LESSONS if lesson.name == name), None)


def unknown_screen_message(name: str) -> str:
    return f"unknown screen {name!r}; choose one of: {', '.join(lesson.name for lesson in LESSONS)}"
