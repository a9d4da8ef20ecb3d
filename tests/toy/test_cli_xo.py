"""`convtui xo`: the same grids as the app, as text or markdown; bad names give one line and exit 2."""

import os
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


GOOD_O = "label: o\n" + ".........\n" * 4 + "....#....\n" + ".........\n" * 4

# Files in the learner's folder that are not images: each is one line on stderr naming it, never a hang (a
# FIFO), never gigabytes of memory (/dev/zero), and the good images still print.
BAD_USER_FILES = [
    ("pipe.txt", lambda p: os.mkfifo(p), "is a FIFO (named pipe), not an image file"),
    ("zero.txt", lambda p: os.symlink("/dev/zero", p), "is a character device, not an image file"),
    ("folder.txt", lambda p: p.mkdir(), "is a folder, not an image file"),
    ("huge.txt", lambda p: p.write_bytes(b"#" * 10_000_000), "is 10,000,000 bytes; an image file is at most 64 KB"),
    ("grid.txt", lambda p: p.write_text("label: x\n#########\n"), "has 1 grid row; an image has 9"),
    ("latin1.txt", lambda p: p.write_bytes(b"\xff" + GOOD_O.encode()), "is not UTF-8 text (byte 0)"),
]


def run_cli(*argv, xo_dir):
    env = {**os.environ, "CONVTUI_XO_DIR": str(xo_dir)}
    return subprocess.run([sys.executable, "-m", "convtui", "xo", *argv], capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.mark.parametrize("name, make, reason", BAD_USER_FILES, ids=[case[0] for case in BAD_USER_FILES])
def test_bad_user_files_are_one_line_each_and_good_ones_still_print(tmp_path, name, make, reason):
    (tmp_path / "good.txt").write_text(GOOD_O)
    make(tmp_path / name)
    result = run_cli("--image", "good", "--filter", "x", "--stage", "pool", xo_dir=tmp_path)
    assert result.returncode == 0
    assert result.stderr == f"convtui xo: skipped {tmp_path / name}: {reason}\n"
    assert result.stdout.startswith("image good (label o), 9x9\n")
    bad_name = run_cli("--image", name.removesuffix(".txt"), xo_dir=tmp_path)
    assert bad_name.returncode == 2 and bad_name.stdout == ""
    assert bad_name.stderr.splitlines() == [f"convtui xo: skipped {tmp_path / name}: {reason}",
                                            f"convtui xo: error: unknown image {name.removesuffix('.txt')!r}; "
                                            "choose one of: x, x-noisy, x-rotated, x-scaled, x-shifted, x-thick, "
                                            "o, o-noisy, o-rotated, o-scaled, o-shifted, o-thick, good"]


def test_a_user_x_never_replaces_the_lecture_x(tmp_path):
    (tmp_path / "x.txt").write_text(GOOD_O)
    lecture = run_cli("--image", "x", "--stage", "conv", "--filter", "x", xo_dir=tmp_path)
    assert lecture.returncode == 0 and lecture.stderr == ""
    assert lecture.stdout.startswith("image x (label x), 9x9\n-1 -1 -1 -1 -1 -1 -1 -1 -1\n-1  1 -1")
    yours = run_cli("--image", "x-yours", "--stage", "conv", "--filter", "x", xo_dir=tmp_path)
    assert yours.returncode == 0
    assert yours.stdout.startswith("image x-yours (label o), 9x9\n")


def test_list_prints_every_image_with_its_label_and_owner(tmp_path):
    (tmp_path / "good.txt").write_text(GOOD_O)
    result = run_cli("--list", xo_dir=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    names = [line.split()[0] for line in lines]
    assert names[:12] == ["x", "x-noisy", "x-rotated", "x-scaled", "x-shifted", "x-thick",
                          "o", "o-noisy", "o-rotated", "o-scaled", "o-shifted", "o-thick"]
    assert lines[0].split()[1:4] == ["x", "lecture", "the"] and lines[6].split()[1:3] == ["o", "lecture"]
    assert lines[-1].split() == ["good", "o", "yours"]


def test_an_unknown_image_among_many_suggests_close_names_and_list(tmp_path):
    for i in range(30):
        (tmp_path / f"ring{i}.txt").write_text(GOOD_O)
    result = run_cli("--image", "rng7", xo_dir=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    line, = result.stderr.splitlines()
    assert line.startswith("convtui xo: error: unknown image 'rng7'; did you mean ring7")
    assert line.endswith("? `convtui xo --list` shows all 42") and "ring29" not in line
    nothing_close = run_cli("--image", "zzzz", xo_dir=tmp_path)
    assert nothing_close.stderr == "convtui xo: error: unknown image 'zzzz'; `convtui xo --list` shows all 42\n"
