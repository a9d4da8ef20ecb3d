"""The invariance lesson's texts: the parameter counts ("does not scale" in numbers), the models line and the
verdict panel. Plain functions of what the core measured, so the screen only places them."""

from __future__ import annotations

from rich.markup import escape

from convtui.core.nn.architectures import build_from_architecture, preset_architecture
from convtui.core.training import invariance as inv

# The lecture's words ("Vanilla Deep Neural Networks Challenges (1/2)"), quoted as the slide has them.
LECTURE_QUOTE = '"Vanilla deep neural networks do not scale ... 28 × 28 = 784 weights."'
LABEL_WIDTH = 30  # with 11 for the number: 41 of the panel's 42 columns


def preset_model(name: str):
    """A preset's model with zero weights: enough for counting parameters before any run is loaded."""
    return build_from_architecture(preset_architecture(name), init_weights=False)


def _row(label: str, count: int, note: str = "") -> str:
    return f"{label:<{LABEL_WIDTH}}{count:>11,}{note}"


def parameter_text(mlp, cnn, source: str) -> str:
    """The "does not scale" panel: the mlp's first dense layer, the cnn's shared conv weights, and the dense
    layer that would make conv1's whole feature map; then the totals, honestly (the cnn has more in all, in its
    dense layer). `source` says whose architectures these are ("the loaded runs", "the presets")."""
    lines = [LECTURE_QUOTE, f"weights + biases in {source}:"]
    mlp_counts, cnn_counts = inv.parameter_counts(mlp), inv.parameter_counts(cnn)
    first_dense = mlp_counts[0]
    lines.append(_row(f"mlp {first_dense.name} {first_dense.description.removeprefix('dense ')}",
                      first_dense.total))
    convs = [count for count in cnn_counts if count.description.startswith("conv")]
    for count in convs:
        shape = count.description.removeprefix("conv ").removesuffix(" (shared)")
        lines.append(_row(f"cnn {count.name} {shape} shared", count.total))
    dense = inv.dense_equivalent_of_first_conv(cnn)
    if dense is not None and convs:
        lines.append(_row(dense.description, dense.total))
        lines.append(f"  {dense.total / convs[0].total:,.0f} times conv1, for the same map")
    biggest = max(cnn_counts, key=lambda c: c.total)
    lines += [f"whole mlp {sum(c.total for c in mlp_counts):,}; whole cnn {sum(c.total for c in cnn_counts):,},",
              f"most in its {biggest.description} ({biggest.name})"]
    return "\n".join(lines)


def model_line(role: str, run, index: int, count: int) -> str:
    """'mlp: runs/x (mlp, 10 epochs, test 97.91%) [1 of 3]' or what to do when there is none."""
    if run is None:
        return f"{role}: none in runs/ (t trains one here)"
    accuracy = run.final("val_accuracy")
    measured = f", test {accuracy * 100:.2f}%" if accuracy is not None else ""
    return escape(f"{role}: {run.path} ({run.model_name}, {run.trained()}{measured}) [{index + 1} of {count}]")


def verdict_text(kind: str, curves: dict[str, dict[float, float]], digits: int, pending: bool) -> str:
    """The verdict panel: what the measured curves say (invariance.verdict), and how much is still measured."""
    spec = inv.SWEEPS[kind]
    done = min((len(points) for points in curves.values()), default=0)
    lines = inv.verdict(kind, curves)
    if pending:
        lines.append(f"measuring {kind} on {digits:,} test digits: {done} of {len(spec.amounts)} amounts done")
    elif not lines:
        lines.append("no measurements yet")
    return "\n".join(lines)


def accuracy_at(curves: dict[str, dict[float, float]], amount: float) -> str:
    """'here: mlp 61%  cnn 88%' for the shown amount, once measured."""
    parts = [f"{name} {inv.percent(points[amount])}" for name, points in curves.items() if amount in points]
    return ("test accuracy here: " + "  ".join(parts)) if parts else "test accuracy here: measuring"
