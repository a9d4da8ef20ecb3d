"""convtui vs PyTorch, side by side: training and inference images/s for softmax, mlp and cnn, the cnn epoch time,
compile times and peak memory. Prints one table (and, with --json, the raw figures).

    python benchmarks/bench_throughput.py [--rounds 3] [--threads 2] [--batch-size 100] [--steps 50]

Each round runs `convtui bench --json` and, when a torch venv exists (default /tmp/torchref, built with
`python3 -m venv /tmp/torchref && /tmp/torchref/bin/pip install torch==2.13.0 numpy`), the reference script
../shared/bench/torch_reference.py, alternating the two so that a load spike hits both. The table shows each
engine's median over the rounds. Run it on an idle machine: two-thread BLAS figures collapse under other load.
torch is never a convtui dependency; it is only the yardstick here.

This script does no numeric work itself: each `convtui bench --threads T` child calls
`convtui.runtime.configure(T)` first thing. The parent leaves its own environment alone, so the PyTorch reference
runs with exactly the variables it had before (Numba's OMP_WAIT_POLICY=PASSIVE would change torch's OpenMP pool).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("softmax", "mlp", "cnn")
# The reference script's "mlp" is 200-100-60-30-10 with ReLU: our `mlp-relu` preset, not our 128-unit `mlp`.
CONVTUI_MODEL = {"softmax": "softmax", "mlp": "mlp-relu", "cnn": "cnn"}
REFERENCE_CANDIDATES = (ROOT.parent / "shared/bench/torch_reference.py", Path("/work/shared/bench/torch_reference.py"))


def cpu_busy_fraction(seconds: float = 1.0) -> float:
    """Share of all cores busy over `seconds` (Linux /proc/stat): our own runs have finished by then."""
    def sample():
        with open("/proc/stat") as f:
            values = list(map(int, f.readline().split()[1:]))
        return sum(values) - values[3] - values[4], sum(values)
    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(total1 - total0, 1)


def wait_until_idle(limit: float) -> None:
    """Before each timed run, wait (at most `limit` seconds) for a second in which the machine is idle."""
    deadline = time.time() + limit
    while time.time() < deadline and cpu_busy_fraction() > 0.05:
        pass


def run_json(command, env=None) -> dict:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def convtui_bench(model, args, with_compile) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "convtui", "bench", "--model", CONVTUI_MODEL[model], "--batch-size", str(args.batch_size),
               "--steps", str(args.steps), "--threads", str(args.threads), "--json"]
    if not with_compile:
        command.append("--no-compile")
    return run_json(command, env)


def torch_bench(model, args, python, script) -> dict:
    return run_json([python, str(script), "--model", model, "--batch-size", str(args.batch_size),
                     "--threads", str(args.threads), "--steps", str(args.steps)])


def median(rows, key):
    return statistics.median(row[key] for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--torch-python", default="/tmp/torchref/bin/python")
    parser.add_argument("--json", action="store_true", help="also print every raw figure as JSON")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before each run, wait up to this long for an idle second (on a shared machine)")
    args = parser.parse_args()

    script = next((p for p in REFERENCE_CANDIDATES if p.is_file()), None)
    have_torch = script is not None and Path(args.torch_python).is_file()
    ours = {m: [] for m in MODELS}
    theirs = {m: [] for m in MODELS}
    compile_info = None
    for round_index in range(args.rounds):
        for model in MODELS:
            with_compile = model == "cnn" and compile_info is None
            wait_until_idle(args.wait_idle)
            row = convtui_bench(model, args, with_compile)
            if with_compile:
                compile_info = row["compile_s"]
            ours[model].append(row)
            if have_torch:
                wait_until_idle(args.wait_idle)
                theirs[model].append(torch_bench(model, args, args.torch_python, script))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)

    print(f"batch {args.batch_size}, {args.threads} threads, median of {args.rounds} rounds "
          f"({args.steps} timed steps each)")
    header = f"{'model':<9}{'':>2}{'convtui train':>14}{'torch train':>13}{'ratio':>7}" \
             f"{'convtui infer':>15}{'torch infer':>13}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for model in MODELS:
        train, infer = median(ours[model], "train_images_per_s"), median(ours[model], "infer_images_per_s")
        if have_torch:
            t_train = median(theirs[model], "train_images_per_s")
            t_infer = median(theirs[model], "infer_images_per_s")
            print(f"{model:<9}{'':>2}{train:>14,.0f}{t_train:>13,.0f}{train / t_train:>6.2f}x"
                  f"{infer:>15,.0f}{t_infer:>13,.0f}{infer / t_infer:>6.2f}x")
        else:
            print(f"{model:<9}{'':>2}{train:>14,.0f}{'-':>13}{'':>7}{infer:>15,.0f}{'-':>13}")
    cnn = ours["cnn"]
    epoch = 60_000 / median(cnn, "train_images_per_s")
    line = f"cnn epoch of 60,000 images: convtui {epoch:.1f} s"
    if have_torch:
        line += f", torch {60_000 / median(theirs['cnn'], 'train_images_per_s'):.1f} s"
    print(line)
    print(f"cnn FLOP rate: {median(cnn, 'gflops_per_s'):.1f} GFLOP/s = {100 * median(cnn, 'peak_fraction'):.0f}% "
          f"of the measured sgemm peak ({median(cnn, 'sgemm_peak_gflops_per_s'):.0f} GFLOP/s)")
    print(f"cnn compile: {compile_info['cold_s']:.1f} s cold, {compile_info['cached_s']:.2f} s cached; "
          f"fresh process to first step {compile_info['startup_s']:.2f} s")
    print("peak RSS of the bench process: " + ", ".join(f"{m} {median(ours[m], 'peak_rss_mb'):.0f} MB"
                                                         for m in MODELS))
    if not have_torch:
        print("(no torch venv found: only convtui's figures)")
    if args.json:
        print(json.dumps({"convtui": ours, "torch": theirs, "compile_s": compile_info}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
