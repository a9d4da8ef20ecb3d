"""convtui vs PyTorch, side by side, on each OpenBLAS kernel: training and inference images/s for softmax, mlp-relu
and cnn, the cnn FLOP rate against the sgemm peak measured in the same runs, compile times and peak memory. Prints
the issue-15 table in one command (and, with --json, the raw figures):

    python benchmarks/bench_throughput.py [--rounds 3] [--threads 2] [--batch-size 100] [--steps N]
        [--kernels user,haswell] [--torch-python /tmp/torchvenv/bin/python] [--compile-benchmark]

Kernels: `user` runs every child with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment, as on
a user's machine (OpenBLAS then picks SkylakeX on an AVX-512 CPU); `haswell` sets OPENBLAS_CORETYPE=Haswell, the
development machines' forced AVX2 kernel. Only the children's environments change, never this process's, and
each row names the kernel its run reported (`convtui bench` asks the loaded OpenBLAS through ctypes).

Each round runs `convtui bench --json` and, when a torch venv exists (default /tmp/torchvenv, else /tmp/torchref,
built with `python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy`), the reference
script ../shared/bench/torch_reference.py, alternating the two so that a load spike hits both. The table shows
each engine's median over the rounds. Run it on an idle machine: two-thread BLAS figures collapse under other
load. torch is never a convtui dependency; it is only the yardstick here. With --compile-benchmark, it also runs
benchmarks/compile_time.py once (when present) and prints its report after the table.

This script does no numeric work itself: each `convtui bench --threads T` child calls
`convtui.runtime.configure(T)` first thing. The PyTorch reference runs with exactly the variables it had before,
apart from the kernel's OPENBLAS_* ones (Numba's OMP_WAIT_POLICY=PASSIVE would change torch's OpenMP pool).
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
MODELS = ("cnn", "mlp", "softmax")
# Timed steps per model unless --steps says otherwise: each timed inference loop lasts at least 0.4 s.
# 50 steps of the softmax model last 2-3 ms, where one stall of the VM moved a figure by a third (mlp-relu
# inference read 180k to 290k img/s between rounds of one sitting).
DEFAULT_STEPS = {"cnn": 50, "mlp": 1000, "softmax": 10000}
# The reference script's "mlp" is 200-100-60-30-10 with ReLU: our `mlp-relu` preset, not our 128-unit `mlp`.
CONVTUI_MODEL = {"softmax": "softmax", "mlp": "mlp-relu", "cnn": "cnn"}
REFERENCE_CANDIDATES = (ROOT.parent / "shared/bench/torch_reference.py", Path("/work/shared/bench/torch_reference.py"))
TORCH_PYTHONS = (Path("/tmp/torchvenv/bin/python"), Path("/tmp/torchref/bin/python"))
KERNEL_ENVIRONMENTS = {
    "user": ({}, ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")),  # (variables set, variables removed)
    "haswell": ({"OPENBLAS_CORETYPE": "Haswell"}, ()),
}


def kernel_env(kernel: str) -> dict:
    """This process's environment with the kernel's OpenBLAS variables set or removed: for the children only."""
    set_vars, removed = KERNEL_ENVIRONMENTS[kernel]
    env = {name: value for name, value in os.environ.items() if name not in removed}
    env.update(set_vars)
    return env


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


def convtui_bench(model, args, with_compile, env) -> dict:
    env = {**env, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "convtui", "bench", "--model", CONVTUI_MODEL[model], "--batch-size", str(args.batch_size),
               "--steps", str(steps_for(model, args)), "--threads", str(args.threads), "--json"]
    if not with_compile:
        command.append("--no-compile")
    return run_json(command, env)


def steps_for(model, args) -> int:
    return args.steps if args.steps else DEFAULT_STEPS[model]


def torch_bench(model, args, python, script, env) -> dict:
    return run_json([python, str(script), "--model", model, "--batch-size", str(args.batch_size),
                     "--threads", str(args.threads), "--steps", str(steps_for(model, args))], env)


def median(rows, key):
    return statistics.median(row[key] for row in rows)


def measure(args, kernel, script, torch_python, with_compile):
    """Every model's convtui and torch rows for one kernel, `args.rounds` alternating rounds."""
    env = kernel_env(kernel)
    ours = {m: [] for m in MODELS}
    theirs = {m: [] for m in MODELS}
    compile_info = None
    for round_index in range(args.rounds):
        for model in MODELS:
            compile_now = with_compile and model == "cnn" and compile_info is None
            wait_until_idle(args.wait_idle)
            row = convtui_bench(model, args, compile_now, env)
            if compile_now:
                compile_info = row["compile_s"]
            ours[model].append(row)
            if torch_python:
                wait_until_idle(args.wait_idle)
                theirs[model].append(torch_bench(model, args, torch_python, script, env))
        print(f"{kernel}: round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    return ours, theirs, compile_info


def shown(value) -> str:
    return f"{value:,.0f}" if value else "-"


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if b else "-"


def print_table(results, have_torch) -> None:
    print("| model | OpenBLAS kernel | convtui train | torch train | ratio | convtui infer | torch infer | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for kernel, (ours, theirs, _) in results.items():
        for model in MODELS:
            core = ours[model][0]["blas"]["core"]
            train, infer = median(ours[model], "train_images_per_s"), median(ours[model], "infer_images_per_s")
            t_train = median(theirs[model], "train_images_per_s") if have_torch else 0
            t_infer = median(theirs[model], "infer_images_per_s") if have_torch else 0
            print(f"| {CONVTUI_MODEL[model]} | {core} ({kernel}) | {train:,.0f} | {shown(t_train)} | "
                  f"{ratio(train, t_train)} | {infer:,.0f} | {shown(t_infer)} | {ratio(infer, t_infer)} |")


def print_figures(results, have_torch) -> None:
    for kernel, (ours, theirs, _) in results.items():
        cnn = ours["cnn"]
        core = cnn[0]["blas"]["core"]
        line = f"{core} ({kernel}): cnn epoch of 60,000 images: convtui {60_000 / median(cnn, 'train_images_per_s'):.1f} s"
        if have_torch:
            line += f", torch {60_000 / median(theirs['cnn'], 'train_images_per_s'):.1f} s"
        print(line)
        # Each run's rate against the peak measured in that same run, then the median: the VM drifts between runs,
        # so this can differ from the median rate over the median peak, which is printed too.
        print(f"  cnn training FLOP rate (nominal FLOPs): {median(cnn, 'gflops_per_s'):.1f} GFLOP/s; each run's share "
              f"of the sgemm peak measured in the same run, median: {100 * median(cnn, 'peak_fraction'):.0f}% "
              f"(median peak {median(cnn, 'sgemm_peak_gflops_per_s'):.0f} GFLOP/s, float32 1536x1536 at the same "
              f"thread count)")
        print("  peak RSS of the bench process: " + ", ".join(
            f"{CONVTUI_MODEL[m]} {median(ours[m], 'peak_rss_mb'):.0f} MB" for m in MODELS))
    compile_info = next((info for _, _, info in results.values() if info), None)
    if compile_info:
        print(f"cnn compile: {compile_info['cold_s']:.1f} s cold, {compile_info['cached_s']:.2f} s cached; "
              f"fresh process to first step {compile_info['startup_s']:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per model (default: cnn 50, mlp 1,000, softmax 10,000)")
    parser.add_argument("--kernels", default="user,haswell",
                        help="comma-separated OpenBLAS kernels to run: user (OPENBLAS_CORETYPE unset), haswell")
    parser.add_argument("--torch-python", default=None,
                        help="the torch venv's python (default: the first of " +
                             ", ".join(map(str, TORCH_PYTHONS)) + " that exists)")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="skip convtui bench's cold/cached compile probe")
    parser.add_argument("--compile-benchmark", action="store_true",
                        help="also run benchmarks/compile_time.py once (user kernel) and print its report")
    parser.add_argument("--json", action="store_true", help="also print every raw figure as JSON")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before each run, wait up to this long for an idle second (on a shared machine)")
    args = parser.parse_args()
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    unknown = [k for k in kernels if k not in KERNEL_ENVIRONMENTS]
    if unknown or not kernels:
        parser.error(f"--kernels: choose from {', '.join(KERNEL_ENVIRONMENTS)}")

    script = next((p for p in REFERENCE_CANDIDATES if p.is_file()), None)
    torch_python = args.torch_python or next((str(p) for p in TORCH_PYTHONS if p.is_file()), None)
    have_torch = script is not None and torch_python is not None and Path(torch_python).is_file()
    results = {}
    for index, kernel in enumerate(kernels):
        results[kernel] = measure(args, kernel, script, torch_python if have_torch else None,
                                  args.compile and index == 0)

    print(f"batch {args.batch_size}, {args.threads} threads, median of {args.rounds} rounds "
          f"(timed steps: {', '.join(f'{CONVTUI_MODEL[m]} {steps_for(m, args):,}' for m in MODELS)}); images/s")
    print_table(results, have_torch)
    print_figures(results, have_torch)
    if not have_torch:
        print("(no torch venv found: only convtui's figures)")
    compile_report = None
    compile_script = ROOT / "benchmarks" / "compile_time.py"
    if args.compile_benchmark and compile_script.is_file():
        report = subprocess.run([sys.executable, str(compile_script), "--rounds", "1", "--threads", str(args.threads)],
                                cwd=ROOT, env={**kernel_env(kernels[0]), "PYTHONPATH": str(ROOT)},
                                capture_output=True, text=True, timeout=3600)
        compile_report = report.stdout
        print(f"\n{compile_script.relative_to(ROOT)} (1 round):\n{report.stdout.rstrip()}")
        if report.returncode != 0:
            print(f"(it failed: {report.stderr.strip()[-300:]})")
    if args.json:
        print(json.dumps({"results": {k: {"convtui": o, "torch": t, "compile_s": c}
                                      for k, (o, t, c) in results.items()}, "compile_report": compile_report}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
