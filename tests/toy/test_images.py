"""The shipped X/O text grids, the parser's messages, and saving the learner's edits somewhere writable."""

import numpy as np
import pytest

from convtui.toy import images
from convtui.toy.images import (ImageFormatError, format_image, free_name, mismatches, parse_image,
                                save_user_image, shipped_images, user_dir)

LECTURE_X = [
    "-1 -1 -1 -1 -1 -1 -1 -1 -1",
    "-1  1 -1 -1 -1 -1 -1  1 -1",
    "-1 -1  1 -1 -1 -1  1 -1 -1",
    "-1 -1 -1  1 -1  1 -1 -1 -1",
    "-1 -1 -1 -1  1 -1 -1 -1 -1",
    "-1 -1 -1  1 -1  1 -1 -1 -1",
    "-1 -1  1 -1 -1 -1  1 -1 -1",
    "-1  1 -1 -1 -1 -1 -1  1 -1",
    "-1 -1 -1 -1 -1 -1 -1 -1 -1",
]


def test_shipped_set_has_the_lecture_pair_and_five_variants_each():
    shipped = {image.name: image for image in shipped_images()}
    for label in ("x", "o"):
        assert shipped[label].label == label
        for variant in ("shifted", "scaled", "rotated", "thick", "noisy"):
            image = shipped[f"{label}-{variant}"]
            assert image.label == label and image.note
            assert image.pixels.shape == (9, 9) and set(np.unique(image.pixels)) <= {-1.0, 1.0}
            assert mismatches(image.pixels, shipped[label].pixels), f"{label}-{variant} equals the original"
    assert [image.name for image in shipped_images()][:1] == ["x"]


def test_the_x_is_the_lecture_x_written_as_numbers():
    as_numbers = parse_image("label: x\n" + "\n".join(LECTURE_X), "numbers")
    np.testing.assert_array_equal(as_numbers.pixels, {i.name: i for i in shipped_images()}["x"].pixels)


def test_format_and_parse_round_trip():
    for image in shipped_images():
        again = parse_image(format_image(image), image.name)
        np.testing.assert_array_equal(again.pixels, image.pixels)
        assert (again.label, again.note) == (image.label, image.note)


@pytest.mark.parametrize("text, reason", [
    ("label: x\n" + ".........\n" * 8, "9 rows of 9 cells, got 8 rows"),
    ("label: x\n" + "........\n" * 9, "got 9 rows of [8]"),
    (".........\n" * 9, "needs a line 'label: x'"),
    ("label: q\n" + ".........\n" * 9, "got 'q'"),
    ("label: x\n" + "....o....\n" + ".........\n" * 8, "line 2 is neither"),
])
def test_bad_files_get_one_clear_reason(text, reason):
    with pytest.raises(ImageFormatError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_image(text, "bad")


def test_mismatches_lists_every_differing_cell():
    shipped = {image.name: image for image in shipped_images()}
    assert mismatches(shipped["x"].pixels, shipped["x-noisy"].pixels) == [(1, 5), (4, 0), (6, 8), (7, 4)]
    assert mismatches(shipped["x"].pixels, shipped["x"].pixels) == []


def test_user_dir_prefers_convtui_xo_dir_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path / "mine"))
    assert user_dir() == tmp_path / "mine"
    monkeypatch.delenv("CONVTUI_XO_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert user_dir() == tmp_path / "data" / "convtui" / "xo"


def test_saving_never_overwrites_and_lists_the_image(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    base = {image.name: image for image in shipped_images()}["x"]
    pixels = base.pixels.copy()
    pixels[4, 4] = -1.0
    first = save_user_image(pixels, "x", "x", note="centre removed")
    second = save_user_image(pixels, "x", "x")
    assert (first.name, second.name) == ("x-edit", "x-edit-2")
    assert (tmp_path / "x-edit.txt").read_text().startswith("note: centre removed\nlabel: x\n")
    np.testing.assert_array_equal(first.pixels, pixels)
    assert first.source == "yours"
    assert [image.name for image in images.user_images()[0]] == ["x-edit", "x-edit-2"]
    assert images.find_image("x-edit-2") is not None


def test_unreadable_user_file_is_reported_not_fatal(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    (tmp_path / "broken.txt").write_text("label: x\nnot a grid\n")
    found, problems = images.user_images()
    assert found == [] and len(problems) == 1 and "broken" in problems[0]


def test_free_name():
    assert free_name("x", set()) == "x-edit"
    assert free_name("x-edit", {"x-edit"}) == "x-edit-2"
    assert free_name("x-edit-2", {"x-edit", "x-edit-2"}) == "x-edit-3"
    assert free_name("My Image!", set()) == "my-image-edit"
