"""What each preset reaches at full length (all 60,000 training images, its preset's 10 epochs), as measured.

These figures are data, not a promise: `benchmarks/accuracy.py` trained each preset with our own kernels and
printed each one's test accuracy; they are copied below. It now also prints this block itself
(`render_module_entries`) to paste here when it is rerun (the run below started just before it learned to). The
run below took 45 minutes on this 2-core machine under heavy load (2026-11-30 19:07-19:51 UTC, load average
3 to 14), the cnn 42 of them (2,536 s; softmax 1 s, mlp-sigmoid 11 s, mlp-relu 11 s, mlp 6 s):

    python benchmarks/accuracy.py --models softmax mlp-sigmoid mlp-relu mlp cnn --seeds 0 --out /tmp/acc-full

The progression screen shows them beside its class-length run, labelled with `MEASURED_LABEL`.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMAND = ("nice -n 5 python benchmarks/accuracy.py --models softmax mlp-sigmoid mlp-relu mlp cnn --seeds 0 "
           "--out /tmp/acc-full")


@dataclass(frozen=True)
class MeasuredAccuracy:
    """One preset's full-length run: test accuracy (0..1, on all 10,000 test images) after `epochs` epochs."""

    model: str
    test_accuracy: float
    epochs: int
    seed: int
    train_images: int = 60_000
    test_images: int = 10_000


# ---- pasted from the output of: nice -n 5 python benchmarks/accuracy.py --models softmax mlp-sigmoid mlp-relu mlp cnn --seeds 0 --out /tmp/acc-full
MEASURED_ON = "2026-11-30"
MEASURED: dict[str, MeasuredAccuracy] = {
    "softmax": MeasuredAccuracy("softmax", 0.9221, 10, 0),
    "mlp-sigmoid": MeasuredAccuracy("mlp-sigmoid", 0.8588, 10, 0),
    "mlp-relu": MeasuredAccuracy("mlp-relu", 0.9770, 10, 0),
    "mlp": MeasuredAccuracy("mlp", 0.9809, 10, 0),
    "cnn": MeasuredAccuracy("cnn", 0.9936, 10, 0),
}
# ---- end of pasted output

MEASURED_LABEL = f"measured by benchmarks/accuracy.py on {MEASURED_ON}"


def render_module_entries(results: list[MeasuredAccuracy], date: str, command: str) -> str:
    """The block between the "pasted" markers above, for `results` measured on `date` by `command`."""
    lines = [f"# ---- pasted from the output of: {command}", f'MEASURED_ON = "{date}"',
             "MEASURED: dict[str, MeasuredAccuracy] = {"]
    for result in results:
        lines.append(f'    "{result.model}": MeasuredAccuracy("{result.model}", {result.test_accuracy:.4f}, '
                     f"{result.epochs}, {result.seed}"
                     + ("" if result.train_images == 60_000 else f", train_images={result.train_images}")
                     + ("" if result.test_images == 10_000 else f", test_images={result.test_images}") + "),")
    lines += ["}", "# ---- end of pasted output"]
    return "\n".join(lines)
