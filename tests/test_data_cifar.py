"""CIFAR-10 python batches: reading, validation and checksums on small pickles written here as
the official ones are (bytes keys, uint8 (n, 3072) rows, a list of labels)."""

import hashlib
import os
import pickle

import numpy as np
import pytest

from pyconv.data import CIFAR10, ChecksumError, load_dataset, write_cifar10_folder
from pyconv.data import checksums

pytestmark = pytest.mark.filterwarnings("ignore::pyconv.data.DatasetNotice")


def write_batch(path, n, seed, protocol=2):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"synthetic", b"data": data, b"labels": labels,
                     b"filenames": [b"x.png"] * n}, f, protocol=protocol)
    return data, labels


def test_reads_train_and_test_batches(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    parts = [write_batch(str(base / f"data_batch_{i}"), 2 + i, i, protocol=2 + i % 3)
             for i in range(1, 6)]
    test_data, test_labels = write_batch(str(base / "test_batch"), 3, 9)
    train = CIFAR10(str(tmp_path), train=True)
    x, y = train.images, train.labels
    assert x.shape == (sum(2 + i for i in range(1, 6)), 3, 32, 32) and x.dtype == np.float32
    data = np.concatenate([p[0] for p in parts])
    np.testing.assert_array_equal(y, np.concatenate([p[1] for p in parts]))
    # pixel (c, h, w) of image i is byte c*1024 + h*32 + w of its row
    i, c, h, w = np.meshgrid(*[np.arange(s) for s in x.shape], indexing="ij")
    np.testing.assert_array_equal(x, (data[i, c * 1024 + h * 32 + w] / np.float32(255)))
    assert train.classes[0] == "airplane" and len(train.classes) == 10  # no batches.meta
    test = CIFAR10(str(base), train=False, normalize=False)  # batches directly in root
    assert test.images.dtype == np.uint8
    np.testing.assert_array_equal(test.images.reshape(3, -1), test_data)
    np.testing.assert_array_equal(test.labels, test_labels)


def test_writer_round_trip_with_meta_classes(tmp_path):
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (7, 3, 32, 32), dtype=np.uint8), np.arange(7) % 10)
    test = (rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8), np.array([9, 3]))
    names = [f"c{k}" for k in range(10)]
    write_cifar10_folder(tmp_path / "cifar10", train=train, test=test, classes=names)
    ds = load_dataset("cifar10", "train", data_dir=tmp_path)
    np.testing.assert_array_equal(ds.images, train[0] / np.float32(255))
    np.testing.assert_array_equal(ds.labels, train[1])
    assert ds.classes == names
    sizes = [len(pickle.load(open(tmp_path / "cifar10" / f"data_batch_{i}", "rb"))[b"labels"])
             for i in range(1, 6)]
    assert sizes == [2, 2, 1, 1, 1]
    np.testing.assert_array_equal(load_dataset("cifar10", "test", data_dir=tmp_path).labels, [9, 3])


def test_missing_batches_are_listed_per_folder(tmp_path):
    for i in (1, 2, 4, 5):
        write_batch(str(tmp_path / "cifar-10-batches-py" / f"data_batch_{i}"), 1, i)
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(str(tmp_path), train=True)
    message = str(info.value)
    assert f"{tmp_path / 'cifar-10-batches-py'}: missing data_batch_3\n" in message
    assert "cifar-10-python.tar.gz" in message
    with pytest.raises(FileNotFoundError, match="test_batch"):
        CIFAR10(str(tmp_path), train=False)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_refuses_pickles_with_code(tmp_path):
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": [0]}, f)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os|nt)\.system") as info:
        CIFAR10(str(tmp_path), train=False)
    assert isinstance(info.value, ValueError)  # callers catching ValueError see it too
    assert str(tmp_path / "test_batch") in str(info.value)


@pytest.mark.parametrize("content,pattern", [
    ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
     r"data \(2, 100\) and labels \(2,\); expected \(n, 3072\)"),
    ({b"labels": [0]}, "lacks 'data' or 'labels'"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"labels 0..10; expected 0..9"),
    ({b"data": np.full((1, 3072), 300, np.int32), b"labels": [0]}, "data of dtype int32; expected uint8"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": ["a"]}, "labels that are not integers"),
    ([1, 2], "does not hold a dict"),
])
def test_rejects_malformed_batches(tmp_path, content, pattern):
    path = tmp_path / "test_batch"
    with open(path, "wb") as f:
        pickle.dump(content, f, protocol=2)
    with pytest.raises(ValueError, match=pattern) as info:
        CIFAR10(str(tmp_path), train=False)
    assert str(path) in str(info.value) and "cifar-10-python.tar.gz" in str(info.value)


def test_truncated_batch_names_the_file(tmp_path):
    path = tmp_path / "test_batch"
    write_batch(str(path), 4, 0)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=f"{path} is truncated or not a pickle"):
        CIFAR10(str(tmp_path), train=False)


def test_checksum_mismatch_and_match(tmp_path, monkeypatch):
    path = tmp_path / "test_batch"
    write_batch(str(path), 2, 0)
    data = path.read_bytes()
    table = dict(checksums.OFFICIAL_FILES["cifar10"])
    table["test_batch"] = (len(data), hashlib.md5(data).hexdigest())
    monkeypatch.setitem(checksums.OFFICIAL_FILES, "cifar10", table)
    assert len(CIFAR10(str(tmp_path), train=False)) == 2
    table["test_batch"] = (len(data), "f" * 32)
    actual = hashlib.md5(data).hexdigest()
    pattern = f"{path} has the official size .* MD5 {actual}, not the published f{{32}}"
    with pytest.raises(ChecksumError, match=pattern):
        CIFAR10(str(tmp_path), train=False)
