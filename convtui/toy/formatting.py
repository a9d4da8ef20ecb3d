"""Numbers the way the lecture prints them, shared by the app's NumberGrid and `convtui xo` handouts.

The slides truncate toward zero at two decimals: 7/9 = 0.777... shows as 0.77, 5/9 as 0.55, -1/9 as -0.11.
Plain floats carry error (0.3 may be 0.29999999999999998), so a value is first rounded to 1e-9 and only then
truncated; otherwise 0.3 would print as 0.29.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BLANK = "."  # a cell not computed yet (NaN), e.g. while the filters lesson builds a map cell by cell


def _units(value: float, decimals: int) -> int:
    """The value as a whole count of 10**-decimals, truncated toward zero after rounding away float noise."""
    return math.trunc(round(float(value) * 10 ** decimals, max(0, 9 - decimals)))


def truncate(value: float, decimals: int = 2) -> float:
    """Truncate toward zero at `decimals` places: truncate(7/9) == 0.77, truncate(0.3) == 0.3 (not 0.29)."""
    return _units(value, decimals) / 10 ** decimals


def format_value(value: float, decimals: int = 2) -> str:
    """One cell as the lecture shows it: truncated toward zero, never `-0.00`; NaN shows as a blank mark."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return BLANK
    if math.isinf(value):  # a diverging lesson (backprop with a huge eta) can overflow: say so, do not crash
        return "-inf" if value < 0 else "inf"
    scale = 10 ** decimals
    units = _units(value, decimals)
    sign = "-" if units < 0 else ""
    units = abs(units)
    if decimals == 0:
        return f"{sign}{units}"
    return f"{sign}{units // scale}.{units % scale:0{decimals}d}"


def cell_strings(values, decimals: int = 2) -> list[list[str]]:
    """Every cell of a 2-D array formatted, as rows of strings."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"a grid is 2-D, got shape {array.shape}")
    return [[format_value(v, decimals) for v in row] for row in array]


def cell_width(cells: Sequence[Sequence[str]], minimum: int = 2) -> int:
    """The width every column gets, so that numbers line up right-aligned (at least 2 for `-1`)."""
    return max([minimum] + [len(text) for row in cells for text in row])


def format_grid(values, decimals: int = 2, markdown: bool = False, title: str | None = None) -> str:
    """A grid as plain text (right-aligned columns) or as a markdown table, with an optional title line."""
    cells = cell_strings(values, decimals)
    width = cell_width(cells)
    lines = []
    if markdown:
        if title:
            lines += [f"**{title}**", ""]
        n_cols = len(cells[0]) if cells else 0
        lines.append("|" + "|".join(f" {'':>{width}} " for _ in range(n_cols)) + "|")
        lines.append("|" + "|".join("-" * (width + 1) + ":" for _ in range(n_cols)) + "|")
        lines += ["|" + "|".join(f" {text:>{width}} " for text in row) + "|" for row in cells]
    else:
        if title:
            lines.append(title)
        lines += [" ".join(f"{text:>{width}}" for text in row) for row in cells]
    return "\n".join(lines)


def format_percent(fraction: float, decimals: int = 0) -> str:
    """A probability as a percentage, truncated like every other number: 0.997 -> "99%", never a "100%" that
    is not exactly 1 (the one rounding rule: truncation toward zero, as the slides do)."""
    return f"{format_value(100 * float(fraction), decimals)}%"


def shown(value: float, decimals: int = 2) -> float:
    """The number a learner reads on screen: `value` truncated to `decimals` places."""
    return truncate(value, decimals)


def relation(recomputed: float, result: float, decimals: int = 2) -> str:
    """"=" when a learner who works a formula out from its shown operands (`recomputed`) and truncates it gets
    the shown result, else "≈": the true result was computed at full precision from longer numbers."""
    return "=" if format_value(recomputed, decimals) == format_value(result, decimals) else "≈"
