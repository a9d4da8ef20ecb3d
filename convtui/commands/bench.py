"""`convtui bench`: steady-state training and inference throughput of a model preset on convtui's kernels.

    convtui bench [--model NAME] [--batch-size B] [--steps N] [--warmup N] [--threads T] [--no-compile] [--json]

numpy and the core are imported inside `run()`, after --threads has set the thread environment variables,
because OpenBLAS reads them once, when numpy loads.
"""

from __future__ import annotations

import json

from convtui.core.errors import EXIT_ERROR, EXIT_OK, UsageError
from convtui import runtime
from convtui.commands.flags import check_flag
from convtui.core.training.config import MODELS

DEFAULTS = {"batch_size": 100, "steps": 50, "warmup": 10}


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "bench", help="measure training and inference images/s of a model preset",
        description="Time a model preset on convtui's kernels: steady-state training (Adam) and inference "
                    "images/s on real MNIST batches, the FLOP rate against this machine's float32 GEMM peak, "
                    "the kernels' cold and cached compile times, and peak memory.")
    parser.add_argument("--model", default="cnn", help=f"model preset: {', '.join(MODELS)} (default: cnn)")
    # Numbers are taken as text and checked in run(), so a bad value is one line on stderr and exit 2.
    parser.add_argument("--batch-size", metavar="B", help=f"images per step (default: {DEFAULTS['batch_size']})")
    parser.add_argument("--steps", metavar="N", help=f"timed steps (default: {DEFAULTS['steps']})")
    parser.add_argument("--warmup", metavar="N", help=f"untimed steps first (default: {DEFAULTS['warmup']})")
    parser.add_argument("--threads", metavar="T", help="numeric threads, BLAS and Numba (default: all cores)")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="skip the compile-time probe (two fresh processes, the first with an empty cache)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _count(args, name, minimum):
    text = getattr(args, name)
    if text is None:
        return DEFAULTS.get(name)
    flag = "--" + name.replace("_", "-")
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{flag} {text} is invalid: expected a whole number >= {minimum}") from None
    if value < minimum:
        raise UsageError(f"{flag} {text} is invalid: expected a whole number >= {minimum}")
    return value


def parse(args) -> dict:
    """Checked options from the flags; raises UsageError for a bad value."""
    if args.model not in MODELS:
        raise UsageError(f"--model {args.model} is invalid: choose one of {', '.join(MODELS)}")
    batch_size = check_flag("batch_size", _count(args, "batch_size", 1))  # train's range: memory stays bounded
    return {"model_name": args.model, "batch_size": batch_size, "steps": _count(args, "steps", 1),
            "warmup": _count(args, "warmup", 0), "threads": check_flag("threads", _count(args, "threads", 1)),
            "compile_times": args.compile}


def format_table(r: dict) -> str:
    """The result as a few aligned lines a person can read at a glance."""
    lines = [
        f"convtui bench: {r['model']}, batch {r['batch_size']}, {r['steps']} steps after {r['warmup']} warm-up, "
        f"{r['threads']} thread{'s' if r['threads'] != 1 else ''} ({r['threading_layer']}), "
        f"BLAS {r['blas']['library']}, kernel {r['blas']['core']}",
        f"  train       {r['train_images_per_s']:>10,.0f} img/s   {r['train_step_ms']:.1f} ms/step, "
        f"epoch of 60,000 in {r['epoch_s']:.1f} s",
        f"  inference   {r['infer_images_per_s']:>10,.0f} img/s",
        f"  FLOP rate   {r['gflops_per_s']:>10,.1f} GFLOP/s  training ({r['train_mflop_per_image']:g} nominal "
        f"MFLOP/image), {100 * r['peak_fraction']:.0f}% of this machine's sgemm {r['sgemm_peak_gflops_per_s']:.0f} "
        "GFLOP/s",
    ]
    if r["model"] == "cnn":  # its conv2 runs by Winograd: the nominal count is more than the work done
        lines.append("              (nominal: a direct conv's count; the 5x5 conv before a 2x2 pool, by Winograd, "
                     "does fewer)")
    if "compile_s" in r:
        c = r["compile_s"]
        lines.append(f"  compile     {c['cold_s']:>10.1f} s cold, {c['cached_s']:.2f} s from the cache "
                     f"(fresh process to first step: {c['startup_s']:.2f} s)")
    lines.append(f"  peak RSS    {r['peak_rss_mb']:>10,.0f} MB")
    return "\n".join(lines)


def run(args) -> int:
    options = parse(args)
    runtime.configure(options.pop("threads"))
    from convtui.core.training.bench import run_benchmark
    from convtui.core.storage.datasets import DataError

    try:
        result = run_benchmark(**options)
    except (RuntimeError, DataError) as exc:
        import sys

        print(f"convtui bench: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(result) if args.json else format_table(result))
    return EXIT_OK
