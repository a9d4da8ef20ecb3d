"""Invariance benchmark: an mlp and a cnn on shifted, rotated and scaled test digits (issue 13, "why convolutions").

    python benchmarks/invariance.py --mlp /tmp/acc-full/mlp-seed0 --cnn /tmp/acc-full/cnn-seed0
    python benchmarks/invariance.py --runs runs --digits 10000     # the best runs under runs/, all test digits
    python benchmarks/invariance.py --mlp A --cnn B --digits 200 --kinds shift   # a quick look

Prints, for each run, what it is (model, epochs, test accuracy from its metrics); the parameter counts of the
lecture's "do not scale" slide, read from the models' own architectures; then for each transform the test
accuracy at every amount of the sweep the app's invariance lesson uses, side by side, and the lesson's verdict
on those numbers. Accuracy is on the first --digits test digits (1,000 by default, as the app).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from convtui import runtime  # noqa: E402  (imports no numpy: `configure` must run before numpy loads)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlp", help="mlp-family run folder or checkpoint (default: the best under --runs)")
    parser.add_argument("--cnn", help="cnn run folder or checkpoint (default: the best under --runs)")
    parser.add_argument("--runs", default="runs", help="where to look for runs when --mlp/--cnn are not given")
    parser.add_argument("--digits", type=int, default=1000, help="test digits per point (default 1000)")
    parser.add_argument("--kinds", nargs="+", default=["shift", "rotate", "scale"],
                        choices=["shift", "rotate", "scale"])
    parser.add_argument("--threads", type=int, default=None, help="numeric threads (default: all cores)")
    return parser.parse_args(argv)


def pick_run(path: str | None, role: str, runs_root: str):
    from convtui.core.storage.run_folder import read_run
    from convtui.core.training import invariance as inv

    if path is not None:
        return read_run(path)
    models = inv.MLP_MODELS if role == "mlp" else inv.CNN_MODELS
    found = inv.run_candidates(inv.read_runs(runs_root), models)
    if not found:
        raise SystemExit(f"no {role} run with a checkpoint under {runs_root}/: give --{role}")
    return found[0]


def main(argv=None) -> int:
    args = parse_args(argv)
    runtime.configure(args.threads)
    from convtui.core.storage.checkpoint import load_model
    from convtui.core.storage.datasets import load_split, to_float
    from convtui.core.training import invariance as inv

    runs = {role: pick_run(getattr(args, role), role, args.runs) for role in ("mlp", "cnn")}
    models = {}
    for role, run in runs.items():
        if run.checkpoint is None:
            raise SystemExit(f"{run.path} has no checkpoint")
        models[role], _ = load_model(run.checkpoint)
        accuracy = run.final("val_accuracy")
        measured = f", test {accuracy * 100:.2f}% on 10,000" if accuracy is not None else ""
        print(f"{role}: {run.path} ({run.model_name}, {run.trained()}{measured})")

    print("\nparameters (weights + biases), from the architectures:")
    for role, model in models.items():
        for count in inv.parameter_counts(model):
            print(f"  {role} {count.name:<8} {count.description:<30} {count.total:>12,}")
        print(f"  {role} in all{'':<34} {sum(c.total for c in inv.parameter_counts(model)):>12,}")
    dense = inv.dense_equivalent_of_first_conv(models["cnn"])
    conv1 = inv.parameter_counts(models["cnn"])[0]
    print(f"  a dense layer instead of {conv1.name}: {dense.description} = {dense.total:,} "
          f"({dense.total / conv1.total:,.0f} times {conv1.name}'s {conv1.total:,})")

    data = load_split("test", limit=args.digits)
    images = to_float(data.images)
    print(f"\ntest accuracy on the first {len(data):,} test digits:")
    for kind in args.kinds:
        spec, curves, started = inv.SWEEPS[kind], {}, time.perf_counter()
        for role, model in models.items():
            curves[role] = dict(inv.sweep(model, images, data.labels, kind))
        print(f"\n{spec.unit:<22}{'mlp':>8}{'cnn':>8}")
        for amount in spec.amounts:
            print(f"{spec.describe(amount):<22}{curves['mlp'][amount] * 100:>7.1f}%{curves['cnn'][amount] * 100:>7.1f}%")
        for line in inv.verdict(kind, curves):
            print(f"  {line}")
        print(f"  ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
