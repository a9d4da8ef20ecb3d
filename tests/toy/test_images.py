"""The shipped X/O text grids, the parser's messages, and saving the learner's edits somewhere writable.

The learner's folder is untrusted: every kind of file that is not an image is listed with its reason and never
hangs or fills memory, saving never overwrites anything, and a learner file never replaces a lecture image."""

import errno
import os

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
    ("label: x\n" + ".........\n" * 8, "bad: has 8 grid rows; an image has 9"),
    ("label: x\n" + ".........\n" * 10, "bad: has 10 grid rows; an image has 9"),
    ("label: x\n" + ".........\n" + "........\n" * 8, "bad: line 3 has 8 cells; each row of an image has 9"),
    ("label: x\n" + ".........\n" * 8 + "#\n", "bad: line 10 has 1 cell; each row of an image has 9"),
    ("label: x\n" + "-1 1 " * 5 + "\n", "bad: line 2 has 10 cells; each row of an image has 9"),
    ("label: x\nnote: nothing else\n", "bad: has no grid rows; an image is 9 rows of 9 cells, '#' for ink and "
                                        "'.' for paper"),
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


GOOD = "label: o\n" + ".........\n" * 4 + "....#....\n" + ".........\n" * 4


def _symlink_loop(path):
    os.symlink(path.name, path)


def _unreadable(monkeypatch):
    """A file the user may not read. Tests run as root here, where chmod 000 still reads: fake the refusal."""
    def make(path):
        path.write_text(GOOD)
        real_open = os.open

        def refusing_open(name, *args, **kwargs):
            if os.fspath(name) == os.fspath(path):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(name))
            return real_open(name, *args, **kwargs)
        monkeypatch.setattr(os, "open", refusing_open)
    return make


# name in the folder, how to make it, the reason listed beside it
BAD_FILES = [
    ("pipe.txt", lambda p: os.mkfifo(p), "is a FIFO (named pipe), not an image file"),
    ("zero.txt", lambda p: os.symlink("/dev/zero", p), "is a character device, not an image file"),
    ("folder.txt", lambda p: p.mkdir(), "is a folder, not an image file"),
    ("huge.txt", lambda p: p.write_bytes(b"." * (images.MAX_IMAGE_BYTES + 1)),
     f"is {images.MAX_IMAGE_BYTES + 1:,} bytes; an image file is at most 64 KB"),
    ("grid.txt", lambda p: p.write_text("label: x\nnot a grid\n"),
     "line 2 is neither '#'/'.' cells nor -1/1 numbers: 'not a grid'"),
    ("rows.txt", lambda p: p.write_text("label: x\n" + ".........\n" * 3),
     "has 3 grid rows; an image has 9"),
    ("label.txt", lambda p: p.write_text(".........\n" * 9), "needs a line 'label: x' or 'label: o', got 'none'"),
    ("latin1.txt", lambda p: p.write_bytes(b"note: caf\xe9\n" + GOOD.encode()), "is not UTF-8 text (byte 9)"),
    ("empty.txt", lambda p: p.write_text(""), "has no grid rows; an image is 9 rows of 9 cells, '#' for ink and "
                                              "'.' for paper"),
    ("dangling.txt", lambda p: os.symlink("nowhere", p), "cannot be read: No such file or directory"),
    ("loop.txt", _symlink_loop, "cannot be read: Too many levels of symbolic links"),
    ("a[b].txt", lambda p: p.write_text(GOOD), "the name may hold letters, digits, spaces and - _ . + only: "
                                              "rename the file"),
    ("new\nline.txt", lambda p: p.write_text(GOOD), "the name may hold letters, digits, spaces and - _ . + only: "
                                                   "rename the file"),
    ("locked.txt", "unreadable", "cannot be read: Permission denied"),
]


@pytest.mark.parametrize("name, make, reason", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_every_bad_user_file_is_listed_with_its_reason(monkeypatch, tmp_path, name, make, reason):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    (tmp_path / "good.txt").write_text(GOOD)
    (_unreadable(monkeypatch) if make == "unreadable" else make)(tmp_path / name)
    found, skipped = images.user_images()
    assert [image.name for image in found] == ["good"]
    assert skipped == [images.Skipped(tmp_path / name, reason)]
    assert images.find_image("good").source == "yours"


def test_hidden_files_are_not_images(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    (tmp_path / ".hidden.txt").write_text("junk")
    (tmp_path / "notes.md").write_text("junk")
    assert images.user_images() == ([], [])


def test_a_folder_that_cannot_be_listed_is_one_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    assert images.user_images() == ([], [images.Skipped(tmp_path / "file", "cannot list the folder: Not a directory")])
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path / "missing"))
    assert images.user_images() == ([], [])


def test_too_many_files_are_not_all_read(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    monkeypatch.setattr(images, "MAX_USER_IMAGES", 3)
    for name in "abcde":
        (tmp_path / f"{name}.txt").write_text(GOOD)
    found, skipped = images.user_images()
    assert [image.name for image in found] == ["a", "b", "c"]
    assert skipped == [images.Skipped(tmp_path, "holds 5 .txt files; only the first 3 are read")]


def test_a_user_image_never_replaces_a_lecture_image(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    (tmp_path / "x.txt").write_text(GOOD)  # an O, saved as x.txt
    (tmp_path / "x-yours.txt").write_text(GOOD)  # the renamed name is taken too
    (tmp_path / "o-noisy.txt").write_text("note: mine\n" + GOOD)
    listed = {image.name: image for image in images.all_images()}
    assert len(listed) == 12 + 3
    assert listed["x"].source == "shipped" and listed["x"].label == "x"
    assert listed["o-noisy"].source == "shipped"
    assert listed["x-yours"].path == tmp_path / "x-yours.txt" and listed["x-yours"].note == ""
    renamed = listed["x-yours-2"]
    assert (renamed.path, renamed.label, renamed.source) == (tmp_path / "x.txt", "o", "yours")
    assert renamed.note == "your x.txt, renamed: the lecture's image is called x"
    assert listed["o-noisy-yours"].note == "mine (your o-noisy.txt, renamed: the lecture's image is called o-noisy)"
    assert images.find_image("x").source == "shipped"


def _edited_x():
    pixels = {image.name: image for image in shipped_images()}["x"].pixels.copy()
    pixels[4, 4] = -1.0
    return pixels


# Whatever already holds the name `x-edit`, saving picks the next one and leaves it as it was.
EXISTING = [
    ("broken file", lambda p: p.write_text("label: x\nnot a grid\n")),
    ("folder", lambda p: p.mkdir()),
    ("fifo", lambda p: os.mkfifo(p)),
    ("dangling symlink", lambda p: os.symlink("nowhere", p)),
    ("huge file", lambda p: p.write_bytes(b"." * (images.MAX_IMAGE_BYTES + 1))),
    ("other case", lambda p: p.with_name("X-Edit.txt").write_text("label: x\nnot a grid\n")),
]


@pytest.mark.parametrize("kind, make", EXISTING, ids=[case[0] for case in EXISTING])
def test_saving_never_overwrites_what_is_there(monkeypatch, tmp_path, kind, make):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    make(tmp_path / "x-edit.txt")
    before = {name: os.lstat(tmp_path / name) for name in os.listdir(tmp_path)}
    saved = save_user_image(_edited_x(), "x", "x")
    assert saved.name == "x-edit-2" and saved.path == tmp_path / "x-edit-2.txt"
    after = {name: os.lstat(tmp_path / name) for name in os.listdir(tmp_path)}
    assert sorted(after) == sorted([*before, "x-edit-2.txt"])  # no temporary file left behind
    assert all((after[name].st_ino, after[name].st_mtime_ns, after[name].st_size)
               == (stat.st_ino, stat.st_mtime_ns, stat.st_size) for name, stat in before.items())


def test_saving_never_overwrites_a_file_that_appears_meanwhile(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    (tmp_path / "x-edit.txt").write_text("someone else's")
    monkeypatch.setattr(images, "_taken_names", lambda folder: set())  # as if it was written after the listing
    assert save_user_image(_edited_x(), "x", "x").name == "x-edit-2"
    assert (tmp_path / "x-edit.txt").read_text() == "someone else's"


def test_saving_without_hard_links_still_never_overwrites(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVTUI_XO_DIR", str(tmp_path))
    (tmp_path / "x-edit.txt").write_text("someone else's")
    monkeypatch.setattr(images, "_taken_names", lambda folder: set())

    def no_links(*args):
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_links)
    saved = save_user_image(_edited_x(), "x", "x")
    assert saved.name == "x-edit-2"
    np.testing.assert_array_equal(saved.pixels, _edited_x())
    assert (tmp_path / "x-edit.txt").read_text() == "someone else's"
    assert sorted(os.listdir(tmp_path)) == ["x-edit-2.txt", "x-edit.txt"]


def test_free_name():
    assert free_name("x", set()) == "x-edit"
    assert free_name("x-edit", {"x-edit"}) == "x-edit-2"
    assert free_name("x-edit-2", {"x-edit", "x-edit-2"}) == "x-edit-3"
    assert free_name("My Image!", set()) == "my-image-edit"
