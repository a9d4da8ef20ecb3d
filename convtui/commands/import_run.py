"""`convtui import FILE.safetensors --out RUN_DIR [--model NAME]`: a PyTorch state_dict becomes a convtui run.

The file must hold one of our architectures as a torch.nn.Sequential's state_dict: recognised from the
architecture its metadata records (files `convtui export` wrote), else from the tensor names and shapes alone.
The run folder gets checkpoint.npz (the weights, and a fresh optimiser so `convtui train --resume` can fine-tune
them), config.json and a metrics.csv with no rows, so the Runs screen, `convtui eval` and Draw open it like a
trained run. Anything else is refused with one
line and exit 1, before the folder is created; an --out that already holds a run, or a bad flag, exits 2.
(The module is `import_run` because `import` is a Python keyword.)
"""

from __future__ import annotations

from pathlib import Path

from convtui.core.errors import EXIT_OK, UsageError


def add_parser(sub) -> None:
    from convtui.core.training.config import MODELS

    parser = sub.add_parser(
        "import", help="turn a PyTorch-named safetensors state_dict into a convtui run folder",
        description="Import the weights of one of convtui's models, saved from an equivalent torch.nn.Sequential "
                    "(or by `convtui export`), as a run folder the app's Runs screen opens.")
    parser.add_argument("file", metavar="FILE.safetensors", help="the state_dict, in safetensors format")
    parser.add_argument("--out", metavar="RUN_DIR", required=True, help="the run folder to create")
    parser.add_argument("--model", choices=MODELS, default=None,
                        help="which preset the weights are, when the file does not say and the shapes fit two "
                             "(mlp-sigmoid and mlp-relu differ only in the activation)")


def run(args) -> int:
    from convtui.core.nn.architectures import build_from_architecture
    from convtui.core.nn.optimizers import make_optimizer
    from convtui.core.storage.checkpoint import INPUT_SCALING, save_checkpoint
    from convtui.core.storage.run_folder import CHECKPOINT_FILE, METRICS_FILE, write_config, write_metrics
    from convtui.core.storage.run_lock import run_lock
    from convtui.core.storage.torch_names import ImportMismatch, load_torch_state
    from convtui.core.training.config import TrainConfig

    source, out = Path(args.file), Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if any((out / name).exists() for name in (CHECKPOINT_FILE, METRICS_FILE)):
        raise UsageError(f"--out {out} already holds a run; choose another folder")
    if source.suffix == ".npz":
        raise ImportMismatch(f"{source} is a convtui checkpoint, not a safetensors file: open it as it is "
                             "(convtui eval, the Runs screen)")
    # Everything is read and checked before the folder is made: a refused file leaves nothing behind.
    recognised, state = load_torch_state(source, args.model, INPUT_SCALING)
    model = build_from_architecture(recognised.architecture, init_weights=False)
    model.load_state_dict(state)  # names and shapes were checked against this architecture already
    config = TrainConfig.for_model(recognised.model, dropout=recognised.dropout)
    # A fresh optimiser's state (zero moments, step 0), so `convtui train --resume` can fine-tune the import.
    optimizer = make_optimizer(config.optimizer, model.params(), momentum=config.momentum)
    with run_lock(out):
        save_checkpoint(out / CHECKPOINT_FILE, model=model, optimizer=optimizer, config=config, epoch=0,
                        extra={"imported_from": str(source)})
        write_config(out, config, imported_from=str(source))
        write_metrics(out, [])
    print(f"imported {recognised.model} from {source} (recognised by its {recognised.how}) into {out}")
    print(f"  evaluate it with: convtui eval {out}")
    return EXIT_OK
