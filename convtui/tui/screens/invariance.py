"""Why convolutions: an mlp and a cnn read test digits shifted, rotated and scaled; their accuracy is measured
over a sweep of each transform and plotted, beside the parameter counts of the lecture's "do not scale" slide.

The models come from run folders under runs/ (the best mlp-family and cnn runs first; m and c step through the
others) or are trained here in a minute (t). Everything heavy (reading checkpoints, the sweeps, training) runs in
thread workers that take `kernel_lock` around each model computation, so the UI never waits for a sweep.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual.worker import get_current_worker

from convtui.core.errors import ConvtuiError
from convtui.core.training import invariance as inv
from convtui.core.training import transforms
from convtui.tui.screens import invariance_panels as panels
from convtui.tui.screens.lesson_base import LessonScreen, lesson_state
from convtui.tui.train_worker import kernel_lock
from convtui.tui.widgets.heatmap import HeatmapGrid
from convtui.tui.widgets.plots import MetricPlot

SWEEP_DIGITS = 1000  # test digits per measured point: one digit is 0.1 percentage points of accuracy
SHOWN_DIGITS = 4  # four 14-column digits fit beside the parameter panel at 120 columns
ROLES = {"mlp": inv.MLP_MODELS, "cnn": inv.CNN_MODELS}
Y_TICKS = (0, 20, 40, 60, 80, 100)
MARKERS = {"mlp": "dot", "cnn": "hd"}  # one marker each, so the curves differ without colour too
# A class-length training (t): one epoch of all 60,000 images for both networks, so the comparison is fair (a
# cnn trained on a tenth of the data started out below the mlp on unmoved digits, which undid the lesson),
# checked on the first 1,000 test digits rather than all 10,000 to stay quick. Idle 2-core machine: the mlp about
# 3 s, the cnn about 40 s (98.6%, as in the progression's cnn step).
QUICK_TRAINING = {"mlp": {"epochs": 1}, "cnn": {"epochs": 1}}
QUICK_VALIDATION_DIGITS = 1000


@functools.lru_cache(maxsize=2)
def _first_test_digits(limit: int):
    from convtui.core.storage.datasets import load_split, to_float

    data = load_split("test", limit=limit)
    return to_float(data.images), data.labels


def test_digits():
    """The first SWEEP_DIGITS test digits as (float images (N, 1, 28, 28), labels), read once."""
    return _first_test_digits(SWEEP_DIGITS)


def runs_root() -> Path:
    return Path(os.environ.get("CONVTUI_RUNS_DIR", "runs"))


class InvarianceScreen(LessonScreen):
    TITLE = "Why convolutions"
    INTRO = ("Flattening pixels discards shape. Move the test digits (s shift, r rotate, z scale, ←/→ how much) "
             "and watch how an mlp and a cnn keep up, measured on 1,000 test digits.")
    HELP = ("The lecture's \"Vanilla Deep Neural Networks Challenges\": pixels flattened into one vector lose the "
            "shape, a dense layer does not scale, and rotation and scale variation are hard.\n\n"
            "s, r and z pick the transform (a shift to the right in pixels, a counter-clockwise rotation in "
            "degrees, a scale about the centre); ←/→ change its amount. The digits show it, with each network's "
            "guess under them. The plot is the test accuracy over the whole sweep, measured in the background on "
            "the first 1,000 test digits; the verdict quotes it.\n\n"
            "The networks are the best mlp-family and cnn runs under runs/ (m and c step through the others), "
            "or t trains both here in about a minute (runs/ keeps them).")
    BINDINGS = [
        Binding("s", "pick('shift')", "Shift", tooltip="Shift the digits right"),
        Binding("r", "pick('rotate')", "Rotate", tooltip="Rotate the digits counter-clockwise"),
        Binding("z", "pick('scale')", "Scale", tooltip="Scale the digits about their centre"),
        Binding("left", "amount(-1)", "Amount", key_display="←→", tooltip="Less of the transform"),
        Binding("right", "amount(1)", "More", show=False, tooltip="More of the transform"),
        Binding("m", "next_run('mlp')", "mlp", tooltip="The next mlp-family run"),
        Binding("c", "next_run('cnn')", "cnn", tooltip="The next cnn run"),
        Binding("t", "train", "Train", tooltip="Train an mlp and a cnn here (about a minute)"),
    ]

    kind = lesson_state("shift")
    amount_index = lesson_state(0)
    picks = lesson_state({"mlp": 0, "cnn": 0})
    measured = lesson_state(0)  # bumped by each measured point (the curves themselves live in `curves`)
    guesses = lesson_state(None)  # ((kind, amount), {role: predicted classes}) of the shown digits, or None
    status = lesson_state("looking for runs")

    def __init__(self) -> None:
        super().__init__()
        self.candidates: dict[str, list] = {role: [] for role in ROLES}
        self.models: dict[str, object] = {}  # role -> Sequential, once loaded
        self.curves = {kind: {role: {} for role in ROLES} for kind in inv.SWEEPS}
        self.sweeping = False
        self.training = False
        self.digits_ready = False  # the test digits are read by the first worker, never on the UI thread

    def compose_lesson(self) -> ComposeResult:
        yield Static("", id="inv-models", classes="status")
        with Horizontal(classes="pair"):
            with Vertical(id="inv-digits-box", classes="panel"):
                yield HeatmapGrid(scale=2, id="inv-digits")
                yield Static("", id="inv-here", classes="caption")
            yield Static("", id="inv-params", classes="panel")
        with Horizontal(classes="pair"):
            yield MetricPlot("test accuracy", xlabel="shift (pixels right)", ylim=(0.0, 100.0), id="inv-plot")
            yield Static("", id="inv-verdict", classes="panel")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#inv-params").border_title = "does not scale"
        self.query_one("#inv-verdict").border_title = "what the numbers say"
        self.measure(rescan=True, picks=dict(self.picks))

    # ---------------------------------------------------------------- keys
    @property
    def spec(self) -> inv.SweepSpec:
        return inv.SWEEPS[self.kind]

    @property
    def amount(self) -> float:
        return self.spec.amounts[self.amount_index]

    def action_pick(self, kind: str) -> None:
        if kind != self.kind:
            # Each transform starts at its identity (the digits as they are), so → shows the first change.
            self.kind, self.amount_index = kind, inv.SWEEPS[kind].amounts.index(inv.IDENTITY[kind])
            self.predict_shown()

    def action_amount(self, step: int) -> None:
        self.amount_index = max(0, min(self.amount_index + step, len(self.spec.amounts) - 1))
        self.predict_shown()

    def action_next_run(self, role: str) -> None:
        count = len(self.candidates[role])
        if count < 2:
            self.notify(f"no other {role} run under {runs_root()}/" if count else
                        f"no {role} run under {runs_root()}/: press t to train one", severity="warning")
            return
        self.picks = {**self.picks, role: (self.picks[role] + 1) % count}
        self.measure(rescan=False, picks=dict(self.picks))

    def action_train(self) -> None:
        if self.training:
            self.notify("already training", severity="warning")
            return
        self.training = True
        self.train_quickly()

    # ---------------------------------------------------------------- workers
    @work(thread=True, exclusive=True, group="measure")
    def measure(self, rescan: bool, picks: dict[str, int], prefer: dict[str, Path] | None = None) -> None:
        """Find the runs (rescan), load the picked models, then measure every (transform, amount) for both,
        the shown transform first, posting each point as it is measured."""
        worker, call = get_current_worker(), self.app.call_from_thread
        images, labels = test_digits()  # here, not on the UI thread: reading the test set takes a moment
        candidates = self.candidates
        if rescan:
            runs = inv.read_runs(runs_root())
            candidates = {role: inv.run_candidates(runs, models) for role, models in ROLES.items()}
            for role, path in (prefer or {}).items():
                picks[role] = next((i for i, run in enumerate(candidates[role]) if run.path == path), 0)
        chosen = {role: candidates[role][picks[role]] for role in ROLES if candidates[role]}
        call(self.set_runs, candidates, picks, "loading the models")
        models, problems = {}, []
        for role, run in chosen.items():
            try:
                models[role] = self.load(run)
            except ConvtuiError as exc:
                problems.append(str(exc))
        if worker.is_cancelled:
            return
        call(self.set_models, models, "; ".join(problems))
        done: set[tuple[str, str, float]] = set()
        while not worker.is_cancelled:
            point = self.next_point(models, done)
            if point is None:
                break
            kind, role, amount = point
            with kernel_lock:  # waits for a training step, if any: two models at once would halve both
                accuracy = inv.accuracy_under(models[role], images, labels, kind, amount)
            done.add(point)
            if not worker.is_cancelled:
                call(self.add_point, kind, role, amount, accuracy)
        if not worker.is_cancelled:  # a cancelled worker's screen (or app) may be gone
            call(self.sweep_finished)

    @staticmethod
    def load(run):
        from convtui.core.storage.checkpoint import load_model
        from convtui.core.storage.datasets import Dataset
        from convtui.core.training.evaluate import check_model_fits

        model, _ = load_model(run.checkpoint)
        # MNIST's shape and classes: a run trained on another data folder cannot read these digits.
        check_model_fits(model, Dataset(np.zeros((1, 28, 28), np.uint8), np.array([9], np.uint8), 10),
                         run.checkpoint)
        return model

    def next_point(self, models: dict, done: set) -> tuple[str, str, float] | None:
        """The next point to measure: the shown transform first (read afresh each time, so a key press
        reorders the work), both networks side by side, amounts in order."""
        kind = self.kind  # a str read from the worker thread: atomic
        for sweep_kind in (kind, *[k for k in inv.SWEEPS if k != kind]):
            for amount in inv.SWEEPS[sweep_kind].amounts:
                for role in models:
                    if (sweep_kind, role, amount) not in done:
                        return sweep_kind, role, amount
        return None

    @work(thread=True, exclusive=True, group="preview")
    def predict_shown(self) -> None:
        """Each network's guess for the shown digits under the shown transform (a few images: quick)."""
        kind, amount = self.kind, self.amount
        shown = self.shown_digits(kind, amount)
        models, guesses = dict(self.models), {}
        for role, model in models.items():
            with kernel_lock:
                guesses[role] = model.forward(shown, training=False).argmax(axis=1)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.set_guesses, (kind, amount), guesses)

    @staticmethod
    def shown_digits(kind: str, amount: float) -> np.ndarray:
        """The first test digits under the transform, (SHOWN_DIGITS, 1, 28, 28): a few images, microseconds."""
        return transforms.apply(kind, test_digits()[0][:SHOWN_DIGITS], amount)

    @work(thread=True, exclusive=True, group="train")
    def train_quickly(self) -> None:
        """A class-length run of each preset into runs/, then measure them."""
        from convtui.core.storage.datasets import load_split
        from convtui.core.storage.run_folder import default_run_dir
        from convtui.core.training.config import TrainConfig
        from convtui.core.training.events import Done, Step
        from convtui.core.training.trainer import Trainer
        from convtui.core.training.training_slot import training_slot

        worker, call = get_current_worker(), self.app.call_from_thread
        trained: dict[str, Path] = {}
        try:
            with training_slot(on_wait=lambda text: call(self.set_status, text),
                               should_stop=lambda: worker.is_cancelled) as may_train:
                if not may_train:
                    return
                validation = load_split("test", limit=QUICK_VALIDATION_DIGITS)
                for role, overrides in QUICK_TRAINING.items():
                    config = TrainConfig.for_model(role, **overrides)
                    folder = default_run_dir(role, runs_root())
                    trainer = Trainer(config, out_dir=folder, stop=lambda: worker.is_cancelled,
                                      val_data=validation)
                    events = trainer.events()
                    while True:
                        with kernel_lock:
                            event = next(events, None)
                        if event is None or isinstance(event, Done):
                            break
                        if isinstance(event, Step) and event.step % 20 == 0:
                            call(self.set_status, f"training the {role} here: step {event.global_step} of "
                                                  f"{event.total_steps}, batch accuracy {event.accuracy:.0%}")
                    if worker.is_cancelled:
                        return
                    trained[role] = folder
        except ConvtuiError as exc:
            call(self.notify, str(exc), severity="error", timeout=8)
        finally:
            if not worker.is_cancelled:
                call(self.training_finished, trained)

    # ---------------------------------------------------------------- results, on the UI thread
    def set_runs(self, candidates: dict[str, list], picks: dict[str, int], status: str) -> None:
        self.candidates, self.picks, self.status = candidates, picks, status
        self.digits_ready = True
        self.models = {}
        self.curves = {kind: {role: {} for role in ROLES} for kind in inv.SWEEPS}
        self.sweeping = True

    def set_models(self, models: dict, problems: str) -> None:
        self.models = models
        missing = [role for role in ROLES if role not in models]
        self.status = problems or (f"no {' and no '.join(missing)} run to measure: press t to train here"
                                   if missing else "")
        self.predict_shown()

    def add_point(self, kind: str, role: str, amount: float, accuracy: float) -> None:
        self.curves[kind][role][amount] = accuracy
        self.measured += 1

    def sweep_finished(self) -> None:
        self.sweeping = False
        self.measured += 1

    def set_guesses(self, key: tuple[str, float], guesses: dict) -> None:
        self.guesses = (key, guesses)

    def set_status(self, text: str) -> None:
        self.status = text

    def training_finished(self, trained: dict[str, Path]) -> None:
        self.training = False
        if trained:
            self.status = f"trained {' and '.join(trained)} here: measuring them"
            self.measure(rescan=True, picks={role: 0 for role in ROLES}, prefer=trained)

    # ---------------------------------------------------------------- drawing
    def refresh_lesson(self) -> None:
        lines = [panels.model_line(role, self.candidates[role][self.picks[role]] if self.candidates[role] else None,
                                   self.picks[role], len(self.candidates[role])) for role in ROLES]
        if self.status:
            lines.append(self.status)
        self.query_one("#inv-models", Static).update("\n".join(lines))
        self.draw_digits()
        curves = {role: points for role, points in self.curves[self.kind].items() if role in self.models}
        here = panels.accuracy_at(curves, self.amount) if curves else ""
        self.query_one("#inv-here", Static).update(f"{self.spec.describe(self.amount)}   {here}")
        mlp, cnn = self.models.get("mlp"), self.models.get("cnn")
        source = "the loaded runs" if mlp is not None and cnn is not None else "the presets"
        self.query_one("#inv-params", Static).update(panels.parameter_text(
            mlp or panels.preset_model("mlp"), cnn or panels.preset_model("cnn"), source))
        self.draw_plot(curves)
        pending = self.sweeping and any(len(points) < len(self.spec.amounts) for points in curves.values())
        self.query_one("#inv-verdict", Static).update(
            panels.verdict_text(self.kind, curves, len(test_digits()[1]), pending) if self.models else
            "Load or train an mlp and a cnn (t) to measure them.")

    def draw_digits(self) -> None:
        """The shown digits at once; each network's guess under them once the preview worker has it."""
        title = f"test digits, {self.kind} {self.spec.describe(self.amount)}"
        if not self.digits_ready:
            self.query_one("#inv-digits", HeatmapGrid).set_images([], title=f"{title} (reading them)")
            return
        labels = test_digits()[1][:SHOWN_DIGITS]
        key = (self.kind, self.amount)
        guesses = self.guesses[1] if self.guesses is not None and self.guesses[0] == key else {}
        captions = []
        for i, label in enumerate(labels):
            caption = Text(f"{int(label)}")
            for role, predicted in guesses.items():
                right = int(predicted[i]) == int(label)
                # ✗ marks a wrong guess without colour; bold makes it stand out with colour too
                caption.append(f" {role}{int(predicted[i])}{'' if right else '✗'}", style="" if right else "bold")
            captions.append(caption)
        images = self.shown_digits(*key)[:, 0]
        self.query_one("#inv-digits", HeatmapGrid).set_images(list(images), captions, title=title)

    def draw_plot(self, curves: dict[str, dict[float, float]]) -> None:
        plot = self.query_one("#inv-plot", MetricPlot)
        plot.xlabel = self.spec.unit
        plot.series.clear()
        for role, points in curves.items():
            if points:
                amounts = sorted(points)
                plot.set_series(role, role, amounts, [points[a] * 100 for a in amounts], marker=MARKERS[role])
        plot.replot()
        # The whole sweep's range from the first point on, so the curves grow left to right as they are measured.
        plot.plt.xlim(self.spec.amounts[0], self.spec.amounts[-1])
        plot.plt.yticks(Y_TICKS, [f"{tick}%" for tick in Y_TICKS])  # "80%┤" reads better than "80.0┤"
