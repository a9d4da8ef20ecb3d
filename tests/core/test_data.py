"""IDX reading: the real MNIST files, and one clear DataError per kind of bad input."""

import gzip
import os
import re
import struct

import numpy as np
import pytest

from convtui.core.storage.datasets import DataError, load_split, read_idx, to_float


def idx_bytes(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    header = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(folder, images, labels, split="train", compress=True):
    names = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}[split]
    for name, data in zip(names, (idx_bytes(images), idx_bytes(labels))):
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


@pytest.fixture
def tiny():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 28, 28)).astype(np.uint8), np.array([0, 1, 2, 9, 4], dtype=np.uint8)


def test_real_mnist_test_split():
    test = load_split("test")
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    assert test.labels.shape == (10000,)
    # The first MNIST test digits are 7, 2, 1, 0, 4 and the classes are near-balanced (1135 ones).
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(test.labels, minlength=10)[1] == 1135


def test_limit_takes_the_first_images():
    assert load_split("train", limit=300).images.shape == (300, 28, 28)


def test_round_trip_gz_and_plain(tmp_path, tiny):
    images, labels = tiny
    write_split(tmp_path, images, labels, compress=True)
    data = load_split("train", tmp_path)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    plain = tmp_path / "plain"
    plain.mkdir()
    write_split(plain, images, labels, compress=False)
    np.testing.assert_array_equal(load_split("train", plain).images, images)


def test_to_float_scales_and_adds_channel():
    x = to_float(np.array([[[0, 255], [51, 102]]], dtype=np.uint8))
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no such data folder"):
        load_split("train", tmp_path / "nope")


def test_a_file_where_the_folder_belongs(tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(DataError, match=r"notes.txt: is not a folder$"):
        load_split("train", tmp_path / "notes.txt")


@pytest.mark.parametrize("kind, make", [
    ("a FIFO (named pipe)", os.mkfifo),
    ("a folder", os.mkdir),
    ("a character device", lambda path: os.symlink("/dev/zero", path)),
])
@pytest.mark.parametrize("name", ["train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"])
def test_a_data_name_that_is_no_regular_file_is_called_what_it_is(tmp_path, tiny, kind, make, name):
    """Not "missing": the user sees the name, and a FIFO or /dev/zero is never opened (it would hang or not end)."""
    write_split(tmp_path, *tiny, compress=False)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    make(str(tmp_path / name))
    with pytest.raises(DataError, match=rf"{name}: is {re.escape(kind)}, not a data file$"):
        load_split("train", tmp_path)


def test_missing_file(tmp_path, tiny):
    write_split(tmp_path, *tiny)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte.gz"):
        load_split("train", tmp_path)


def test_truncated_gzip(tmp_path, tiny):
    write_split(tmp_path, *tiny)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="truncated gzip"):
        load_split("train", tmp_path)


def test_corrupt_gzip(tmp_path, tiny):
    write_split(tmp_path, *tiny)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"this is not gzip at all" * 10)
    with pytest.raises(DataError, match="corrupt gzip"):
        load_split("train", tmp_path)


def test_corrupt_gzip_payload(tmp_path, tiny):
    write_split(tmp_path, *tiny)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[30:60] = bytes(30)  # damage the deflate stream but keep the gzip header
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupt gzip|truncated gzip"):
        load_split("train", tmp_path)


def test_wrong_magic(tmp_path, tiny):
    images, labels = tiny
    write_split(tmp_path, images, labels)
    bad = bytearray(idx_bytes(images))
    bad[2] = 0x0D  # float32 type code
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(DataError, match="wrong IDX magic number 0x00000d03"):
        load_split("train", tmp_path)


def test_labels_file_where_images_belong(tmp_path, tiny):
    images, labels = tiny
    write_split(tmp_path, images, labels)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError, match="has 1 dimensions, expected 3"):
        load_split("train", tmp_path)


def test_count_mismatch(tmp_path, tiny):
    images, labels = tiny
    write_split(tmp_path, images, labels[:4])
    with pytest.raises(DataError) as error:
        load_split("train", tmp_path)
    # Both files named: which one is short is the user's call, but they must know which two disagree.
    assert str(error.value) == (f"{tmp_path / 'train-labels-idx1-ubyte.gz'}: 4 labels for the 5 images of "
                                "train-images-idx3-ubyte.gz")


def test_label_outside_range(tmp_path, tiny):
    images, labels = tiny
    labels = labels.copy()
    labels[3] = 12
    write_split(tmp_path, images, labels)
    with pytest.raises(DataError, match="label 12 at index 3 is outside 0-9"):
        load_split("train", tmp_path)


def test_wrong_image_size(tmp_path, tiny):
    write_split(tmp_path, np.zeros((5, 32, 32), np.uint8), tiny[1])
    with pytest.raises(DataError, match="images are 32x32, expected 28x28"):
        load_split("train", tmp_path)


def test_header_disagrees_with_length(tmp_path, tiny):
    images, _ = tiny
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(images)[:-10])
    with pytest.raises(DataError, match=r"header says shape \(5, 28, 28\)"):
        read_idx(path, ndim=3)
