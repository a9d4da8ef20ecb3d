"""Receptive fields across layers: pick a layer and a cell of its output, see its footprint on the input image.

The maths (layer geometry from the core's layers, the footprint composed layer by layer) is in
`convtui.toy.receptive`; this screen only draws it.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from convtui.toy.receptive import (PRESETS, Footprint, layer_shapes, receptive_field_size, sample_image,
                                   trace)
from convtui.tui.screens.lesson_base import LessonScreen, cursor_bindings, lesson_state
from convtui.tui.widgets.mech_grid import PIXEL_LAYERS, PIXEL_MARKS, PixelMap

LAYER_MAP_WIDTH = 28  # columns the selected layer's map is zoomed to (a 28x28 map is drawn 1:1)


class ReceptiveFieldsScreen(LessonScreen):
    """Trace one neuron of a conv/pool stack back to the input."""

    TITLE = "Receptive fields across layers"
    HELP = ("Each neuron of a deeper layer sees a bigger piece of the image. Pick a layer with ] (deeper) and "
            "[ (shallower), a cell of its output with the arrow keys, and its footprint on the image lights "
            "up (blue, drawn in ░; the cell is ▓); the table lists the rows and columns it covers on every level in between. Near the "
            "edges part of the field is zero padding, so the footprint is clipped: compare 'size' with 'field' "
            "(the unclipped side). m switches between stacks; the first is the lecture's MNIST CNN (conv 5x5 "
            "SAME, pool 2, conv 5x5 SAME, pool 2).")
    BINDINGS = [
        Binding("right_square_bracket", "layer(1)", "layer", key_display="[ ]", tooltip="deeper layer"),
        Binding("left_square_bracket", "layer(-1)", "shallower layer", key_display="[", show=False),
        *cursor_bindings("cell", show=True),
        Binding("c", "centre", "centre"),
        Binding("m", "next_stack", "stack"),
    ]

    stack_index = lesson_state(0)
    depth = lesson_state(len(PRESETS[0].layers))  # start at the deepest layer: the biggest footprint
    cell = lesson_state((0, 0))  # (row, column) on the selected layer's output

    def __init__(self) -> None:
        super().__init__()
        self.footprints: list[Footprint] = []  # of `cell`, worked out as the lesson is drawn
        self.image = sample_image(self.model_stack)  # an MNIST digit (or the X) under the footprint
        self.action_centre()

    @property
    def model_stack(self):
        return PRESETS[self.stack_index]

    def compose_lesson(self) -> ComposeResult:
        with Horizontal(classes="panel-row"):
            yield PixelMap(id="rf-input", classes="panel")
            yield PixelMap(id="rf-layer", classes="panel")
            yield Static(id="rf-legend", classes="caption")
        yield Static(id="rf-table", classes="explanation")

    # ---------------------------------------------------------------- keys
    def action_layer(self, delta: int) -> None:
        shapes = layer_shapes(self.model_stack)
        old = shapes[self.depth][1:]
        self.depth = min(max(self.depth + delta, 1), len(self.model_stack.layers))
        new = shapes[self.depth][1:]
        # Keep roughly the same place in the image when the map changes size.
        self.cell = tuple(min(c * n // o, n - 1) for c, o, n in zip(self.cell, old, new))

    def action_move(self, di: int, dj: int) -> None:
        _, height, width = layer_shapes(self.model_stack)[self.depth]
        self.cell = (min(max(self.cell[0] + di, 0), height - 1), min(max(self.cell[1] + dj, 0), width - 1))

    def action_centre(self) -> None:
        _, height, width = layer_shapes(self.model_stack)[self.depth]
        self.cell = ((height - 1) // 2, (width - 1) // 2)

    def action_next_stack(self) -> None:
        self.stack_index = (self.stack_index + 1) % len(PRESETS)
        self.image = sample_image(self.model_stack)
        self.depth = len(self.model_stack.layers)
        self.action_centre()

    # ---------------------------------------------------------------- drawing
    def refresh_lesson(self) -> None:
        stack, layer = self.model_stack, self.depth
        shapes = layer_shapes(stack)
        self.footprints = trace(stack, layer, *self.cell)
        image = self.footprints[-1]
        channels, height, width = shapes[layer]
        field = receptive_field_size(stack, layer)
        # The layer's label gets a line of its own: next to "layer 1:" it outgrew the column ("… s1 SAM").
        legend = Text.from_markup(
            f"[b]{stack.name}[/b]\nlayer {layer}:\n{stack.layers[layer - 1].label()}\n"
            f"output {height}x{width}x{channels}\ncell (i, j) = [b]{self.cell}[/b]\n"
            f"footprint [b]{image.size[0]}x{image.size[1]}[/b] of a\n{field}x{field} field\n\n")
        for name, caption in (("footprint", " footprint  "), ("cursor", " cell")):
            legend.append(PIXEL_MARKS[name] * 2, style=f"color({PIXEL_LAYERS[name][0]})")
            legend.append(caption)
        self.query_one("#rf-legend", Static).update(legend)

        layer_map = self.query_one("#rf-layer", PixelMap)
        layer_map.shape = (height, width)
        # Small maps are zoomed to about 28 columns, so a 7x7 or 1x1 output stays readable.
        layer_map.zoom = max(1, LAYER_MAP_WIDTH // max(height, width))
        layer_map.clear()
        layer_map.paint("cursor", *self.cell, *self.cell)
        layer_map.border_title = f"layer {layer} {height}x{width}"
        layer_map.border_subtitle = f"cell {self.cell}"

        legend_width = max(line.cell_len for line in legend.split("\n"))
        input_map = self.query_one("#rf-input", PixelMap)
        input_map.shape = (stack.input_size, stack.input_size)
        input_map.zoom = self.input_zoom(width * layer_map.zoom, legend_width)
        input_map.clear()
        input_map.set_image(self.image)
        input_map.paint("footprint", image.rows[0], image.cols[0], image.rows[1], image.cols[1])
        input_map.border_title = f"input {stack.input_size}x{stack.input_size}"
        input_map.border_subtitle = f"{image.size[0]}x{image.size[1]}"
        self.query_one("#rf-table", Static).update(self.table_text(shapes))

    def input_zoom(self, layer_width: int, legend_width: int) -> int:
        """The largest zoom at which both maps, the legend and the table fit the terminal (at least 1). How big
        to draw the image is content, not layout: CSS cannot scale a widget's pixels, so it is computed here.
        Beside the maps' pixels a row takes 2 (body padding) + 3 per map (border, margin) + 2 (legend padding)."""
        size = self.model_stack.input_size
        width, height = max(self.size.width, 80), max(self.size.height, 24)
        levels = len(self.footprints) + 1  # table lines, with its header
        for zoom in range(max(1, 56 // size), 1, -1):
            pixels = size * zoom
            fits_across = 2 + pixels + 3 + layer_width + 3 + 2 + legend_width <= width
            if fits_across and (pixels + 1) // 2 + 2 + levels + 3 <= height:
                return zoom
        return 1

    def table_text(self, shapes) -> str:
        """One line per level, from the selected layer down to the image: rows, columns, size, field."""
        lines = [f"[b]{'level':<6}{'layer':<22}{'shape':<11}{'rows':<8}{'columns':<9}{'size':<7}field[/b]"]
        for fp in self.footprints:
            label = "input" if fp.level == 0 else self.model_stack.layers[fp.level - 1].label()
            c, h, w = shapes[fp.level]
            rows = f"{fp.rows[0]}..{fp.rows[1]}"
            cols = f"{fp.cols[0]}..{fp.cols[1]}"
            lines.append(f"{fp.level:<6}{label:<22}{f'{h}x{w}x{c}':<11}{rows:<8}{cols:<9}"
                         f"{f'{fp.size[0]}x{fp.size[1]}':<7}{fp.reach}")
        return "\n".join(lines)
