"""The lesson index, in the lecture's order. The app builds its index screen and `--screen NAME` from this list.

Each entry names a Screen class by import path, so the index never imports every screen at start-up: a lesson's
module is imported when the learner opens it (`load_screen`). Nothing here imports Textual or NumPy at import
time: `convtui --help` lists the screen names from this module.

`KERNEL_WARM_UPS` says which Numba kernels each lesson needs for its first paint: the app compiles them in a
thread from start-up, because a cold cache costs 2-5 s per lesson (measured: Backprop 4.8 s, the X/O stack
2.1 s, the vote 0.7 s on 2 busy cores) and a lesson computing on the UI thread would freeze that long.
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
    # Lecture: "Some Improvement (1/5)" to "(5/5)", then why CNNs ("take advantage of shape information").
    Lesson("progression", "The progression", "softmax to CNN back to back, one plot, one table",
           "convtui.tui.screens.progression:ProgressionScreen", "The lecture's story"),
    # Lecture: "Vanilla Deep Neural Networks Challenges" (shift, rotation, scale; "do not scale"), measured.
    Lesson("invariance", "Why convolutions", "shift, rotate, scale the digits: mlp against cnn, in numbers",
           "convtui.tui.screens.invariance:InvarianceScreen", "The lecture's story"),
)


def find_lesson(name: str) -> Lesson | None:
    return next((lesson for lesson in LESSONS if lesson.name == name), None)


def unknown_screen_message(name: str) -> str:
    return f"unknown screen {name!r}; choose one of: {', '.join(lesson.name for lesson in LESSONS)}"


def lesson_for_screen(screen) -> Lesson | None:
    """The lesson whose screen `screen` is (by class), if any."""
    target = f"{type(screen).__module__}:{type(screen).__name__}"
    return next((lesson for lesson in LESSONS if lesson.target == target), None)


# ---------------------------------------------------------------- kernel warm-up
# Each step runs what its lesson runs first, on the same dtypes and shapes, so the Numba signatures compiled are
# the ones the lesson will call. They import lazily: this module stays free of NumPy.

@dataclass(frozen=True)
class KernelWarmUp:
    """The Numba kernels some lessons need for their first paint, compiled by running `steps` in order (each a
    function of no arguments). The steps let the app say how far a cold compile is ("step 2 of 5")."""

    name: str
    steps: tuple

    def __call__(self) -> None:
        for step in self.steps:
            step()


def _warm_curve_filter() -> None:  # filter-example: float64 conv2d_forward
    from convtui.toy import curve

    curve.filter_response(curve.FIELDS["matching"])


def _warm_padding() -> None:
    from convtui.toy import padding

    padding.window_sums(padding.sample_input(7), padding.PaddingSetup())


def _warm_channels() -> None:
    from convtui.toy import channels

    channels.make_example()


def _warm_backprop_gradients() -> None:  # backprop also runs conv2d_backward
    from convtui.toy import backprop

    backprop.gradients(backprop.make_state())


def _warm_backprop_checks() -> None:  # page 3 checks the gradients with finite differences
    from convtui.toy import backprop

    state = backprop.make_state()
    backprop.finite_difference(state, "w")
    backprop.finite_difference(state, "x")
    backprop.step(state)


def _warm_xo_stack(mode: str, depths: tuple[int, ...]):
    def step() -> None:  # conv, ReLU and max or mean pooling at these depths of the stack
        from convtui.toy import images, xo

        pixels = images.shipped_images()[0].pixels
        for depth in depths:
            xo.stack(pixels, depth, mode)

    return step


def _warm_vote() -> None:
    from convtui.toy import images, vote

    vote.vote(images.shipped_images()[0].pixels, vote.shipped_vote_weights())


_CONV_LESSONS = KernelWarmUp("conv lessons", (_warm_curve_filter, _warm_padding, _warm_channels,
                                              _warm_backprop_gradients, _warm_backprop_checks))
_XO_LESSONS = KernelWarmUp("X/O stack", (_warm_xo_stack("max", (1,)), _warm_xo_stack("mean", (1,)),
                                         _warm_xo_stack("max", (2, 3)), _warm_xo_stack("mean", (2, 3))))
_VOTE = KernelWarmUp("vote", (_warm_vote,))

# Lesson name -> the warm-up its first paint needs. One warm-up serves several lessons (the conv lessons share
# their kernels); lessons not listed (receptive fields: shapes only; the MNIST tools, which compute in their own
# workers and say so while their float32 kernels compile) open at once.
KERNEL_WARM_UPS = {
    "filter-example": _CONV_LESSONS, "padding": _CONV_LESSONS, "channels": _CONV_LESSONS, "backprop": _CONV_LESSONS,
    "filters": _XO_LESSONS, "relu": _XO_LESSONS, "pooling": _XO_LESSONS, "stacking": _XO_LESSONS,
    "pixels": _VOTE, "vote": _VOTE,
}
