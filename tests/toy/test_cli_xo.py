"""`convtui xo`: the same grids as the app, as text or markdown; bad names give one line and exit 2."""

import subprocess
import sys

import pytest

from convtui.cli import main


def test_pool_stage_prints_the_lecture_grid(capsys):
    assert main(["xo", "--image", "x", "--filter", "backslash", "--stage", "pool"]) == 0
    out = capsys.readouterr().out
    assert "filter \\ (backslash): after 2x2 max pooling, stride 2, 4x4\n1.00 0.33 0.55 0.33\n" in out
    assert out.startswith("image x (label x), 9x9\n-1 -1 -1")


def test_all_stages_all_filters(capsys):
    assert main(["xo"]) == 0
    out = capsys.readouterr().out
    assert out.count("filter ") == 9
    assert "0.77 -0.11  0.11  0.33  0.55 -0.11  0.33" in out  # the conv map's first row, aligned
    assert "0.33 0.55 1.00 0.77" in out  # the pooled `/` map's first row


def test_markdown_and_aliases_and_mean_pooling(capsys):
    assert main(["xo", "--filter", "/", "--stage", "pool", "--pool", "mean", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "**filter / (slash): after 2x2 mean pooling, stride 2, 4x4**" in out
    assert "|---:|" in out or "|----:|" in out


@pytest.mark.parametrize("argv, message", [
    (["xo", "--image", "nope"], "unknown image 'nope'; choose one of: x, "),
    (["xo", "--filter", "zigzag"], "unknown filter 'zigzag'; choose one of: backslash, x, slash, all"),
    (["xo", "--stage", "vote"], "unknown stage 'vote'; choose one of: conv, relu, pool, all"),
    (["xo", "--format", "html"], "unknown format 'html'; choose one of: text, markdown"),
    (["xo", "--pool", "min"], "unknown pool mode 'min'"),
])
def test_bad_names_exit_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err


def test_learner_images_are_printable(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    (tmp_path / "mine.txt").write_text("label: o\n" + ".........\n" * 4 + "....#....\n" + ".........\n" * 4)
    assert main(["xo", "--image", "mine", "--stage", "conv", "--filter", "x"]) == 0
    assert "image mine (label o)" in capsys.readouterr().out


def test_headless_command_never_imports_textual():
    code = ("import sys; from convtui.cli import main; main(['xo', '--stage', 'pool']); "
            "assert 'textual' not in sys.modules, 'textual imported'; "
            "import convtui.toy.xo, convtui.toy.vote, convtui.toy.images, convtui.toy.formatting; "
            "assert 'textual' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
