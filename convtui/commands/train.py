"""`convtui train`: headless training on MNIST (or any folder in MNIST's layout), on our own kernels.

Every flag comes from a `TrainConfig` field; a flag left unset takes the model preset's default (or, with
--resume, the checkpoint's saved value). Exit codes: 0 done, 1 runtime error (bad data, bad checkpoint,
diverged, a file that cannot be written), 2 bad flag value (or an --out folder that already holds a run, or that
another live run is using), 128 + the signal's number when SIGINT (130), SIGTERM (143) or SIGHUP (129) stopped it
after saving.

numpy and the core are imported inside `run()`, after --threads has set the thread environment variables,
because OpenBLAS reads them once, when numpy loads.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from convtui import runtime
from convtui.core.errors import EXIT_ERROR, EXIT_OK, UsageError
from convtui.commands.flags import check_flag, flag_message
from convtui.core.training.config import ConfigError, TrainConfig, config_field, field_problem

CLI_ONLY = ("out", "resume")


def _number(kind):
    """An argparse type whose error message names the value (argparse adds the flag)."""
    def parse(text):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(text) from None
    parse.__name__ = kind.__name__
    return parse


METAVARS = {"epochs": "N", "batch_size": "B", "lr": "LR", "decay": "D", "momentum": "M", "dropout": "RATE",
            "seed": "S", "limit": "N", "log_every": "STEPS", "threads": "T", "data": "DIR", "time_budget": "SECONDS"}


def add_parser(sub) -> None:
    """One flag per TrainConfig field, so the CLI cannot drift from the config (and the app's form)."""
    from convtui.core.training.config import PRESET_FIELDS

    parser = sub.add_parser("train", help="train a model preset on MNIST, headless",
                            description="Train a model preset on MNIST with convtui's own kernels. Unset flags "
                                        "take the preset's defaults from the lecture.")
    for f in fields(TrainConfig):
        flag, help_text = "--" + f.name.replace("_", "-"), f.metadata.get("help", "")
        default = f.default if f.default is not MISSING else None
        if isinstance(default, bool):
            parser.add_argument(f"--no-{f.name.replace('_', '-')}", dest=f.name, action="store_false",
                                default=None, help=f"do not {help_text}")
            continue
        if f.name in PRESET_FIELDS:
            help_text += " (default: from the preset)"
        elif default is not None:
            help_text += f" (default: {default})"
        kind = f.metadata["kind"]
        parser.add_argument(flag, dest=f.name, default=None, type=_number(kind) if kind is not str else str,
                            choices=f.metadata.get("choices"), help=help_text, metavar=METAVARS.get(f.name))
    parser.add_argument("--out", metavar="DIR", help="run folder for config.json, metrics.csv and checkpoint.npz "
                        "(default: runs/<time>-<model>; with --resume: the checkpoint's folder)")
    parser.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its checkpoint.npz")


def _overrides(args) -> dict:
    values = {f.name: getattr(args, f.name, None) for f in fields(TrainConfig) if f.name != "model"}
    if values.get("data"):  # saved with the run: `convtui eval` and --resume run from other folders
        values["data"] = os.path.abspath(values["data"])
    return values


def build_config(args):
    """(config, checkpoint or None) from the flags; raises UsageError for bad values."""
    from convtui.core.storage.checkpoint import load_checkpoint
    from convtui.core.storage.datasets import check_saved_data_folder

    try:
        if args.resume:
            checkpoint = load_checkpoint(args.resume)
            if args.model and args.model != checkpoint.model_name:
                from convtui.core.storage.checkpoint import CheckpointError

                raise CheckpointError(f"{args.resume}: checkpoint holds model '{checkpoint.model_name}', "
                                      f"not '{args.model}'")
            if not args.data:
                check_saved_data_folder(checkpoint.config.data, checkpoint.path)
            return checkpoint.config.with_overrides(**_overrides(args)), checkpoint
        return TrainConfig.for_model(args.model or TrainConfig.model, **_overrides(args)), None
    except ConfigError as exc:
        raise UsageError(flag_message(exc)) from None


def _resumed_thread_count(args) -> int | None:
    """The thread count a resumed run was trained with, read from the config.json beside its checkpoint without
    numpy (the BLAS thread count must be set before numpy loads, or a resumed run would not repeat the original)."""
    if args.threads is not None or not args.resume:
        return args.threads
    from convtui.core.storage.regular_files import NotRegularFile, TooLarge, read_bounded  # no numpy

    try:  # a file from anywhere: a FIFO named config.json must not hang the command, nor a huge one fill memory
        saved = json.loads(read_bounded(Path(args.resume).parent / "config.json", 1 << 20).decode("utf-8"))
        threads = saved["config"]["threads"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError, NotRegularFile, TooLarge):
        return None
    # An out-of-range count saved there is ignored here; the checkpoint's own config is checked next, and
    # refused with a clear line, before any thread is started.
    return threads if field_problem(config_field("threads"), threads) is None else None


def run(args) -> int:
    check_flag("threads", args.threads)  # before any thread pool starts: libgomp aborts on absurd counts
    runtime.configure(_resumed_thread_count(args))
    try:
        config, checkpoint = build_config(args)
        if args.out is not None and not args.out.strip():
            raise UsageError("--out needs a folder name (leave it out for runs/<time>-<model>)")
        if args.out:
            out_dir = Path(args.out)
        elif checkpoint is not None:
            out_dir = checkpoint.path.parent
        else:
            from convtui.core.storage.run_folder import default_run_dir

            out_dir = default_run_dir(config.model)
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"--out {out_dir} is a file, not a folder")
        from convtui.core.storage.run_folder import CHECKPOINT_FILE

        existing = out_dir / CHECKPOINT_FILE
        resuming_here = checkpoint is not None and existing.resolve() == checkpoint.path.resolve()
        if existing.exists() and not resuming_here:
            # A finished run can take an hour to redo: never overwrite one by accident.
            raise UsageError(f"--out {out_dir} already holds a run; choose another folder, or continue it "
                             f"with --resume {existing}")
        return _train(config, out_dir, checkpoint)
    except BrokenPipeError:
        # stdout went away (e.g. `| head`) before training started: say so once, and keep Python's exit-time
        # flush from raising again. (During training, _show_plain stops the run and saves first.)
        from convtui.commands.output import drop_stdout

        drop_stdout()
        print("convtui train: error: the output pipe was closed; training stopped", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"convtui train: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


# A scheduler (SIGTERM: `docker stop`, Slurm, systemd), a closed terminal (SIGHUP) and Ctrl-C (SIGINT) all stop
# the run the same way: finish the current step, save, exit 128 + the signal's number.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _train(config, out_dir: Path, checkpoint) -> int:
    import threading

    from convtui.core.training.trainer import Trainer

    stop, received, lost_output = threading.Event(), [], []

    def on_signal(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal aborts without waiting
        received.append(signum)
        stop.set()
        name = signal.Signals(signum).name
        again = "Ctrl-C" if signum == signal.SIGINT else name
        print(f"convtui train: {name}: stopping after the current step to save ({again} again to abort)",
              file=sys.stderr, flush=True)

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        trainer = Trainer(config, out_dir=out_dir, resume=checkpoint.path if checkpoint else None, stop=stop)
        print(f"run folder: {out_dir}", flush=True)
        if sys.stdout.isatty():
            from convtui.commands.train_live import show_live

            done = show_live(trainer.events(), config)
        else:
            done = _show_plain(trainer.events(), config, stop, lost_output)
    except KeyboardInterrupt:
        signum = received[0] if received else signal.SIGINT
        print(f"convtui train: aborted by {signal.Signals(signum).name}; the last checkpoint on disk is kept",
              file=sys.stderr, flush=True)
        return 128 + signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    from convtui.core.training.text import format_done

    if lost_output and not received:
        # The log could not be written (a full disk, a closed pipe): the run stopped and saved, as on a signal.
        from convtui.commands.output import drop_stdout

        print(f"convtui train: error: {lost_output[0]}; {format_done(done)}", file=sys.stderr, flush=True)
        drop_stdout()  # what is still buffered cannot be written either: no second error at exit
        return EXIT_ERROR
    if done.reason == "completed":
        print(format_done(done), flush=True)
        return EXIT_OK
    print(f"convtui train: {format_done(done)}", file=sys.stderr, flush=True)
    if done.reason == "stopped":
        return 128 + (received[0] if received else signal.SIGINT)
    return EXIT_ERROR


def _show_plain(events, config, stop, lost_output: list):
    """Plain lines for logs and pipes: one every --log-every steps and one per epoch, no carriage returns.

    When a line cannot be written (the log's disk is full, the pipe's reader went away), the run is stopped as a
    signal stops it: after the current step, saving. The reason goes in `lost_output`; no more lines are tried."""
    from convtui.commands.output import OutputError, lost_output_reason
    from convtui.core.training.events import Compiling, Done, Step
    from convtui.core.training.text import format_event

    for event in events:
        if isinstance(event, Done):
            return event
        if lost_output or (isinstance(event, Step) and event.step % config.log_every):
            continue
        if isinstance(event, Compiling) and not event.cold:
            continue  # loading from Numba's cache takes well under a second: TrainStart says how long
        try:
            print(format_event(event, config.epochs), flush=True)
        except (OSError, OutputError) as exc:
            lost_output.append(lost_output_reason(exc))
            stop.set()
    raise RuntimeError("training ended without a Done event")
