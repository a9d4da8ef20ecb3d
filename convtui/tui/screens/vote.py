"""Lesson: the fully connected vote. Flatten the final maps; each feature votes for X and for O."""

from __future__ import annotations

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static

from convtui.toy.formatting import format_percent, format_value
from convtui.toy.vote import DEPTH, FEATURE_DECIMALS, VoteWeights, shipped_vote_weights, vote, working
from convtui.toy.xo import FILTERS
from convtui.tui.screens.lesson_base import lesson_state
from convtui.tui.screens.xo_base import XOLessonScreen


class VoteScreen(XOLessonScreen):
    """n/p choose the image whose votes are shown; every image is classified in the table on the right."""

    TITLE = "Fully connected vote"
    INTRO = ("Flatten the final maps into one list of 12 numbers. Each number votes for X and for O with its own "
             "weight; the class with the larger total wins.")
    HELP = ("The weights are learned, not set by hand: one Dense layer (12 features -> 2 scores) trained with "
            "softmax cross-entropy and SGD (convtui.core) on the 12 shipped images. Your saved images (from the "
            "pixels lesson) are classified but never trained on. Every number shown is truncated (never "
            "rounded): values to 4 decimals, the rest to 2. The table is worked from the numbers shown, so you "
            "can redo it by hand: vote = value x weight (truncated), score = sum of the votes + bias, the "
            "percentage is the softmax of the two scores (truncated). The network's full-precision scores "
            "differ from these by a few hundredths.")
    BINDINGS = XOLessonScreen.IMAGE_BINDINGS

    weights: VoteWeights | None = lesson_state(None)  # None until the worker has trained them

    def compose_lesson(self) -> ComposeResult:
        yield Static(id="vote-caption", classes="status")
        yield Static(id="vote-result", classes="status")
        yield Static("training the vote weights...", id="vote-weights", classes="status")
        with Container(classes="pair"):
            yield Static(id="vote-table", classes="panel")
            yield Static(id="vote-all", classes="panel")

    def on_mount(self) -> None:
        self.train()

    @work(thread=True, exclusive=True)
    def train(self) -> None:
        weights = shipped_vote_weights()  # a fraction of a second, plus a one-off Numba compile
        self.app.call_from_thread(self.weights_ready, weights)

    def weights_ready(self, weights: VoteWeights) -> None:
        self.weights = weights

    def refresh_lesson(self) -> None:
        self.query_one("#vote-caption", Static).update(self.image_caption())
        if self.weights is None:
            return
        weights = self.weights
        self.query_one("#vote-weights", Static).update(
            f"weights: {weights.method}; {weights.epochs} epochs, loss {weights.loss:.3f}, "
            f"{weights.train_accuracy:.0%} of the shipped images right")
        shown = working(vote(self.image.pixels, weights), weights)

        table = Table(box=None, padding=(0, 1), header_style="bold", title_justify="left")
        for heading in ("feature", "value", "w X", "vote X", "w O", "vote O"):
            table.add_column(heading, justify="right")
        per_map = shown.features.size // len(FILTERS)
        for index, value in enumerate(shown.features):
            name = f"{FILTERS[index // per_map].symbol} {index % per_map}"
            table.add_row(name, format_value(value, FEATURE_DECIMALS), format_value(shown.weights[index, 0]),
                          format_value(shown.votes[index, 0]), format_value(shown.weights[index, 1]),
                          format_value(shown.votes[index, 1]))
        table.add_row("bias", "", "", format_value(shown.bias[0]), "", format_value(shown.bias[1]))
        table.add_row("[b]score[/b]", "", "", f"[b]{format_value(shown.scores[0])}[/b]", "",
                      f"[b]{format_value(shown.scores[1])}[/b]")
        self.query_one("#vote-table", Static).update(table)

        everyone = Table(box=None, padding=(0, 1), header_style="bold")
        for heading, justify in (("image", "left"), ("is", "center"), ("votes", "center"), ("P(X)", "right"),
                                 ("", "left")):
            everyone.add_column(heading, justify=justify)
        for index, image in enumerate(self.images):
            each = working(vote(image.pixels, weights), weights)
            mark = "[green]right[/]" if each.prediction == image.label else "[red]wrong[/]"
            # The chosen image is marked "> " as well as reversed, so the row reads without colour.
            name = f"[reverse]> {image.name}[/]" if index == self.image_index else f"  {image.name}"
            if image.source == "yours":
                name += " (yours)"
            everyone.add_row(name, image.label.upper(), each.prediction.upper(),
                             format_percent(each.probabilities[0]), mark)
        self.query_one("#vote-all", Static).update(everyone)

        winner = shown.prediction.upper()
        self.query_one("#vote-result", Static).update(
            f"{self.image.name}: X scores {format_value(shown.scores[0])}, O scores "
            f"{format_value(shown.scores[1])} -> the network says [b]{winner}[/b] "
            f"({format_percent(shown.probabilities.max())}); features from {DEPTH} conv-ReLU-pool layers")
