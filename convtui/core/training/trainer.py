"""Training as a generator of events. It never prints: the CLI and the app's dashboard both consume `events()`.

    trainer = Trainer(TrainConfig.for_model("mlp"), out_dir="runs/demo", stop=threading.Event())
    for event in trainer.events():      # Compiling, TrainStart, Step..., EpochEnd, ..., Done
        print(format_event(event))

Between two steps the consumer may read `trainer.model` (for snapshots) or ask for a stop: set the
`threading.Event` passed as `stop`, call `request_stop()`, or pass a callable such as
`lambda: worker.is_cancelled`. The generator checks before every step, then saves the checkpoint and metrics
so far and yields Done("stopped"); keep iterating until Done to get that save (closing the generator early
saves nothing beyond the last epoch). Pausing is simply not pulling the next event.
One seed (with one thread count) gives the same numbers: weights, shuffling and dropout all draw from
`models.rng_for(seed, stream)`, and a checkpoint stores the generators' states so a resumed run continues
exactly as if it had never stopped (when it stopped at an epoch boundary).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from convtui.core.storage import atomic, run_folder as runs
from convtui.core.storage.run_lock import FolderInUseError, run_lock
from convtui.core.storage.checkpoint import (CheckpointError, load_checkpoint, restore_optimizer, restore_params,
                                     save_checkpoint)
from convtui.core.training.config import TrainConfig
from convtui.core.training import replay as replays
from convtui.core.storage import replay_store
from convtui.core.storage.datasets import DataError, Dataset, load_split, to_float
from convtui.core.training.evaluate import evaluate
from convtui.core.training.events import Compiling, Done, EpochEnd, Event, Step, TrainStart
from convtui.core.training.warm_up import kernel_cache_is_cold, warm_up_kernels
from convtui.core.nn.architectures import SHUFFLE_STREAM, build_model, dropout_layers, rng_for
from convtui.core.nn.optimizers import make_optimizer
from convtui.core.training.step import train_step
from convtui.core.training.text import format_duration, plural

# What a run recovered from in its folder (a damaged replay record it replaced): with no logging set up the line
# goes to stderr, and the app shows it as a notification (convtui.tui.core_notices).
log = logging.getLogger("convtui.runs")

StopRequest = threading.Event | Callable[[], bool] | None
RATE_WINDOW_STEPS = 20


class Trainer:
    """One training run. Loads data and builds the model on construction (so bad input fails early, with a
    DataError or CheckpointError); `events()` then runs it.

    `out_dir=None` writes no files. `resume` is a checkpoint path; its model must be `config.model`.
    `train_data` / `val_data` replace the data files (tests, the app). `validate=False` in the config skips
    the per-epoch test-set pass.
    """

    def __init__(self, config: TrainConfig, out_dir: str | Path | None = None, resume: str | Path | None = None,
                 stop: StopRequest = None, train_data: Dataset | None = None, val_data: Dataset | None = None):
        self.config = config.validated()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self._stop = stop if stop is not None else threading.Event()
        self._resume = load_checkpoint(resume) if resume is not None else None
        if self._resume is not None and self._resume.model_name != config.model:
            raise CheckpointError(f"{self._resume.path}: checkpoint holds model '{self._resume.model_name}', "
                                  f"not '{config.model}'")
        if train_data is None:
            train_data = load_split("train", config.data)
        if val_data is None and config.validate:
            val_data = load_split("test", config.data)
        self.train_data = train_data.head(config.limit)
        self.val_data = val_data if config.validate else None
        # The model's input and output come from the data (28x28 and 10 classes for MNIST-like folders).
        n_classes = max(self.train_data.n_classes, self.val_data.n_classes if self.val_data is not None else 0)
        if self.val_data is not None and self.val_data.input_shape != self.train_data.input_shape:
            raise DataError(f"the test images are {self.val_data.input_shape}, the training images "
                            f"{self.train_data.input_shape}: they must match")
        self.model = build_model(config.model, config.seed, dropout=config.dropout,
                                 input_shape=self.train_data.input_shape, n_classes=n_classes)
        self.optimizer = make_optimizer(config.optimizer, self.model.params(), momentum=config.momentum)
        self.shuffle_rng = rng_for(config.seed, SHUFFLE_STREAM)
        self.start_epoch = 0
        self.history: list[dict] = []  # one metrics row per completed epoch
        self.epoch = 0  # the 0-based epoch being trained (for snapshots)
        self.steps_per_epoch = math.ceil(len(self.train_data) / config.batch_size)
        self.trained_steps = 0  # updates the weights have had since the run began (a resumed run counts on)
        self.recorder: replays.Recorder | None = None  # replay snapshots, for a run with a folder
        if self._resume is not None:
            self._restore_weights()  # now, so a mismatch fails early and `model` is the resumed one at once

    # ------------------------------------------------------------------ files
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / runs.CHECKPOINT_FILE if self.out_dir is not None else None

    def request_stop(self) -> None:
        """Ask the run to stop after the current step (thread-safe)."""
        if isinstance(self._stop, threading.Event):
            self._stop.set()
        else:
            self._stop = threading.Event()
            self._stop.set()

    def _stop_requested(self) -> bool:
        return self._stop.is_set() if isinstance(self._stop, threading.Event) else bool(self._stop())

    def _rng_states(self) -> dict:
        return {"shuffle": self.shuffle_rng.bit_generator.state,
                "dropout": [layer.rng.bit_generator.state for layer in dropout_layers(self.model)]}

    def _save(self, epochs_completed: int, rows: list[dict], steps_into_epoch: int = 0) -> Path | None:
        """Checkpoint (after `epochs_completed` epochs, plus `steps_into_epoch` steps of the next one when a stop
        cut it short) and metrics.csv, atomically; None without an out_dir."""
        if self.out_dir is None:
            return None
        save_checkpoint(self.checkpoint_path, model=self.model, optimizer=self.optimizer, config=self.config,
                        epoch=epochs_completed, history=self.history, rng_states=self._rng_states(),
                        extra={"steps_into_epoch": steps_into_epoch})
        runs.write_metrics(self.out_dir, rows)
        return self.checkpoint_path

    # ------------------------------------------------------------------ set-up
    def _restore_weights(self) -> None:
        checkpoint = self._resume
        restore_params(self.model, checkpoint, self.config.model)
        if checkpoint.meta.get("optimizer") == self.config.optimizer:
            restore_optimizer(self.optimizer, checkpoint)  # a changed --optimizer starts with fresh state
        self.start_epoch = checkpoint.epoch
        self.history = [dict(row) for row in checkpoint.meta.get("history", [])][:checkpoint.epoch]

    def _restore_random_state(self) -> None:
        rng = self._resume.meta.get("rng", {})
        if "shuffle" in rng:
            self.shuffle_rng.bit_generator.state = rng["shuffle"]
        for layer, state in zip(dropout_layers(self.model), rng.get("dropout", [])):
            layer.rng.bit_generator.state = state

    def _warm_up(self, cold: bool) -> None:
        """Compile (or load from Numba's cache) every kernel this model uses, on two images; on both cores when
        the cache is cold (`warm_up.warm_up_kernels`)."""
        config = self.config
        warm_up_kernels(self.model, to_float(self.train_data.images[:2]), self.train_data.labels[:2],
                        lambda params: make_optimizer(config.optimizer, params, momentum=config.momentum), cold)

    # ------------------------------------------------------------------ the run
    def events(self) -> Iterator[Event]:
        """Run the training, yielding Compiling, TrainStart, then Step per step and EpochEnd per epoch, then Done.

        With an `out_dir`, the run holds that folder's lock throughout (a second process training into it gets
        a FolderInUseError), and first clears the temporary files that killed writes left there."""
        if self.out_dir is None:
            yield from self._events()
            return
        with run_lock(self.out_dir):
            if self._resume is None and self.checkpoint_path.exists():
                # Checked again under the lock: two runs started together both saw an empty folder.
                raise FolderInUseError(f"{self.out_dir} already holds a run; choose another folder, or continue "
                                       f"it with --resume {self.checkpoint_path}")
            atomic.remove_stale_temporaries(self.out_dir)
            yield from self._events()

    def _events(self) -> Iterator[Event]:
        config, started = self.config, time.perf_counter()
        cold = self._kernel_cache_is_cold()
        yield Compiling(f"compiling kernels for {config.model} (first run only; Numba caches them)" if cold else
                        f"loading kernels for {config.model} from Numba's cache", cold=cold)
        self._warm_up(cold)
        compile_s = time.perf_counter() - started
        if self._resume is not None:
            self._restore_random_state()  # after the warm-up, whose dropout draws would shift the saved state
        nothing_to_train = self.start_epoch >= config.epochs
        if self.out_dir is not None and not nothing_to_train:  # a run resumed past its --epochs is left as it was
            self.out_dir.mkdir(parents=True, exist_ok=True)
            runs.write_config(self.out_dir, config, start_epoch=self.start_epoch,
                              resumed_from=str(self._resume.path) if self._resume else None,
                              steps_per_epoch=self.steps_per_epoch)
            self._save(self.start_epoch, self.history)  # a good checkpoint exists even if epoch 1 diverges
            self.recorder = self._start_recording()

        n_train, batch = len(self.train_data), config.batch_size
        yield TrainStart(model=config.model, epochs=config.epochs, steps_per_epoch=self.steps_per_epoch,
                         n_train=n_train, n_val=len(self.val_data) if self.val_data is not None else 0,
                         start_epoch=self.start_epoch, compile_s=compile_s)
        if nothing_to_train:
            yield Done("completed", f"already trained for {plural(self.start_epoch, 'epoch')}; "
                                    f"pass a larger --epochs to continue", self.start_epoch, self.checkpoint_path)
            return

        total_steps = self.steps_per_epoch * (config.epochs - self.start_epoch)
        global_step, train_time, run_start = 0, 0.0, time.perf_counter()
        # images/s over the last steps only: a rate over the whole epoch so far swings wildly on its first
        # steps, and one over the whole run hides a slowdown.
        recent: deque[tuple[int, float]] = deque(maxlen=RATE_WINDOW_STEPS)
        for epoch in range(self.start_epoch, config.epochs):
            self.epoch = epoch
            lr = config.learning_rate(epoch)
            order = self.shuffle_rng.permutation(n_train)
            loss_sum, correct, seen, epoch_time = 0.0, 0, 0, 0.0
            for step in range(1, self.steps_per_epoch + 1):
                if self._stop_requested():
                    yield self._finish_stopped(epoch, step - 1, loss_sum, correct, seen, lr, run_start)
                    return
                if config.time_budget is not None and train_time >= config.time_budget:
                    yield self._finish_stopped(epoch, step - 1, loss_sum, correct, seen, lr, run_start,
                                               budget_reached=True)
                    return
                t0 = time.perf_counter()
                index = order[(step - 1) * batch: step * batch]
                labels = self.train_data.labels[index]
                loss, batch_correct = train_step(self.model, self.optimizer, to_float(self.train_data.images[index]),
                                                 labels, lr)
                if not math.isfinite(loss):
                    yield self._finish_diverged(epoch, step, loss)
                    return
                loss_sum, correct, seen = loss_sum + loss * len(labels), correct + batch_correct, seen + len(labels)
                global_step += 1
                self.trained_steps += 1
                now = time.perf_counter()
                # Only the steps' own time counts, so a paused consumer (the app's space key) does not drag
                # the images/s and ETA figures down.
                train_time, epoch_time = train_time + (now - t0), epoch_time + (now - t0)
                recent.append((len(labels), now - t0))
                if self.recorder is not None and self.recorder.due(epoch, step):
                    self.recorder.record(epoch, step, self.trained_steps)
                yield Step(epoch=epoch, step=step, global_step=global_step, total_steps=total_steps,
                           loss=loss, accuracy=batch_correct / len(labels), running_loss=loss_sum / seen,
                           running_accuracy=correct / seen, lr=lr,
                           images_per_s=sum(n for n, _ in recent) / max(sum(s for _, s in recent), 1e-9),
                           eta_s=train_time / global_step * (total_steps - global_step),
                           elapsed_s=now - run_start)

            with np.errstate(all="ignore"):  # a diverged model is reported below, not as NumPy warnings
                val = evaluate(self.model, self.val_data) if self.val_data is not None else None
            if not self._weights_finite() or (val is not None and not math.isfinite(val.loss)):
                # The last update broke the weights: keep the previous checkpoint as the last good one.
                yield self._finish_diverged(epoch, self.steps_per_epoch, val.loss if val else math.nan)
                return
            row = {"epoch": epoch + 1, "loss": loss_sum / seen, "accuracy": correct / seen,
                   "val_loss": val.loss if val else None, "val_accuracy": val.accuracy if val else None,
                   "lr": lr, "steps": self.steps_per_epoch, "elapsed_s": round(time.perf_counter() - run_start, 3)}
            self.history.append(row)
            self._save(epoch + 1, self.history)
            if self.recorder is not None:
                self.recorder.record(epoch, self.steps_per_epoch, self.trained_steps)
            yield EpochEnd(epoch=epoch, loss=row["loss"], accuracy=row["accuracy"], val_loss=row["val_loss"],
                           val_accuracy=row["val_accuracy"], lr=lr, elapsed_s=row["elapsed_s"])

        yield Done("completed", f"trained {plural(config.epochs, 'epoch')}", config.epochs, self.checkpoint_path)

    def _finish_stopped(self, epoch, steps_done, loss_sum, correct, seen, lr, run_start,
                        budget_reached: bool = False) -> Done:
        """Save what was learned. The cut-short epoch gets a metrics row but does not count as completed: a
        resumed run trains that epoch again, from the weights saved here. A stop has no validation; a run that
        used up its time budget is validated, because that figure is what a class-length run is for."""
        if not self._weights_finite():
            return self._finish_diverged(epoch, steps_done, math.nan)
        val = None
        if budget_reached and self.val_data is not None:
            with np.errstate(all="ignore"):
                val = evaluate(self.model, self.val_data)
        rows = list(self.history)
        if seen:
            rows.append({"epoch": epoch + 1, "loss": loss_sum / seen, "accuracy": correct / seen,
                         "val_loss": val.loss if val else None, "val_accuracy": val.accuracy if val else None,
                         "lr": lr, "steps": steps_done, "elapsed_s": round(time.perf_counter() - run_start, 3)})
        path = self._save(epoch, rows, steps_into_epoch=steps_done)
        if self.recorder is not None:
            self.recorder.record(epoch, steps_done, self.trained_steps)  # the last snapshot is the checkpoint
        where = f"; saved {path}" if path else ""
        if budget_reached:
            tested = f", test accuracy {100 * val.accuracy:.2f}%" if val else ""
            when = f"in epoch {epoch + 1} after step {steps_done}" if steps_done else f"after epoch {epoch}"
            return Done("completed", f"time budget of {format_duration(self.config.time_budget)} used up "
                                     f"{when}{tested}{where}", epoch, path)
        return Done("stopped", f"stopped in epoch {epoch + 1} after step {steps_done}{where}", epoch, path)

    def _start_recording(self) -> replays.Recorder:
        """Record replay snapshots into the run folder, on the test set's first digits (the training set's when
        the run has none). A resumed run keeps the snapshots its checkpoint had passed and appends; a damaged or
        different record (other data) is started afresh, as nothing could be appended to it."""
        resume = self._resume
        self.trained_steps = self.start_epoch * self.steps_per_epoch + (resume.steps_into_epoch if resume else 0)
        sample = (replays.choose_sample(self.val_data, "test") if self.val_data is not None
                  else replays.choose_sample(self.train_data, "train"))
        path = self.out_dir / runs.REPLAY_FILE
        earlier = None
        if resume is not None and path.exists():
            try:
                earlier = replay_store.read_replay(path).up_to(self.trained_steps)
            except replay_store.ReplayError as exc:  # said, not silently replaced: its snapshots are lost
                log.warning("convtui: %s: %s; this run starts a new replay record from step %s", path, exc.problem,
                            f"{self.trained_steps:,}")
        recorder = replays.Recorder(self.model, sample, self.steps_per_epoch,
                                    lambda record: replay_store.write_replay(path, record), earlier,
                                    first_epoch_points=resume is None)
        recorder.record(self.start_epoch, resume.steps_into_epoch if resume else 0, self.trained_steps)
        return recorder

    def _kernel_cache_is_cold(self) -> bool:
        """Only a cold cache is worth a "compiling" message (and the helper process); a warm one has every kernel
        ready in under a second (`warm_up.kernel_cache_is_cold`)."""
        return kernel_cache_is_cold(self.model.dtype)

    def _weights_finite(self) -> bool:
        """The weights and the optimiser's state are all finite: only then is a checkpoint worth keeping."""
        arrays = [*self.model.state_dict().values(), *self.optimizer.state_arrays().values()]
        return all(np.isfinite(value).all() for value in arrays if value.dtype.kind == "f")

    def _finish_diverged(self, epoch, step, loss) -> Done:
        """Keep the last good checkpoint on disk (the last epoch end, or the starting weights) untouched."""
        kept = self.checkpoint_path
        where = f"; kept the last good checkpoint {kept} (after epoch {len(self.history)})" if kept else ""
        return Done("diverged", f"loss became {loss} in epoch {epoch + 1} step {step}: training diverged, "
                                f"try a smaller --lr (now {self.config.learning_rate(epoch):g}){where}",
                    len(self.history), kept)
