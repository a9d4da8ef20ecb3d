"""Inference paths, A/B in one process: the cnn's conv2 by Winograd F(4x4, 5x5) against the GEMM forward (issue 15).

    python benchmarks/inference_paths.py                  # batch 100, 2 threads, 12 alternating rounds
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/inference_paths.py --rounds 20

The two paths take turns in the same process, round after round, so the machine's drift hits both alike. Prints
each path's median forward of one batch (whole cnn and conv2 alone) and images/s, then how far the Winograd
logits are from the GEMM path's on real MNIST test digits, with a checkpoint if given (--checkpoint) or else the
freshly initialised cnn: the largest difference, and how many predicted digits differ.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from convtui import runtime  # noqa: E402  (imports no numpy: `configure` must run before numpy loads)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=20, help="forwards per path per round (default 20)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None, help="numeric threads (default: all cores)")
    parser.add_argument("--checkpoint", help="a cnn checkpoint.npz, or its run folder, for the logits comparison")
    parser.add_argument("--digits", type=int, default=10000, help="test digits for the logits comparison")
    return parser.parse_args(argv)


def timed(fn, batches, steps) -> float:
    """Seconds per call of fn over `steps` calls, after one untimed call per batch."""
    for batch in batches[:2]:
        fn(batch)
    start = time.perf_counter()
    for i in range(steps):
        fn(batches[i % len(batches)])
    return (time.perf_counter() - start) / steps


def main(argv=None) -> int:
    args = parse_args(argv)
    runtime.configure(args.threads)
    import numpy as np

    from convtui.core.nn.architectures import build_model
    from convtui.core.ops import conv_winograd, jit
    from convtui.core.storage.checkpoint import load_model
    from convtui.core.storage.datasets import load_split, to_float

    test = load_split("test", limit=args.digits)
    images = to_float(test.images)
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if checkpoint is not None and checkpoint.is_dir():
        checkpoint = checkpoint / "checkpoint.npz"
    model = load_model(checkpoint)[0] if checkpoint else build_model("cnn", 0)
    batches = [images[i:i + args.batch_size] for i in range(0, 10 * args.batch_size, args.batch_size)]
    conv2 = model._plan()[1]  # the fused conv2 + ReLU + pool step
    conv2_inputs = [model._plan()[0].forward(batch) for batch in batches]
    applies = conv_winograd.applies
    paths = {"winograd": applies, "gemm": lambda *_: False}
    forward, layer = {name: [] for name in paths}, {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, rule in paths.items():
            conv_winograd.applies = rule
            forward[name].append(timed(lambda x: model.forward(x, training=False), batches, args.steps))
            layer[name].append(timed(lambda x: conv2.forward(x, training=False), conv2_inputs, args.steps))
    conv_winograd.applies = paths["gemm"]
    reference = model.predict_logits(images)
    conv_winograd.applies = applies
    logits = model.predict_logits(images)

    print(f"cnn inference, batch {args.batch_size}, {jit.thread_count()} threads, medians of {args.rounds} "
          f"alternating rounds of {args.steps} forwards")
    for name in paths:
        whole, alone = statistics.median(forward[name]), statistics.median(layer[name])
        print(f"  {name:8}  forward {whole * 1e3:6.2f} ms ({args.batch_size / whole:7,.0f} img/s)   "
              f"conv2 alone {alone * 1e3:6.2f} ms")
    gain = 1 - statistics.median(forward["winograd"]) / statistics.median(forward["gemm"])
    print(f"  Winograd saves {gain:.0%} of the forward")
    differ = int(np.sum(logits.argmax(axis=1) != reference.argmax(axis=1)))
    print(f"logits on {len(images):,} test digits ({'checkpoint' if args.checkpoint else 'fresh cnn'}): largest "
          f"difference {np.abs(logits - reference).max():.2e} (logits up to {np.abs(reference).max():.2f}); "
          f"{differ} predicted digit(s) differ; accuracy {np.mean(logits.argmax(axis=1) == test.labels):.2%} "
          f"against {np.mean(reference.argmax(axis=1) == test.labels):.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
