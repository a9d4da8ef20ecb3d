"""Padding and stride explorer: pick n, f, s and the padding by keys; see the padded input, the output-size
formula with numbers, TensorFlow's SAME rule, and one output neuron's receptive field on the input.

All maths is in `convtui.toy.padding` (the core's shape helpers and conv kernel); this screen only displays it.
"""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from convtui.toy.padding import (LECTURE_EXAMPLE, PaddingReport, PaddingSetup, explain, padded_input,
                                 receptive_field, sample_input, view_window, window_sums)
from convtui.tui.screens.lesson_base import LessonScreen, cursor_bindings, lesson_state
from convtui.tui.widgets.mech_grid import IndexedGrid

EXPLAIN_LINES = 7  # lines under the grids; the grids get what is left of the screen


class PaddingScreen(LessonScreen):
    """The padding and stride explorer."""

    TITLE = "Padding and stride"
    HELP = ("A filter f x f slides over an n x n input with stride s. Zero padding (grey 0s) keeps the size: "
            "VALID adds none, SAME adds what TensorFlow adds (the odd pixel goes after), or choose p yourself.\n"
            "out = (n + 2p - f) // s + 1. Arrow keys pick an output neuron (marked >like this<); its receptive "
            "field, rows i*s .. i*s + f - 1 of the padded input, is shown in [brackets]. The output grid holds what the core's conv "
            "kernel computes with an all-ones filter: the sum of each window. Press l for the lecture's example "
            "(5x5 filter on 32x32: 28x28 VALID, 32x32 SAME). A grid too big for the screen shows a part: its "
            "title then gives the rows x columns shown (\"0..9 x 0..9\") where they fit, and its labels always "
            "do; the view follows the neuron.")
    BINDINGS = [
        Binding("n", "adjust('n', 1)", "n±", key_display="n/N", tooltip="input size n + 1"),
        Binding("N", "adjust('n', -1)", "input size n - 1", show=False),
        Binding("f", "adjust('f', 1)", "f±", key_display="f/F", tooltip="filter size f + 1"),
        Binding("F", "adjust('f', -1)", "filter size f - 1", show=False),
        Binding("s", "adjust('s', 1)", "s±", key_display="s/S", tooltip="stride s + 1"),
        Binding("S", "adjust('s', -1)", "stride s - 1", show=False),
        Binding("m", "next_mode", "mode"),
        Binding("p", "adjust('p', 1)", "p±", key_display="p/P", tooltip="explicit padding p + 1"),
        Binding("P", "adjust('p', -1)", "explicit padding p - 1", show=False),
        Binding("l", "lecture", "lecture"),
    ] + cursor_bindings("neuron", show=True)

    setup: PaddingSetup = lesson_state(PaddingSetup)
    neuron = lesson_state((0, 0))  # (row, column) of the output neuron whose receptive field is shown

    @property
    def report(self) -> PaddingReport:
        return explain(self.setup)

    def validate_neuron(self, neuron: tuple[int, int]) -> tuple[int, int]:
        last = max(self.report.out - 1, 0)
        return min(max(neuron[0], 0), last), min(max(neuron[1], 0), last)

    def watch_setup(self) -> None:
        self.neuron = self.neuron  # a smaller output: keep the neuron on it

    def compose_lesson(self) -> ComposeResult:
        yield Static(id="pad-settings", classes="status")
        with Horizontal(classes="panel-row"):
            yield IndexedGrid(id="pad-input", classes="panel")
            yield IndexedGrid(id="pad-output", classes="panel")
        yield Static(id="pad-explain", classes="explanation")

    # ---------------------------------------------------------------- keys
    def action_adjust(self, field: str, delta: int) -> None:
        self.setup = self.setup.adjusted(field, delta)

    def action_next_mode(self) -> None:
        self.setup = self.setup.next_mode()

    def action_lecture(self) -> None:
        """Jump to the lecture's 5x5 filter on 32x32; pressed again, flip between VALID and SAME."""
        at_example = all(getattr(self.setup, key) == value for key, value in LECTURE_EXAMPLE.items())
        mode = "same" if at_example and self.setup.mode == "valid" else "valid"
        self.setup = PaddingSetup(**LECTURE_EXAMPLE, mode=mode, p=self.setup.p)

    def action_move(self, di: int, dj: int) -> None:
        self.neuron = (self.neuron[0] + di, self.neuron[1] + dj)  # validate_neuron keeps it on the output

    # ---------------------------------------------------------------- drawing
    def view_sizes(self, report: PaddingReport, out_cell: int) -> tuple[int, int, int]:
        """How many input cells (square window), output rows and output columns fit on the screen now. This is
        which part of the arrays to show (a 64x64 input on 80x24), not layout, so it is computed here."""
        width = max(self.size.width, 80) - 4
        height = max(self.size.height, 24) - 2 - 1 - EXPLAIN_LINES - 3  # header+footer, settings, text, frame
        out_cols = max(1, min(report.out, 8, (width // 3) // out_cell))
        out_width = max(out_cols * out_cell + 5, 25)  # min-width 24 in convtui.tcss, plus the margin
        in_cols = max(1, (width - out_width - 6) // 4)
        return max(1, min(in_cols, height)), max(1, height), out_cols

    def refresh_lesson(self) -> None:
        setup, report = self.setup, self.report
        out = report.out
        i, j = self.neuron
        x = sample_input(setup.n)
        padded = padded_input(x, report.pad_before, report.pad_after)
        sums = window_sums(x, setup) if out else np.full((1, 1), np.nan)
        out_cell = max(2, len(str(int(np.nanmax(sums)))) if out else 2) + 2
        in_size, out_rows, out_cols = self.view_sizes(report, out_cell)
        rows, cols = receptive_field(i, j, setup.f, setup.s)

        # The input: a window that follows the receptive field, so large n stays usable on a small terminal.
        r0, r1 = view_window(report.padded, in_size, rows.start, min(rows.stop, report.padded))
        c0, c1 = view_window(report.padded, in_size, cols.start, min(cols.stop, report.padded))
        grid = self.query_one("#pad-input", IndexedGrid)
        grid.set_window(padded[r0:r1, c0:c1], r0, c0)
        grid.clear_highlights()
        if out:
            grid.highlight_rect("field", rows.start - r0, cols.start - c0, rows.stop - 1 - r0, cols.stop - 1 - c0)
        grid.border_title = grid.window_title(("padded input", "input"), report.padded, report.padded)
        grid.border_subtitle = "grey 0 = padding" if report.pad_before or report.pad_after else "no padding"

        # The output: the kernel's window sums, the selected neuron under the cursor.
        output = self.query_one("#pad-output", IndexedGrid)
        o_r0, o_r1 = view_window(max(out, 1), out_rows, i, i + 1)
        o_c0, o_c1 = view_window(max(out, 1), out_cols, j, j + 1)
        output.set_window(sums[o_r0:o_r1, o_c0:o_c1], o_r0, o_c0)
        output.cursor = (i - o_r0, j - o_c0) if out else None
        output.border_title = output.window_title(("output", "out"), out, out) if out else "no output"
        output.border_subtitle = "window sums"

        self.query_one("#pad-settings", Static).update(self.settings_line(report))
        self.query_one("#pad-explain", Static).update(self.explain_text(report, sums))

    def settings_line(self, report: PaddingReport) -> str:
        setup = self.setup
        if setup.mode == "explicit":
            padding = f"explicit p = {setup.p}"
        elif setup.mode == "same":
            padding = f"SAME ({report.pad_before} before, {report.pad_after} after)"
        else:
            padding = "VALID (p = 0)"
        return (f"n = [b]{setup.n}[/b]   f = [b]{setup.f}[/b]   s = [b]{setup.s}[/b]   padding [b]{padding}[/b]"
                f"   neuron [b]{self.neuron}[/b]")

    def explain_text(self, report: PaddingReport, sums: np.ndarray) -> str:
        setup, rule = self.setup, report.same_rule
        n, f, s = setup.n, setup.f, setup.s
        lines = [f"out = {report.formula}"]
        if report.error:
            lines.append(f"[red]{report.error}[/red]")
        lines.append(f"SAME (TensorFlow): out = ceil(n/s) = ceil({n}/{s}) = {rule.out}")
        lines.append(f"  pad_total = max((out-1)*s + f - n, 0) = max({rule.out - 1}*{s} + {f} - {n}, 0)"
                     f" = {rule.total}")
        lines.append(f"  before = total // 2 = {rule.before} (top, left), after = the rest = {rule.after}"
                     " (bottom, right)")
        if report.out:
            i, j = self.neuron
            rows, cols = receptive_field(i, j, f, s)
            lines.append(f"neuron ({i}, {j}) reads padded rows i*s .. i*s+f-1 = [b]{rows.start}..{rows.stop - 1}[/b],"
                         f" columns [b]{cols.start}..{cols.stop - 1}[/b]")
            lines.append(f"  conv2d_forward, all-ones filter: [b]{int(sums[i, j])}[/b]"
                         " = sum of the \\[bracketed] cells")
            if report.unused:
                lines.append(f"[yellow]stride {s} leaves the last {report.unused} padded row(s) and column(s) "
                             "unread[/yellow]")
        return "\n".join(lines)
