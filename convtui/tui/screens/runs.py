"""Runs and compare: open a run folder (or a checkpoint) written by `convtui train --out DIR`, see its curves,
its confusion matrix (by evaluating the checkpoint on test digits) and its filters; overlay several runs'
curves, for example softmax, mlp and cnn, to show the lecture's progression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, ListItem, ListView, Static

from convtui.core.training import snapshots
from convtui.core.storage.run_folder import Run, RunError, find_runs, read_run
from convtui.served_paths import confine_to_served_runs
from convtui.tui.train_worker import kernel_lock
from convtui.tui.widgets.confusion import ConfusionMatrix
from convtui.tui.widgets.plots import MetricPlot
from convtui.tui.widgets.replay_views import ReplayViews

read_run = confine_to_served_runs(read_run)  # under `convtui serve`: only runs inside the server's ./runs

QUICK_EVAL_IMAGES = 1000  # the confusion matrix on opening; `e` evaluates every test digit (10,000 for MNIST)
class RunsScreen(Screen):
    """Open runs, compare their curves, and inspect one run's confusion matrix and filters."""

    HELP = (
        "Runs found under ./runs are listed on the left: enter opens one (its curves, its confusion matrix on "
        "1,000 test digits and its conv1 filters), space adds the highlighted run to the comparison or takes it "
        "out: every compared run is drawn in the same plots, e.g. softmax, mlp and cnn.\n\n"
        "o types a path instead: a run folder or a checkpoint.npz, for example one trained headless with "
        "`convtui train --out runs/cnn` on a server. e evaluates the open run on the whole test set.\n\n"
        "p shows the open run's model as PyTorch code (the same `model.py` that `convtui export --format pytorch` "
        "writes); x exports the open run into its folder's export/: model.py with model.safetensors, and "
        "model.onnx when the [export] extra is installed.\n\n"
        "Replay: a run trained since replay was added recorded snapshots as it learned (before the first step, "
        "after 1%, 3%, 10% and 30% of the first epoch, and at every epoch end). ← and → step through them, home "
        "and end jump to the first and the last; the confusion matrix, the filters, the digits and the weight "
        "percentiles all show that moment. v switches the right-hand box between filters, digits and weights.")

    HELP_KEYS = (("enter", "Open the highlighted run, or the typed path"), ("↑/↓", "Move in the list"))
    BINDINGS = [
        Binding("o", "open_path", "Open", tooltip="Open a run folder or checkpoint by its path"),
        Binding("space", "toggle_compare", "Compare"),
        Binding("e", "evaluate_all", "Test", tooltip="Test every run on the full test set"),
        # Twelve keys do not fit an 80-column footer: these three are in help (?) and the README only.
        Binding("c", "clear_compare", "Clear compare", show=False),
        Binding("r", "rescan", "Rescan ./runs", show=False),
        Binding("p", "show_pytorch", "The model as PyTorch code", show=False),
        Binding("x", "export", "Export"),
        # Priority, so the list's own home/end and the boxes' left/right scrolling do not take them; while the
        # path is typed (or the run has no replay) check_action hands them back to the focused widget.
        Binding("left", "replay_move(-1)", "Replay", key_display="←→", tooltip="Replay earlier", priority=True),
        Binding("right", "replay_move(1)", "Replay later", show=False, priority=True),
        Binding("home", "replay_move('first')", "Replay first", show=False, priority=True),
        Binding("end", "replay_move('last')", "Replay last", show=False, priority=True),
        Binding("v", "replay_view", "View", tooltip="Show filters, digits or weights"),
    ]

    DEFAULT_CSS = """
    RunsScreen #runs-left { width: 44; max-width: 36%; padding: 0 1; border-right: vkey $primary-darken-2; }
    RunsScreen #runs-path { margin-bottom: 1; }
    RunsScreen #runs-list { height: 1fr; }
    RunsScreen #runs-right { width: 1fr; }
    RunsScreen #runs-plots { height: 1fr; }
    RunsScreen #runs-plots MetricPlot { border: round $primary-darken-2; }
    RunsScreen #runs-detail { height: 1fr; }
    RunsScreen #runs-detail > VerticalScroll { border: round $primary-darken-2; }
    RunsScreen #runs-replay { height: auto; padding: 0 1; }
    RunsScreen #runs-legend { height: auto; padding: 0 1; }
    RunsScreen #runs-confusion-box { width: 52; max-width: 85%; }
    RunsScreen #runs-message { height: auto; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, runs_root: str | Path = "runs"):
        super().__init__()
        self.runs_root = Path(runs_root)
        self.found: list[Path] = []
        self.listed: dict[Path, Run | RunError] = {}  # each found folder read once per rescan, or why it cannot be
        self.compared: dict[Path, Run] = {}  # in the order they were added
        self.current: Run | None = None
        self.evaluated_on = 0
        self.replay = None  # the open run's training.replay.Replay, when it recorded one
        self.replay_index = 0

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="runs-left"):
                yield Input(placeholder="run folder or checkpoint.npz, then enter", id="runs-path")
                yield Label(f"runs under {self.runs_root}/ (enter: open, space: compare)")
                yield ListView(id="runs-list")
            with Vertical(id="runs-right"):
                yield Static("open a run: pick one on the left, or o and type a path", id="runs-message")
                yield Static("", id="runs-replay")
                with Horizontal(id="runs-plots"):
                    # Several runs make a legend too long for a border: it gets its own lines below.
                    yield MetricPlot("accuracy (%)", id="runs-accuracy", bounds=(0.0, 100.0),
                                     legend_on_border=False)
                    yield MetricPlot("loss", id="runs-loss", bounds=(0.0, None), legend_on_border=False)
                yield Static("", id="runs-legend")
                with Horizontal(id="runs-detail"):
                    with VerticalScroll(id="runs-confusion-box"):
                        yield ConfusionMatrix(id="runs-confusion")
                    yield ReplayViews(id="runs-views")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#runs-confusion-box").border_title = "confusion matrix"
        self.action_rescan()
        self.query_one("#runs-list", ListView).focus()

    # ---------------------------------------------------------------- listing and opening
    def action_rescan(self) -> None:
        listing = self.query_one("#runs-list", ListView)
        listing.clear()
        self.listed = {}
        try:
            self.found = find_runs(self.runs_root)
        except RunError as exc:
            self.found = []
            listing.append(ListItem(Label(escape(str(exc)))))
            return
        if not self.found:
            listing.append(ListItem(Label(escape(f"no runs in {self.runs_root}/ yet: train one first"))))
            return
        for path in self.found:
            listing.append(ListItem(Label(self.list_text(path)), name=str(path)))
        listing.index = 0

    def list_text(self, path: Path) -> str:
        """The list line of a run: its summary, or for a folder that cannot be read, why (it stays listed)."""
        if path not in self.listed:
            try:
                self.listed[path] = read_run(path)
            except RunError as exc:
                self.listed[path] = exc
        run = self.listed[path]
        if isinstance(run, RunError):
            # The list is narrow: name the file inside the folder rather than repeat the folder's path.
            reason = str(run).removeprefix(f"{path}/")
            return escape(f"✗ {path.name}: {reason}")  # folder names and messages are text, not markup
        mark = "●" if path in self.compared else " "
        return escape(f"{mark} {run.summary()}")

    def refresh_marks(self) -> None:
        for item in self.query_one("#runs-list", ListView).children:
            if item.name:
                item.query_one(Label).update(self.list_text(Path(item.name)))

    def action_open_path(self) -> None:
        self.query_one("#runs-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.open_run(event.value)

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        if event.item.name:
            self.open_run(event.item.name)

    def open_run(self, path: str | Path) -> bool:
        """Show one run: add it to the plots and evaluate its checkpoint. A bad path is one message."""
        try:
            run = read_run(path)
        except RunError as exc:
            self.message(str(exc), error=True)
            return False
        self.current = run
        self.compared[run.path] = run
        self.replot()
        self.refresh_marks()
        self.message(run.summary())
        if self.load_replay(run):
            return True  # its last snapshot is the checkpoint on the same first test digits: no evaluation needed
        if run.checkpoint is not None:
            self.evaluate(run, QUICK_EVAL_IMAGES)
        else:
            self.query_one("#runs-filters").set_images([], title="no checkpoint in this run")
        return True

    def action_toggle_compare(self) -> None:
        item = self.query_one("#runs-list", ListView).highlighted_child
        if item is None or not item.name:
            return
        path = Path(item.name)
        if path in self.compared:
            del self.compared[path]
        else:
            try:
                self.compared[path] = read_run(path)
            except RunError as exc:
                self.message(str(exc), error=True)
                return
        self.refresh_marks()
        self.replot()

    def action_clear_compare(self) -> None:
        self.compared = {self.current.path: self.current} if self.current is not None else {}
        self.refresh_marks()
        self.replot()

    def message(self, text: str, error: bool = False) -> None:
        text = escape(text)  # paths and file contents are text, not markup
        self.query_one("#runs-message", Static).update(f"[b red]{text}[/]" if error else text)
        if error:
            self.notify(text, severity="error", timeout=6)

    # ---------------------------------------------------------------- curves
    def replot(self) -> None:
        accuracy, loss = self.query_one("#runs-accuracy", MetricPlot), self.query_one("#runs-loss", MetricPlot)
        accuracy.series.clear()
        loss.series.clear()
        for run in self.compared.values():
            epochs = run.epoch_positions()
            for column, label, marker in (("val", "test", "braille"), ("", "train", "dot")):
                name = f"{column}_accuracy" if column else "accuracy"
                if name in run.metrics:
                    accuracy.set_series(f"{run.path}:{label}", f"{run.name} {label}", epochs,
                                        [v * 100 for v in run.metrics[name]], marker)
                name = f"{column}_loss" if column else "loss"
                if name in run.metrics:
                    loss.set_series(f"{run.path}:{label}", f"{run.name} {label}", epochs, run.metrics[name], marker)
        accuracy.replot()
        loss.replot()
        # Both plots add the same series in the same order, so one legend (the same colours) serves both.
        self.query_one("#runs-legend", Static).update(accuracy.legend_markup())

    # ---------------------------------------------------------------- PyTorch code and export
    def open_checkpoint(self):
        """The open run's checkpoint, or None after saying why (one line, as every problem here)."""
        from convtui.core.errors import ConvtuiError
        from convtui.core.storage.checkpoint import load_checkpoint

        if self.current is None or self.current.checkpoint is None:
            self.message("open a run with a checkpoint first", error=True)
            return None
        try:
            return load_checkpoint(self.current.checkpoint)
        except ConvtuiError as exc:
            self.message(str(exc), error=True)
            return None

    def action_show_pytorch(self) -> None:
        from convtui.core.errors import ConvtuiError
        from convtui.core.storage.export_pytorch import model_source
        from convtui.tui.screens.code_view import CodeScreen

        checkpoint = self.open_checkpoint()
        if checkpoint is None:
            return
        try:
            source = model_source(checkpoint)
        except ConvtuiError as exc:  # an architecture PyTorch cannot express the same way
            self.message(str(exc), error=True)
            return
        self.app.push_screen(CodeScreen(f"{self.current.name}: model.py (PyTorch)", source))

    def action_export(self) -> None:
        checkpoint = self.open_checkpoint()
        if checkpoint is not None:
            self.message(f"exporting {self.current.name} ...")
            self.export(checkpoint, self.current.path / "export")

    @work(thread=True, exclusive=True, group="export")
    def export(self, checkpoint, folder: Path) -> None:
        """Write model.py + model.safetensors, and model.onnx when the [export] extra is there."""
        from convtui.core.errors import ConvtuiError
        from convtui.core.storage.export_onnx import export_onnx
        from convtui.core.storage.export_pytorch import export_pytorch

        call = self.app.call_from_thread
        try:
            written = export_pytorch(checkpoint, folder)
        except (ConvtuiError, OSError) as exc:
            call(self.message, str(exc), True)
            return
        note = ""
        try:
            written.append(export_onnx(checkpoint, folder / "model.onnx"))
        except ConvtuiError as exc:  # most often: the onnx package is not installed
            note = f" (no ONNX: {exc})"
        names = ", ".join(Path(path).name for path in written)
        call(self.message, f"exported to {folder}: {names}{note}")

    # ---------------------------------------------------------------- evaluation
    def action_evaluate_all(self) -> None:
        if self.current is None or self.current.checkpoint is None:
            self.message("open a run with a checkpoint first", error=True)
            return
        self.evaluate(self.current, None)

    @work(thread=True, exclusive=True, group="evaluate")
    def evaluate(self, run: Run, limit: int | None) -> None:
        """Load the checkpoint and predict test digits, off the UI thread (a cnn takes seconds)."""
        from convtui.core.storage.checkpoint import load_model
        from convtui.core.storage.datasets import load_split
        from convtui.core.training.evaluate import check_model_fits, evaluate

        call = self.app.call_from_thread
        what = f"{limit:,}" if limit else "all"
        call(self.message, f"{run.summary()} | evaluating on {what} test digits ...")
        try:
            model, _ = load_model(run.checkpoint)
            data_folder = run.config.get("data")
            everything = load_split("test", data_folder, image_size=None)
            test = everything.head(limit)
            n_outputs = check_model_fits(model, test, run.checkpoint)
            with kernel_lock:
                result = evaluate(model, test)  # the same numbers as `convtui eval`
        except Exception as exc:  # CheckpointError, DataError, OSError: one line for the user
            call(self.message, str(exc), True)
            return
        confusion = snapshots.confusion_matrix(test.labels, result.predictions, n_classes=n_outputs)
        call(self.show_evaluation, run, confusion, snapshots.first_conv_filters(model), len(test), len(everything))

    def show_evaluation(self, run: Run, confusion: np.ndarray, filters: np.ndarray | None, n: int,
                        total: int) -> None:
        if run is not self.current:
            return  # another run was opened while this one was evaluated
        self.evaluated_on = n
        matrix = self.query_one("#runs-confusion", ConfusionMatrix)
        matrix.set_matrix(confusion, snapshots.per_class_accuracy(confusion))
        # As wide as the full layout needs (plus border and scrollbar); max-width keeps the filters beside it,
        # and where even that is too narrow the matrix takes its compact layout, all ten columns still shown.
        self.query_one("#runs-confusion-box").styles.width = matrix.full_width() + 4
        self.query_one(ReplayViews).show_filters(filters, run.model_name)
        if self.replay is not None:
            self.query_one("#runs-replay", Static).update(
                "the checkpoint, evaluated; ←→ go back to the replay's snapshots")
        accuracy = np.trace(confusion) / max(confusion.sum(), 1)
        more = "" if n >= total else f" (e: all {total:,})"
        self.message(f"{run.summary()} | {accuracy * 100:.2f}% right on {n:,} test digits{more}")

    # ---------------------------------------------------------------- replay
    def load_replay(self, run: Run) -> bool:
        """Show the run's last replay snapshot; False (after saying why, in one line) when it has none."""
        from convtui.core.errors import ConvtuiError

        self.replay, views, line = None, self.query_one(ReplayViews), self.query_one("#runs-replay", Static)
        views.current = "runs-filters-box"
        try:
            replay = run.read_replay()
        except ConvtuiError as exc:  # a damaged replay.npz: the run itself is fine
            line.update(f"[red]{escape(str(exc))}[/]")
            replay = None
        else:
            line.update("no replay recorded for this run" if not replay else "")
        self.refresh_bindings()
        if not replay:
            return False
        self.replay = replay
        if replay.snapshots[-1].filters is None:
            views.current = "runs-digits-box"  # a dense model's most telling view
        self.show_replay(len(replay) - 1)
        return True

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("replay_move", "replay_view"):
            # Typing a path keeps ← → home end for the input; a run without replay leaves them to the list.
            return self.replay is not None and not isinstance(self.focused, Input)
        return True

    def action_replay_move(self, where) -> None:
        last = len(self.replay) - 1
        index = {"first": 0, "last": last}.get(where)
        self.show_replay(index if index is not None else min(max(self.replay_index + int(where), 0), last))

    def action_replay_view(self) -> None:
        self.query_one(ReplayViews).cycle(has_filters=self.replay.snapshots[0].filters is not None)

    def show_replay(self, index: int) -> None:
        """Every panel at snapshot `index`: the matrix, the filters, the digits, the weight bands."""
        self.replay_index, replay = index, self.replay
        confusion = replay.snapshots[index].confusion
        matrix = self.query_one("#runs-confusion", ConfusionMatrix)
        matrix.set_matrix(confusion, snapshots.per_class_accuracy(confusion))
        self.query_one("#runs-confusion-box").styles.width = matrix.full_width() + 4
        self.query_one(ReplayViews).show_moment(replay, index, self.current.model_name)
        accuracy = np.trace(confusion) / max(int(confusion.sum()), 1)
        source = "test" if replay.source == "test" else "training"
        self.query_one("#runs-replay", Static).update(escape(
            f"replay: {replay.label(index)} | {accuracy * 100:.2f}% right on {replay.sample_size:,} {source} "
            "digits"))
