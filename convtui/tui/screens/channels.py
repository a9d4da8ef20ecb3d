"""Stacking multiple feature maps: the lecture's 7x7x3 input, two 3x3x3 filters, stride 2 -> 3x3x2, cell by cell.

For the selected output cell, each channel row shows the padded input slice with the window in [brackets], the
3x3 patch, the filter's slice, their element-wise products and the channel's sum; the output volume and the
total (sums + bias) sit beside them, checked against the core's `conv2d_forward`. The maths is in
`convtui.toy.channels`. Where a row has no room for a full 7x7 slice beside its patch (below 110 columns or 36
rows), the three slices sit side by side, compact, under the rows instead (convtui.tcss): never dropped.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from convtui.toy.channels import (CHANNELS, DEFAULT_SEED, FILTERS, CellWork, ChannelsExample, cell_order,
                                  cell_work, make_example, output_size)
from convtui.toy.formatting import format_value
from convtui.tui.screens.lesson_base import LessonScreen, cursor_bindings, lesson_state
from convtui.tui.widgets.grid import NumberGrid
from convtui.tui.widgets.mech_grid import IndexedGrid


def signed(value: float) -> str:
    """A term in a sum: negatives in brackets, so `3 + (-2)` reads like the board."""
    text = format_value(value, 0)
    return f"({text})" if value < 0 else text


class ChannelsScreen(LessonScreen):
    """The lecture's "one more example", worked output cell by output cell."""

    TITLE = "Multiple feature maps (channels)"
    HELP = ("One more example from the lecture: a conv layer computing 2 feature maps with 3x3 filters and stride "
            "2, on an input of shape [7, 7, 3] (a 5x5x3 volume with one ring of zero padding), giving [3, 3, 2]. "
            "A filter has one 3x3 slice per input channel. For an output cell, each channel's slice of the input "
            "window is multiplied by the filter's slice and summed; the three channel sums plus the filter's "
            "bias give the cell. The total is checked against the core's conv kernel. Numbers come from a fixed "
            "seed: r rolls new ones, 0 goes back.")
    BINDINGS = [
        Binding("n", "step(1)", "next cell", key_display="n/N"),
        Binding("N", "step(-1)", "previous cell", show=False),
        *cursor_bindings("cell", show=True),
        Binding("f", "next_filter", "filter"),
        Binding("r", "reroll", "re-roll"),
        Binding("0", "reset", "seed 0", show=False),
    ]

    seed = lesson_state(DEFAULT_SEED)
    position = lesson_state((0, 0, 0))  # (filter k, row i, column j) of the output cell

    @property
    def example(self) -> ChannelsExample:
        """The numbers of the current seed (made once per seed: they go through the core's conv kernel)."""
        if self._example is None or self._example.seed != self.seed:
            self._example = make_example(self.seed)
        return self._example

    def __init__(self) -> None:
        super().__init__()
        self._example: ChannelsExample | None = None

    def compose_lesson(self) -> ComposeResult:
        yield Static(id="ch-status", classes="status")
        with Horizontal(classes="panel-row"):
            with Vertical(id="ch-rows"):
                for c in range(CHANNELS):
                    with Horizontal(classes="ch-row"):
                        yield IndexedGrid(id=f"ch-input-{c}", classes="panel ch-full")
                        yield NumberGrid(decimals=0, id=f"ch-patch-{c}", classes="panel")
                        yield NumberGrid(decimals=0, id=f"ch-weights-{c}", classes="panel")
                        yield NumberGrid(decimals=0, id=f"ch-products-{c}", classes="panel")
                        yield Static(id=f"ch-sum-{c}", classes="caption")
            with Vertical(id="ch-outputs"):
                for k in range(FILTERS):
                    yield NumberGrid(decimals=0, id=f"ch-output-{k}", classes="panel")
                yield Static(id="ch-bias", classes="caption")
        with Horizontal(id="ch-slices", classes="panel-row"):
            for c in range(CHANNELS):  # one-character cells: three slices fit 80 columns beside a scrollbar
                yield NumberGrid(decimals=0, min_cell_width=1, id=f"ch-slice-{c}", classes="panel")

    # ---------------------------------------------------------------- keys
    def action_step(self, delta: int) -> None:
        order = cell_order()
        self.position = order[(order.index(self.position) + delta) % len(order)]

    def action_move(self, di: int, dj: int) -> None:
        k, i, j = self.position
        n = output_size()
        self.position = (k, min(max(i + di, 0), n - 1), min(max(j + dj, 0), n - 1))

    def action_next_filter(self) -> None:
        k, i, j = self.position
        self.position = ((k + 1) % FILTERS, i, j)

    def action_reroll(self) -> None:
        self.seed += 1

    def action_reset(self) -> None:
        self.seed = DEFAULT_SEED

    # ---------------------------------------------------------------- drawing
    def refresh_lesson(self) -> None:
        ex = self.example
        k, i, j = self.position
        work = cell_work(ex, k, i, j)
        rows, cols = work.rows, work.cols
        for c in range(CHANNELS):
            full = self.query_one(f"#ch-input-{c}", IndexedGrid)
            full.set_window(ex.x_padded[c], 0, 0)
            full.highlight_rect("window", rows.start, cols.start, rows.stop - 1, cols.stop - 1)
            full.border_title = f"x[:,:,{c}] padded"
            compact = self.query_one(f"#ch-slice-{c}", NumberGrid)
            compact.set_values(ex.x_padded[c])
            compact.highlight_rect("window", rows.start, cols.start, rows.stop - 1, cols.stop - 1)
            compact.border_title = f"x[:,:,{c}] padded"
            patch = self.query_one(f"#ch-patch-{c}", NumberGrid)
            patch.set_values(work.patch[c])
            patch.border_title = f"patch c{c}"
            weights = self.query_one(f"#ch-weights-{c}", NumberGrid)
            weights.set_values(work.weights[c])
            weights.border_title = f"w{k} c{c}"
            products = self.query_one(f"#ch-products-{c}", NumberGrid)
            products.set_values(work.products[c])
            products.border_title = "x * w"
            self.query_one(f"#ch-sum-{c}", Static).update(
                f"\n\nchannel {c}\nsum = [b]{format_value(work.channel_sums[c], 0)}[/b]")
        for kk in range(FILTERS):
            out = self.query_one(f"#ch-output-{kk}", NumberGrid)
            out.set_values(ex.y[kk])
            out.cursor = (i, j) if kk == k else None
            out.border_title = f"o[:,:,{kk}]"
        self.query_one("#ch-bias", Static).update(
            "\n".join(f"b{kk} = {format_value(ex.b[kk], 0)}" for kk in range(FILTERS)) + f"\nseed {self.seed}")
        self.query_one("#ch-status", Static).update(self.status_text(work))

    def status_text(self, work: CellWork) -> str:
        sums = " + ".join(signed(s) for s in work.channel_sums)
        check = "= conv2d_forward" if work.total == work.kernel_value else "!= conv2d_forward"
        n = output_size()
        return (f"[b]o[{work.i},{work.j},{work.k}][/b] (of {n}x{n}x{FILTERS}) = filter w{work.k} on padded rows "
                f"{work.rows.start}..{work.rows.stop - 1}, columns {work.cols.start}..{work.cols.stop - 1}\n"
                f"sum over channels {sums} + bias {signed(work.bias)} = [b]{format_value(work.total, 0)}[/b]  "
                f"{check} {format_value(work.kernel_value, 0)}")
