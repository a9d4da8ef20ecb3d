"""Kill training with SIGKILL at random moments, then check that whatever it left behind loads and resumes.

    python benchmarks/kill_loop.py                 # 30 runs of `mlp` on 3,000 images, killed at random
    python benchmarks/kill_loop.py --runs 5 --model cnn --limit 1000

Each round starts `convtui train` into a fresh folder (half the rounds resume an earlier, killed folder
instead), kills it with SIGKILL after a random delay, and then: the folder's checkpoint (if one was written
yet) must load with `convtui eval` and continue with `convtui train --resume`; no temporary file may trip the
resumed run. Prints one line per round and a summary. SIGKILL cannot be caught, so this measures the atomic
writes alone, not the signal handlers.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def convtui(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "convtui", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--max-delay", type=float, default=6.0, help="seconds; kills land in [0.2, this]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    counts = {"no checkpoint yet": 0, "loads and resumes": 0, "FAILED": 0}
    with tempfile.TemporaryDirectory() as scratch:
        folders: list[Path] = []
        for round_number in range(1, args.runs + 1):
            if folders and rng.random() < 0.5:
                out = rng.choice(folders)
                command = ["train", "--resume", out / "checkpoint.npz", "--epochs", "50"]
            else:
                out = Path(scratch) / f"run{round_number}"
                command = ["train", "--model", args.model, "--epochs", "50", "--limit", args.limit,
                           "--no-validate", "--out", out]
            process = subprocess.Popen([sys.executable, "-m", "convtui", *map(str, command)], cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            delay = rng.uniform(0.2, args.max_delay)
            time.sleep(delay)
            process.kill()
            process.wait()
            checkpoint = out / "checkpoint.npz"
            if not checkpoint.exists():
                outcome = "no checkpoint yet"
            else:
                evaluation = convtui("eval", checkpoint)
                resumed = convtui("train", "--resume", checkpoint, "--epochs", "1", "--limit", "200", "--out",
                                  Path(scratch) / f"resumed{round_number}")
                again = convtui("train", "--resume", checkpoint, "--epochs", "1")  # in place, as a user would
                ok = evaluation.returncode == 0 and resumed.returncode == 0 and again.returncode == 0
                outcome = "loads and resumes" if ok else "FAILED"
                if ok and out not in folders:
                    folders.append(out)
                if not ok:
                    print("   ", (evaluation.stderr + resumed.stderr + again.stderr).strip()[-400:])
            leftovers = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) if out.exists() else []
            counts[outcome] += 1
            print(f"round {round_number:>2}: killed after {delay:4.1f} s -> {outcome}"
                  f"{'; temporaries left: ' + ', '.join(leftovers) if leftovers else ''}", flush=True)
    print(f"{args.runs} kills: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 1 if counts["FAILED"] else 0


if __name__ == "__main__":
    sys.exit(main())
