"""Why convolutions (screens/invariance.py): the keys, the runs it picks, the measured curves and the verdict."""

import json
import re
import time

import numpy as np
import pytest

from convtui.core.nn.architectures import build_model
from convtui.core.storage.checkpoint import save_checkpoint
from convtui.core.training import invariance as inv
from convtui.core.training.config import TrainConfig
from convtui.tui.app import ConvTuiApp
from convtui.tui.screens import invariance as screen_module
from convtui.tui.screens import invariance_panels as panels
from convtui.tui.widgets.plots import MetricPlot

BORDER_RIGHT = "│╮╯┤┐┘"
DIGITS = 60  # a small sweep: 2 models x 33 points on 60 digits takes a few seconds


def invariance_app():
    """The whole app (its stylesheet and breakpoints) opened on the lesson, as `convtui --screen invariance`."""
    return ConvTuiApp(initial_screen="invariance")


@pytest.fixture(autouse=True)
def small_sweep(monkeypatch, tmp_path):
    monkeypatch.setattr(screen_module, "SWEEP_DIGITS", DIGITS)
    monkeypatch.setenv("CONVTUI_RUNS_DIR", str(tmp_path / "runs"))


def screen_lines(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def cut_off(lines: list[str]) -> list[str]:
    """test_readability's check (imported from there, this module would not collect while its KEYS lacks a
    lesson): Textual's "…", a word running into a panel's right border or reaching the last column."""
    return [f"row {y}: {line.rstrip()!r}" for y, line in enumerate(lines)
            if "…" in line or (line.rstrip() and line[-1:].isalnum()) or re.search(rf"\w[{BORDER_RIGHT}]", line)]


async def wait_until(pilot, condition, timeout=60.0):
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.05)


def write_run(folder, model_name, seed, val_accuracy):
    """A run folder as `convtui train --out` writes it: metrics, config and an (untrained) checkpoint."""
    folder.mkdir(parents=True)
    config = TrainConfig.for_model(model_name, seed=seed)
    (folder / "metrics.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy,lr,steps,elapsed_s\n"
                                        f"1,2.3,0.1,2.3,{val_accuracy},0.001,600,10\n")
    (folder / "config.json").write_text(json.dumps({"config": config.to_dict()}))
    model = build_model(model_name, seed)
    save_checkpoint(folder / "checkpoint.npz", model=model, optimizer=None, config=config, epoch=1)
    return model


def text_of(screen, selector) -> str:
    return str(screen.query_one(selector).render())


async def test_keys_pick_the_transform_and_move_its_amount():
    app = invariance_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.digits_ready)
        assert (screen.kind, screen.amount) == ("shift", 0.0)
        await pilot.press("left")  # already at the start of the sweep: stays
        assert screen.amount == 0.0
        await pilot.press("right", "right", "right")
        await pilot.pause()
        assert screen.amount == 3.0 and "3 px right" in text_of(screen, "#inv-here")
        assert "test digits, shift 3 px right" in "\n".join(screen_lines(app))
        await pilot.press("r", "right", "right")
        await pilot.pause()
        assert (screen.kind, screen.amount) == ("rotate", 30.0)
        assert "30° ccw" in text_of(screen, "#inv-here")
        await pilot.press("z")
        assert (screen.kind, screen.amount) == ("scale", 1.0)  # each transform starts at its identity
        await pilot.press("left", "left")
        await pilot.pause()
        assert "x0.8" in text_of(screen, "#inv-here")
        await pilot.press(*["right"] * 20)
        assert screen.amount == 1.5  # the end of the sweep
        await pilot.press("s")
        await pilot.pause()
        assert screen.kind == "shift" and screen.query_one("#inv-plot", MetricPlot).xlabel == "shift (pixels right)"


async def test_without_runs_it_says_how_to_get_models_and_counts_the_presets():
    app = invariance_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: "press t" in text_of(screen, "#inv-models"))
        assert "no mlp and no cnn run to measure: press t to train here" in text_of(screen, "#inv-models")
        assert text_of(screen, "#inv-verdict") == "Load or train an mlp and a cnn (t) to measure them."
        params = text_of(screen, "#inv-params")
        assert "weights + biases in the presets:" in params
        assert "19,694,080" in params and "832" in params and "100,480" in params
        lines = screen_lines(app)
        assert not cut_off(lines), "\n".join(cut_off(lines))
        await pilot.press("m")
        await pilot.pause()
        assert any("no mlp run under" in n.message for n in app._notifications)


async def test_runs_are_measured_and_the_plot_and_verdict_show_the_numbers(tmp_path):
    runs = tmp_path / "runs"
    mlp = write_run(runs / "b-mlp", "mlp", 1, 0.95)
    write_run(runs / "a-mlp-relu", "mlp-relu", 2, 0.90)  # the worse of the two dense runs: second
    cnn = write_run(runs / "c-cnn", "cnn", 3, 0.99)
    app = invariance_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.models and not screen.sweeping, timeout=120)
        await pilot.pause()
        models_line = text_of(screen, "#inv-models")
        assert f"mlp: {runs / 'b-mlp'} (mlp, 1 epoch, test 95.00%) [1 of 2]" in models_line
        assert f"cnn: {runs / 'c-cnn'} (cnn, 1 epoch, test 99.00%) [1 of 1]" in models_line
        assert "weights + biases in the loaded runs:" in text_of(screen, "#inv-params")
        # Every point recomputed here, independently of the worker, on the same digits.
        images, labels = screen_module.test_digits()
        assert len(labels) == DIGITS
        expected = {kind: {role: {a: inv.accuracy_under(model, images, labels, kind, a) for a in spec.amounts}
                           for role, model in (("mlp", mlp), ("cnn", cnn))}
                    for kind, spec in inv.SWEEPS.items()}
        assert screen.curves == expected
        plot = screen.query_one("#inv-plot", MetricPlot)
        for role in ("mlp", "cnn"):
            series = plot.series[role]
            assert series.xs == list(inv.SWEEPS["shift"].amounts)
            assert series.ys == pytest.approx([expected["shift"][role][a] * 100 for a in series.xs])
            assert series.marker == screen_module.MARKERS[role]
        assert len({s.marker for s in plot.series.values()}) == 2  # told apart without colour
        verdict = text_of(screen, "#inv-verdict")
        assert verdict == "\n".join(inv.verdict("shift", expected["shift"]))
        truncated = int(expected["shift"]["mlp"][2.0] * 1000) // 10  # of 60 digits: no float edge at 1e-9
        assert verdict.startswith(f"At 2 px right, the mlp keeps {truncated}%")
        await pilot.press("r")
        await pilot.pause()
        assert text_of(screen, "#inv-verdict") == "\n".join(inv.verdict("rotate", expected["rotate"]))
        here = text_of(screen, "#inv-here")
        assert here == (f"0° ccw   test accuracy here: mlp {inv.percent(expected['rotate']['mlp'][0.0])}  "
                        f"cnn {inv.percent(expected['rotate']['cnn'][0.0])}")
        # The digits' captions: each network's guess, ✗ where it is wrong.
        await wait_until(pilot, lambda: screen.guesses is not None and screen.guesses[0] == ("rotate", 0.0))
        shown = images[:screen_module.SHOWN_DIGITS]
        for role, model in (("mlp", mlp), ("cnn", cnn)):
            np.testing.assert_array_equal(screen.guesses[1][role], model.forward(shown, training=False).argmax(1))
        await pilot.press("m")  # the other dense run: measured afresh
        await wait_until(pilot, lambda: "[2 of 2]" in text_of(screen, "#inv-models"))
        assert f"mlp: {runs / 'a-mlp-relu'} (mlp-relu" in text_of(screen, "#inv-models")


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
@pytest.mark.parametrize("keys", [[], ["right", "right"], ["r", "right", "right", "right"], ["z", "left"]])
async def test_nothing_is_cut_off(tmp_path, monkeypatch, size, keys):
    monkeypatch.setenv("NO_COLOR", "1")
    write_run(tmp_path / "runs" / "mlp", "mlp", 1, 0.95)
    write_run(tmp_path / "runs" / "cnn", "cnn", 3, 0.99)
    app = invariance_app()
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: screen.models and not screen.sweeping, timeout=120)
        await pilot.press(*keys)
        await wait_until(pilot, lambda: screen.guesses is not None and screen.guesses[0] == (screen.kind, screen.amount))
        await pilot.pause(0.3)
        lines = screen_lines(app)
        assert not cut_off(lines), "\n".join(cut_off(lines))
        assert "Shift" in lines[-1] and "Train" in lines[-1]  # the footer keeps its keys
        past = [f"{w.id or type(w).__name__}: {w.region}" for w in screen.walk_children()
                if w.display and w.region.width and w.region.right > size[0]]
        assert not past, past


def test_the_parameter_panel_reads_the_architectures():
    text = panels.parameter_text(build_model("mlp", 0), build_model("cnn", 0), "the presets")
    assert text.splitlines()[2:] == [
        "mlp dense1 784 -> 128             100,480",
        "cnn conv1 5x5x1 -> 32 shared          832",
        "cnn conv2 5x5x32 -> 64 shared      51,264",
        "dense 28x28 -> 28x28x32        19,694,080",
        f"  {19_694_080 / 832:,.0f} times conv1, for the same map",
        f"whole mlp {100_480 + 1_290:,}; whole cnn {832 + 51_264 + 3_212_288 + 10_250:,},",
        "most in its dense 3136 -> 1024 (dense1)",
    ]
    assert "do not scale" in text.splitlines()[0] and "784 weights" in text.splitlines()[0]


@pytest.mark.slow
async def test_t_trains_both_networks_here_and_measures_them(tmp_path, monkeypatch):
    monkeypatch.setattr(screen_module, "QUICK_TRAINING", {"mlp": {"epochs": 1, "limit": 300},
                                                          "cnn": {"epochs": 1, "limit": 100}})
    monkeypatch.setattr(screen_module, "QUICK_VALIDATION_DIGITS", 50)
    app = invariance_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await pilot.pause()
        await pilot.press("t")
        await wait_until(pilot, lambda: len(screen.models) == 2 and not screen.training, timeout=300)
        folders = {p.name.rsplit("-", 1)[-1]: p for p in (tmp_path / "runs").iterdir()}
        assert sorted(folders) == ["cnn", "mlp"]
        for role, limit in (("mlp", 300), ("cnn", 100)):
            config = json.loads((folders[role] / "config.json").read_text())["config"]
            assert (config["model"], config["limit"], config["epochs"]) == (role, limit, 1)
            assert f"{role}: {folders[role]} ({role}, 1 epoch, test " in text_of(screen, "#inv-models")
        assert text_of(screen, "#inv-models").count("[1 of 1]") == 2
