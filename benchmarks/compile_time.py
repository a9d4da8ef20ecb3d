"""Cold compile time of everything the first cnn training run needs, per kernel and specialisation (issue 15).

Each round starts a fresh interpreter with NUMBA_CACHE_DIR at an empty folder (cold) and runs what the trainer's
first minutes run: its cold-cache probe, one training step at the default batch (100), and one evaluation batch
(1,000 images). A second interpreter then does the same from the cache that the first one filled (warm). Each
Numba compile is timed through Numba's own "numba:compile" events, exclusive of the kernels it compiles inside
itself, in wall and thread-CPU seconds; a kernel loaded from the cache triggers none. CPU seconds are the figure
to compare between sittings: the machine's other load stretches wall time, not the CPU time compiling takes.
This is the compile work done serially, in one process. `convtui train` and the app share a cold warm-up with a
helper process (core/training/warm_up.py), so their wall time is shorter: `convtui bench` reports that one.

    python benchmarks/compile_time.py [--rounds 3] [--threads 2] [--model cnn] [--json]

Prints one table per phase (medians over the rounds) and one row per compiled specialisation (first round).

    python benchmarks/compile_time.py --lessons [NAME ...]

The app's half: for each lesson (default: all), a fresh `convtui` (headless, 120x40, empty cache) asked to open
that lesson at once. It prints how long the lesson or its stand-in took to appear, when the lesson itself did,
and the longest stall of the app's event loop (a 10 ms timer's worst gap) while the kernels compiled and while
the lesson drew itself: a key pressed then waits about that long.

    python benchmarks/compile_time.py --kernels

For each parallel kernel the first cnn step and eval batch call: its compile CPU time with parallel=True and
with parallel=False, and its best run time both ways on the arguments it was called with: what dropping
`parallel=True` from it would save and cost. Run it on an idle machine; run times on a loaded one mean little.
Since the kernels split their work over Python threads (`convtui.core.ops.jit`) none is parallel, so this mode
lists nothing unless a parallel kernel comes back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN_BATCH = 100  # TrainConfig's default batch size
EVAL_BATCH = 1000  # evaluate()'s batch size


def _cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _CompileRecorder:
    """Listens to numba:compile events; each compile's time excludes the compiles nested inside it (a parallel
    kernel compiling the serial body it calls), so the rows add up to the total."""

    def __init__(self):
        from numba.core import event

        recorder = self

        class Listener(event.Listener):
            def on_start(self, ev):
                recorder.stack.append([ev.data, time.perf_counter(), time.thread_time(), 0.0, 0.0])

            def on_end(self, ev):
                data, wall0, cpu0, child_wall, child_cpu = recorder.stack.pop()
                wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
                if recorder.stack:
                    recorder.stack[-1][3] += wall
                    recorder.stack[-1][4] += cpu
                dispatcher = data["dispatcher"]
                recorder.rows.append({
                    "kernel": f"{dispatcher.py_func.__module__.rsplit('.', 1)[-1]}.{dispatcher.py_func.__name__}",
                    "signature": ", ".join(str(arg) for arg in data["args"]),
                    "parallel": bool(dispatcher.targetoptions.get("parallel")),
                    "wall_s": wall - child_wall, "cpu_s": cpu - child_cpu, "phase": recorder.phase})

        self.stack, self.rows, self.phase = [], [], ""
        event.register("numba:compile", Listener())


def _child(model_name: str, threads: int | None) -> dict:
    """One fresh process: the phases of a first run, timed; what Numba compiled or loaded."""
    start_wall, start_cpu = time.perf_counter(), _cpu_s()
    from convtui import runtime

    runtime.configure(threads)
    import numpy as np

    from convtui.core import ops
    from convtui.core.nn.architectures import build_model
    from convtui.core.nn.optimizers import Adam
    from convtui.core.training.step import train_step
    from convtui.core.training.warm_up import kernel_cache_is_cold

    recorder = _CompileRecorder()
    phases = {"import": (time.perf_counter() - start_wall, _cpu_s() - start_cpu)}
    rng = np.random.default_rng(0)
    model = build_model(model_name, 0)
    optimizer = Adam(model.params())
    x_train = rng.random((TRAIN_BATCH, *model.input_shape), dtype=np.float32)
    y_train = rng.integers(0, 10, TRAIN_BATCH).astype(np.uint8)  # the IDX labels' dtype
    x_eval = rng.random((EVAL_BATCH, *model.input_shape), dtype=np.float32)
    y_eval = rng.integers(0, 10, EVAL_BATCH).astype(np.uint8)

    def cold_probe():  # what Trainer._kernel_cache_is_cold runs before the first step: it reads the cache's index
        kernel_cache_is_cold(model.dtype)

    def evaluation_batch():
        ops.softmax_cross_entropy(model.forward(x_eval, training=False), y_eval)

    for name, run in (("cold probe", cold_probe),
                      ("first train step", lambda: train_step(model, optimizer, x_train, y_train, 1e-3)),
                      ("first eval batch", evaluation_batch),
                      ("second train step", lambda: train_step(model, optimizer, x_train, y_train, 1e-3))):
        recorder.phase = name
        wall, cpu = time.perf_counter(), _cpu_s()
        run()
        phases[name] = (time.perf_counter() - wall, _cpu_s() - cpu)
    return {"phases": phases, "compiles": recorder.rows, "dispatchers": _dispatcher_stats()}


def _dispatcher_stats() -> dict:
    """{module.kernel: [signatures, cache hits, cache misses]} for every kernel that ran."""
    from numba.core.registry import CPUDispatcher

    import convtui.core.ops as ops_package

    stats = {}
    for name, module in sorted(sys.modules.items()):
        if not name.startswith(ops_package.__name__ + "."):
            continue
        for attribute, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.signatures:
                stats[f"{name.rsplit('.', 1)[-1]}.{attribute}"] = [
                    len(value.signatures), sum(value.stats.cache_hits.values()),
                    sum(value.stats.cache_misses.values())]
    return stats


def _run_child(cache_dir: str, model_name: str, threads: int | None) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, __file__, "--child", "--model", model_name]
    if threads is not None:
        command += ["--threads", str(threads)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        sys.exit(f"compile_time: child failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _median(values):
    return statistics.median(values) if values else 0.0


def _report(rounds: list[dict]) -> None:
    print("phase               cold wall s  cold CPU s  warm wall s  warm CPU s   (median of "
          f"{len(rounds)} fresh cache dirs)")
    for phase in rounds[0]["cold"]["phases"]:
        cells = [_median([r[kind]["phases"][phase][i] for r in rounds]) for kind in ("cold", "warm") for i in (0, 1)]
        print(f"{phase:<18} {cells[0]:>12.2f} {cells[1]:>11.2f} {cells[2]:>12.2f} {cells[3]:>11.2f}")
    totals = [sum(row["cpu_s"] for row in r["cold"]["compiles"]) for r in rounds]
    walls = [sum(row["wall_s"] for row in r["cold"]["compiles"]) for r in rounds]
    print(f"Numba compiling, cold: {_median(walls):.2f} s wall, {_median(totals):.2f} s CPU "
          f"({len(rounds[0]['cold']['compiles'])} specialisations); first step + first eval, cold: "
          f"{_median([_first_run(r['cold']) for r in rounds]):.2f} s wall, warm: "
          f"{_median([_first_run(r['warm']) for r in rounds]):.2f} s wall")
    print("\nper specialisation (cold; median over rounds; exclusive of nested compiles)")
    print(f"{'kernel':<48} {'par':>3} {'wall s':>7} {'CPU s':>6}  phase / signature")
    by_key: dict[tuple, list] = {}
    for r in rounds:
        for row in r["cold"]["compiles"]:
            by_key.setdefault((row["kernel"], row["signature"]), []).append(row)
    for (kernel, signature), rows in sorted(by_key.items(), key=lambda item: -_median([r["cpu_s"] for r in item[1]])):
        print(f"{kernel:<48} {'yes' if rows[0]['parallel'] else '':>3} {_median([r['wall_s'] for r in rows]):>7.2f} "
              f"{_median([r['cpu_s'] for r in rows]):>6.2f}  {rows[0]['phase']} / {signature}")
    warm_misses = {name: stats for name, stats in rounds[0]["warm"]["dispatchers"].items() if stats[2]}
    print(f"\nwarm run: {sum(s[1] for s in rounds[0]['warm']['dispatchers'].values())} specialisations loaded "
          f"from the cache, {sum(s[2] for s in warm_misses.values())} compiled again {sorted(warm_misses) or ''}")


def _first_run(child: dict) -> float:
    phases = child["phases"]
    return sum(phases[name][0] for name in ("cold probe", "first train step", "first eval batch"))


async def _open_lesson_at_once(name: str) -> dict:
    import asyncio

    from convtui.tui.app import ConvTuiApp
    from convtui.tui.lessons import find_lesson

    target = find_lesson(name).target.split(":")[1]
    app = ConvTuiApp(warm_kernels=True)
    async with app.run_test(size=(120, 40)):
        gaps, last = [], [time.perf_counter()]

        def tick():
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        app.set_interval(0.01, tick)
        start, index, shown = time.perf_counter(), app.screen, None
        app.open_lesson(name)
        while type(app.screen).__name__ != target:
            if shown is None and app.screen is not index:  # the stand-in, while the kernels compile
                shown = time.perf_counter() - start
            if time.perf_counter() - start > 120:
                return {"lesson": name, "error": "did not open within 120 s"}
            await asyncio.sleep(0.01)
        opened, waiting = time.perf_counter() - start, len(gaps)
        shown = opened if shown is None else shown
        await asyncio.sleep(1.5)  # the lesson's first paint, and any kernels it compiles itself
        return {"lesson": name, "shown_s": shown, "opened_s": opened, "stall_waiting_s": max(gaps[:waiting], default=0.0),
                "stall_open_s": max(gaps[waiting:], default=0.0)}


def _lesson_child(name: str) -> dict:
    import asyncio

    from convtui import runtime

    runtime.configure()
    return asyncio.run(_open_lesson_at_once(name))


def _report_lessons(names: list[str]) -> None:
    from convtui.tui.lessons import LESSONS

    names = names or [lesson.name for lesson in LESSONS]
    print(f"{'lesson':<18} {'shown s':>8} {'opened s':>9} {'worst stall waiting s':>22} {'worst stall after s':>20}"
          "   (fresh app, empty cache, lesson asked for at once; shown: the lesson or its stand-in)")
    for name in names:
        with tempfile.TemporaryDirectory(prefix="convtui-compile-") as cache_dir:
            env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
            env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            result = subprocess.run([sys.executable, __file__, "--lesson-child", name], env=env,
                                    capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            print(f"{name:<18} failed: {(result.stderr.strip().splitlines() or ['no output'])[-1]}")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        if "error" in row:
            print(f"{name:<18} {row['error']}")
            continue
        print(f"{name:<18} {row.get('shown_s', row['opened_s']):>8.2f} {row['opened_s']:>9.2f} "
              f"{row['stall_waiting_s']:>22.3f} {row['stall_open_s']:>20.3f}", flush=True)


def _kernel_trade_offs(threads: int | None) -> None:
    """Compile and run each parallel kernel of a cnn step both ways; print one row each."""
    from convtui import runtime

    runtime.configure(threads)
    import numba
    import numpy as np
    from numba.core.registry import CPUDispatcher

    from convtui.core.nn.architectures import build_model
    from convtui.core.nn.optimizers import Adam
    from convtui.core.training.step import train_step

    calls = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("convtui.core.ops."):
            continue
        for attribute, value in list(vars(module).items()):
            if isinstance(value, CPUDispatcher) and value.targetoptions.get("parallel"):
                def recorded(*args, _kernel=value, _key=f"{name.rsplit('.', 1)[-1]}.{attribute}"):
                    if _key not in calls:  # the first call's arguments, copied before the kernel writes them
                        calls[_key] = (_kernel, [np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
                    return _kernel(*args)
                setattr(module, attribute, recorded)
    rng = np.random.default_rng(0)
    model = build_model("cnn", 0)
    x = rng.random((TRAIN_BATCH, *model.input_shape), dtype=np.float32)
    train_step(model, Adam(model.params()), x, rng.integers(0, 10, TRAIN_BATCH).astype(np.uint8), 1e-3)
    model.forward(rng.random((EVAL_BATCH, *model.input_shape), dtype=np.float32), training=False)
    print(f"{'kernel':<48} {'compile CPU s':>13} {'serial':>7} {'run ms':>8} {'serial':>8}")
    for key, (kernel, args) in calls.items():
        row = []
        for parallel in (True, False):
            variant = numba.njit(nogil=True, parallel=parallel)(kernel.py_func)  # uncached: a true compile
            start = time.thread_time()
            variant.compile(tuple(numba.typeof(a) for a in args))
            row.append(time.thread_time() - start)
        for variant in (kernel, numba.njit(nogil=True)(kernel.py_func)):
            best = float("inf")
            for _ in range(10):
                fresh = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
                start = time.perf_counter()
                variant(*fresh)
                best = min(best, time.perf_counter() - start)
            row.append(best * 1e3)
        print(f"{key:<48} {row[0]:>13.2f} {row[1]:>7.2f} {row[2]:>8.3f} {row[3]:>8.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="numeric threads (default: all cores)")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    parser.add_argument("--lessons", nargs="*", metavar="NAME", help="time opening lessons in the app instead")
    parser.add_argument("--kernels", action="store_true", help="compile and run each parallel kernel both ways")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lesson-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lesson_child:
        print(json.dumps(_lesson_child(args.lesson_child)))
        return
    if args.kernels:
        _kernel_trade_offs(args.threads)
        return
    if args.lessons is not None:
        _report_lessons(args.lessons)
        return
    if args.child:
        print(json.dumps(_child(args.model, args.threads)))
        return
    rounds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="convtui-compile-") as cache_dir:
            cold = _run_child(cache_dir, args.model, args.threads)
            warm = _run_child(cache_dir, args.model, args.threads)
        rounds.append({"cold": cold, "warm": warm})
    _report(rounds)
    if args.json:
        print(json.dumps(rounds))


if __name__ == "__main__":
    main()
