"""The progression's plan (the lecture's order, its words, the 5-minute budget) and which runs it may reuse."""

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from convtui.core.storage.run_folder import Run, read_run
from convtui.core.training import measured_accuracy, progression
from convtui.core.training.config import MODELS, PRESET_FIELDS, PRESETS, TrainConfig
from convtui.core.training.progression import (BUDGET_S, CLASS_PLAN, MARKER_FILE, find_reusable, match_run,
                                               read_marker, write_marker)

LECTURE = Path("/work/shared/lecture/cnn-lecture.txt")


def lecture_lines() -> list[str]:
    if not LECTURE.exists():
        pytest.skip("the lecture text is not on this machine")
    return LECTURE.read_text(encoding="utf-8").split("\n")


# ---------------------------------------------------------------- the plan
def test_the_steps_are_the_lectures_five_in_its_order():
    assert tuple(step.model for step in CLASS_PLAN.steps) == MODELS == (
        "softmax", "mlp-sigmoid", "mlp-relu", "mlp", "cnn")
    # The quotes follow the lecture: each step's words come after the previous step's.
    first_lines = [min(q.line for q in step.quotes) for step in CLASS_PLAN.steps]
    assert first_lines == sorted(first_lines) and len(set(first_lines)) == 5


def test_every_quote_is_the_lectures_words_on_its_line_and_in_the_table_line():
    lines = lecture_lines()
    for step in CLASS_PLAN.steps:
        assert step.quotes and "\n" not in step.changed
        for quote in step.quotes:
            assert quote.text in lines[quote.line - 1].replace("**", ""), (step.model, quote)
            assert quote.text in step.changed, (step.model, quote.text)


def test_the_plan_fits_the_budget_by_its_own_estimate():
    estimate = CLASS_PLAN.estimate_s()
    assert estimate <= BUDGET_S == 300
    # Recomputed by hand from the rates: start-up, training with snapshots, one test pass per epoch.
    expected = 0.0
    for step in CLASS_PLAN.steps:
        rate = progression.RATES[step.model]
        expected += (progression.START_S + step.images * step.epochs / rate.train_images_per_s * 1.1
                     + CLASS_PLAN.test_images * step.epochs / rate.test_images_per_s)
    assert math.isclose(estimate, expected, rel_tol=1e-12)
    # The cnn is by far the costliest step, and still gets at least one whole epoch of all 60,000 images.
    cnn = CLASS_PLAN.steps[-1]
    assert cnn.images == 60_000 and cnn.epochs >= 1
    assert CLASS_PLAN.step_estimate_s(cnn) > sum(CLASS_PLAN.step_estimate_s(s) for s in CLASS_PLAN.steps[:-1])


def test_a_larger_plan_would_not_fit():
    # The budget check can fail: the presets' full length (10 epochs each) is far over 5 minutes here.
    full = replace(CLASS_PLAN, steps=tuple(replace(s, epochs=10) for s in CLASS_PLAN.steps))
    assert full.estimate_s() > BUDGET_S


def test_each_step_trains_its_preset_with_the_plans_images_and_epochs():
    for step in CLASS_PLAN.steps:
        config = CLASS_PLAN.config(step)
        preset = PRESETS[step.model]
        for name in PRESET_FIELDS:
            if name != "epochs":
                assert getattr(config, name) == getattr(preset, name), (step.model, name)
        assert config.epochs == step.epochs and config.limit is None and config.seed == 0  # 60,000: no limit
    small = CLASS_PLAN.scaled(images=300, epochs=1, test_images=200)
    assert [CLASS_PLAN.config(s).model for s in small.steps] == list(MODELS)
    assert {(small.config(s).limit, small.config(s).epochs) for s in small.steps} == {(300, 1)}
    assert small.test_images == 200


# ---------------------------------------------------------------- reuse
STEP = CLASS_PLAN.steps[3]  # mlp: 60,000 images x 5 epochs


def mlp_run(epochs=10, steps=None, **config_changes) -> Run:
    config = {**TrainConfig.for_model("mlp", epochs=epochs).to_dict(), **config_changes}
    accuracy = [0.95 + i / 1000 for i in range(epochs)]
    return Run(path=Path("runs/x"), name="x", config=config, metrics={
        "epoch": [float(e) for e in range(1, epochs + 1)], "val_accuracy": accuracy,
        "steps": [600.0] * (epochs - 1) + [600.0 if steps is None else float(steps)]})


def test_a_longer_run_of_the_same_preset_stands_in_at_the_plans_epoch():
    reuse = match_run(mlp_run(epochs=10), {}, CLASS_PLAN, STEP)
    assert reuse is not None and reuse.model == "mlp"
    assert reuse.curve == tuple((e, 0.95 + (e - 1) / 1000) for e in range(1, 6))  # epochs 1..5, not 10
    assert reuse.accuracy == pytest.approx(0.954)
    assert match_run(mlp_run(epochs=5, seed=7), {}, CLASS_PLAN, STEP) is not None  # any seed


@pytest.mark.parametrize("run, marker, why", [
    (mlp_run(epochs=4), {}, "fewer epochs than the plan"),
    (mlp_run(epochs=5, steps=297), {}, "the plan's last epoch was cut short by a stop"),
    (mlp_run(lr=0.001), {}, "another learning rate"),
    (mlp_run(schedule="constant"), {}, "no decay"),
    (mlp_run(dropout=0.0), {}, "no dropout"),
    (mlp_run(batch_size=50), {}, "another batch size"),
    (mlp_run(limit=20_000), {}, "fewer training images"),
    (mlp_run(limit="many"), {}, "a limit that is not a number"),
    (mlp_run(data="/data/fashion"), {}, "another data set"),
    (mlp_run(model="cnn"), {}, "another model"),
    (mlp_run(), {"test_images": 500}, "tested on fewer test images"),
    (mlp_run(), None, "an unreadable progression note"),
])
def test_runs_that_trained_otherwise_are_not_reused(run, marker, why):
    assert match_run(run, marker, CLASS_PLAN, STEP) is None, why


def test_limit_at_or_past_the_data_set_size_is_the_whole_set():
    assert match_run(mlp_run(limit=60_000), {}, CLASS_PLAN, STEP) is not None
    assert match_run(mlp_run(limit=90_000), {}, CLASS_PLAN, STEP) is not None
    small = CLASS_PLAN.scaled(images=300, epochs=1, test_images=200)
    assert match_run(mlp_run(limit=300), {"test_images": 200}, small, small.steps[3]) is not None
    assert match_run(mlp_run(limit=300), {}, small, small.steps[3]) is None  # tested on all 10,000, not 200


def write_run(folder: Path, model: str, epochs: int, accuracies, marker=None, **changes) -> Path:
    folder.mkdir(parents=True)
    config = {**TrainConfig.for_model(model, epochs=epochs).to_dict(), **changes}
    (folder / "config.json").write_text(json.dumps({"config": config, "steps_per_epoch": 600}))
    rows = "".join(f"{e},0.1,0.9,0.1,{a},0.01,600,1\n" for e, a in enumerate(accuracies, start=1))
    (folder / "metrics.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy,lr,steps,elapsed_s\n" + rows)
    if marker is not None:
        (folder / MARKER_FILE).write_text(marker)
    return folder


def test_find_reusable_takes_the_newest_match_and_skips_damaged_folders(tmp_path):
    import os

    old = write_run(tmp_path / "20260101-000000-mlp", "mlp", 5, [0.9, 0.91, 0.92, 0.93, 0.94])
    new = write_run(tmp_path / "20260102-000000-progression-mlp", "mlp", 5, [0.9, 0.91, 0.92, 0.93, 0.97])
    os.utime(old, (1, 1))
    write_run(tmp_path / "bad-note-cnn", "cnn", 2, [0.98, 0.99], marker="{not json")
    write_run(tmp_path / "other-softmax", "softmax", 5, [0.9] * 5, lr=0.01)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.csv").write_text("epoch,loss\n1,x\n")
    found = find_reusable(CLASS_PLAN, tmp_path)
    assert set(found) == {"mlp"}
    assert found["mlp"].run.path == new and found["mlp"].accuracy == 0.97
    assert find_reusable(CLASS_PLAN, tmp_path / "missing") == {}


def test_the_marker_records_the_test_set_and_reads_back(tmp_path):
    small = CLASS_PLAN.scaled(images=300, epochs=1, test_images=200)
    path = write_marker(tmp_path, small, small.steps[4])
    assert json.loads(path.read_text()) == {"step": "cnn", "test_images": 200}
    assert read_marker(tmp_path) == {"step": "cnn", "test_images": 200}
    assert read_marker(tmp_path / "nowhere") == {}
    (tmp_path / MARKER_FILE).write_text("[1, 2]")
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER_FILE).unlink()
    (tmp_path / MARKER_FILE).mkdir()
    assert read_marker(tmp_path) is None


# ---------------------------------------------------------------- measured figures
def test_measured_figures_are_what_the_benchmark_prints():
    entries = list(measured_accuracy.MEASURED.values())
    text = measured_accuracy.render_module_entries(entries, measured_accuracy.MEASURED_ON,
                                                   measured_accuracy.COMMAND)
    namespace = {"MeasuredAccuracy": measured_accuracy.MeasuredAccuracy}
    exec(text, namespace)  # noqa: S102 - our own rendering of our own data
    assert namespace["MEASURED"] == measured_accuracy.MEASURED
    assert namespace["MEASURED_ON"] == measured_accuracy.MEASURED_ON
    source = Path(measured_accuracy.__file__).read_text()
    assert text.split("\n", 1)[1] in source  # the module holds the block exactly as printed
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", measured_accuracy.MEASURED_ON)
    assert measured_accuracy.MEASURED_LABEL == f"measured by benchmarks/accuracy.py on {measured_accuracy.MEASURED_ON}"
    for model, entry in measured_accuracy.MEASURED.items():
        assert model == entry.model and model in MODELS
        assert 0.5 < entry.test_accuracy < 1 and entry.epochs == PRESETS[model].epochs


def test_full_length_figures_follow_the_lectures_story():
    measured = measured_accuracy.MEASURED
    # softmax about 92%; the sigmoid MLP learns slowly; ReLU, He and Adam fix it; dropout and decay help more.
    assert measured["softmax"].test_accuracy == pytest.approx(0.92, abs=0.01)
    assert measured["mlp-sigmoid"].test_accuracy < measured["softmax"].test_accuracy
    assert measured["mlp-relu"].test_accuracy > 0.97 and measured["mlp"].test_accuracy > 0.975
    if "cnn" in measured:
        assert measured["cnn"].test_accuracy > measured["mlp"].test_accuracy


def test_read_run_of_a_progression_folder_is_a_normal_run(tmp_path):
    folder = write_run(tmp_path / "20260101-000000-progression-softmax", "softmax", 5, [0.9] * 5,
                       marker=json.dumps({"step": "softmax", "test_images": 10_000}))
    run = read_run(folder)
    assert run.model_name == "softmax" and run.final("val_accuracy") == 0.9
    assert match_run(run, read_marker(folder), CLASS_PLAN, CLASS_PLAN.steps[0]) is not None
