"""Lesson: deep stacking. conv -> ReLU -> pool, again and again; shapes and values at every stage."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Static

from convtui.toy.xo import FILTERS, stack
from convtui.tui.screens.lesson_base import lesson_state
from convtui.tui.screens.xo_base import XOLessonScreen
from convtui.tui.widgets.grid import NumberGrid

MAX_DEPTH = 3


class StackingScreen(XOLessonScreen):
    """left/right walk through the stages; d changes how many conv-ReLU-pool layers are stacked."""

    TITLE = "Deep stacking"
    INTRO = ("Layers get stacked: the output of one becomes the input of the next. Each pass through "
             "conv, ReLU and pool makes the maps smaller and more about features than pixels.")
    HELP = ("The toy net (the same one the receptive-fields lesson traces and the vote uses): layer 1 runs the "
            "three 3x3 filters over the image (VALID, 9x9 -> 7x7). Each later layer is a conv like the Channels "
            "lesson's: filter k is 3x3x3, one slice per input map, and its output cell is the sum over all three "
            "maps, divided by 9. Its slice on map k is filter k again and its slices on the other maps are zero, "
            "so it looks for the same stroke at a coarser scale. Zero padding keeps the size (SAME), then ReLU "
            "and 2x2 pooling (partial windows kept). At depth 2 that ends in 3 maps of 2x2: the 12 numbers the "
            "vote lesson flattens. left/right choose the stage, d the depth, t max or mean pooling.")
    BINDINGS = XOLessonScreen.IMAGE_BINDINGS + [
        Binding("left", "stage(-1)", "Stage back", key_display="←"),
        Binding("right", "stage(1)", "Stage on", key_display="→"),
        Binding("d", "depth", "Depth"),
        Binding("t", "toggle_mode", "Max/mean"),
    ]

    depth = lesson_state(2)
    stage_index = lesson_state(1)
    mode = lesson_state("max")

    def validate_stage_index(self, index: int) -> int:
        return min(max(index, 0), 3 * self.depth)  # the image, then conv, ReLU and pool per layer

    def watch_depth(self) -> None:
        self.stage_index = self.stage_index  # fewer layers: the stage shown may no longer exist

    def compose_lesson(self) -> ComposeResult:
        yield Static(id="stacking-caption", classes="status")
        yield Static(id="stacking-pipeline", classes="status")
        with Container(id="stacking-maps", classes="pair"):
            for k in range(len(FILTERS)):
                yield NumberGrid(id=f"stacking-map-{k}", classes="panel")
        yield Static(id="stacking-status", classes="status")

    def refresh_lesson(self) -> None:
        stages = stack(self.image.pixels, self.depth, self.mode)
        stage = stages[self.stage_index]
        self.query_one("#stacking-caption", Static).update(self.image_caption())
        steps = []
        for index, each in enumerate(stages):
            shape = "x".join(str(n) for n in each.maps.shape)
            text = f"{each.name} {shape}"
            # The current stage is marked in text as well as in reverse video, so it reads without colour.
            steps.append(f"[reverse b]>{text}<[/]" if index == self.stage_index else text)
        self.query_one("#stacking-pipeline", Static).update(" -> ".join(steps))
        for k in range(len(FILTERS)):
            grid = self.query_one(f"#stacking-map-{k}", NumberGrid)
            grid.display = k < stage.maps.shape[0]
            if grid.display:
                is_image = stage.name == "image"
                grid.palette = "pixels" if is_image else "signed"
                grid.set_values(stage.maps[k], decimals=0 if is_image else 2)
                grid.border_title = "image" if is_image else f"{FILTERS[k].symbol} {stage.name}"
        channels, height, width = stage.maps.shape
        # Side by side when the maps fit across the terminal, else one under another.
        grid_width = self.query_one("#stacking-map-0", NumberGrid).get_content_width(None, None) + 3
        maps = self.query_one("#stacking-maps", Container)
        maps.styles.layout = "horizontal" if channels * grid_width <= self.size.width - 4 else "vertical"
        self.query_one("#stacking-status", Static).update(
            f"stage {self.stage_index} of {len(stages) - 1}: {stage.name}, {channels} map(s) of {height}x{width} "
            f"= {stage.maps.size} numbers; depth {self.depth}, {self.mode} pooling")

    def action_stage(self, step: int) -> None:
        self.stage_index += step

    def action_depth(self) -> None:
        self.depth = self.depth % MAX_DEPTH + 1

    def action_toggle_mode(self) -> None:
        self.mode = "mean" if self.mode == "max" else "max"
