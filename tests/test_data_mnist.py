"""IDX files, MNIST and Fashion-MNIST readers, and the official-checksum logic, on small files
written here byte by byte (the header built with struct, independently of pyconv's writer)."""

import gzip
import hashlib
import os
import struct
import warnings

import numpy as np
import pytest

from pyconv.data import (
    MNIST, ChecksumError, DatasetNotice, FashionMNIST, load_dataset, read_idx, write_idx,
    write_mnist_folder,
)
from pyconv.data import checksums

pytestmark = pytest.mark.filterwarnings("ignore::pyconv.data.DatasetNotice")

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
         np.float64: 0x0E}


def idx_bytes(array, type_code=None):
    """The IDX encoding of ``array``, built by hand."""
    code = CODES[array.dtype.type] if type_code is None else type_code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def put(path, payload, compress=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(payload)


def mnist_arrays(n, seed, size=28):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, size, size), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.uint8))


def put_split(folder, prefix, images, labels, compress=False):
    suffix = ".gz" if compress else ""
    put(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"), idx_bytes(images), compress)
    put(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), idx_bytes(labels), compress)


# ----- IDX ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip_matches_the_hand_built_encoding(tmp_path, dtype, compress):
    values = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = str(tmp_path / ("x.idx" + (".gz" if compress else "")))
    write_idx(path, values)
    raw = gzip.open(path).read() if compress else open(path, "rb").read()
    assert raw == idx_bytes(values)
    put(str(tmp_path / "hand.idx"), idx_bytes(values))
    for p in (path, str(tmp_path / "hand.idx")):
        out = read_idx(p)
        assert out.dtype == np.dtype(dtype) and out.dtype.isnative
        np.testing.assert_array_equal(out, values)


def test_write_idx_rejects_unsupported_dtypes(tmp_path):
    with pytest.raises(TypeError, match="dtype must be one of .* got int64"):
        write_idx(str(tmp_path / "x"), np.zeros(3, np.int64))


def test_read_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match=f"{bad} is not an IDX file .*01000801"):
        read_idx(str(bad))
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((2, 3), np.uint8))[:-1])
    pattern = rf"{short} holds 17 bytes but its header \(shape \(2, 3\), uint8\) implies 18"
    with pytest.raises(ValueError, match=pattern):
        read_idx(str(short))
    header_cut = tmp_path / "cut"
    header_cut.write_bytes(idx_bytes(np.zeros((2, 3), np.uint8))[:9])
    with pytest.raises(ValueError, match=f"{header_cut} is truncated inside its header"):
        read_idx(str(header_cut))
    not_gzip = tmp_path / "x.gz"
    not_gzip.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match=f"{not_gzip} is not a valid gzip file"):
        read_idx(str(not_gzip))
    cut_gzip = tmp_path / "y.gz"
    cut_gzip.write_bytes(gzip.compress(idx_bytes(np.zeros(300, np.uint8)))[:-12])
    with pytest.raises(ValueError, match=f"{cut_gzip} is not a valid gzip file"):
        read_idx(str(cut_gzip))


# ----- MNIST / Fashion-MNIST ------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_train_and_test(tmp_path, compress):
    train_x, train_y = mnist_arrays(5, 0)
    test_x, test_y = mnist_arrays(3, 1)
    put_split(str(tmp_path), "train", train_x, train_y, compress)
    put_split(str(tmp_path), "t10k", test_x, test_y, compress)
    train = MNIST(str(tmp_path), train=True)
    test = MNIST(str(tmp_path), train=False, normalize=False)
    assert train.images.shape == (5, 1, 28, 28) and train.images.dtype == np.float32
    np.testing.assert_allclose(train.images[:, 0], train_x / 255.0, rtol=1e-6)
    assert train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.labels, train_y)
    np.testing.assert_array_equal(test.images[:, 0], test_x)
    np.testing.assert_array_equal(test.labels, test_y)
    assert train.classes == [str(d) for d in range(10)]


@pytest.mark.parametrize("cls,sub", [(MNIST, ""), (MNIST, "MNIST/raw"), (MNIST, "mnist"),
                                     (FashionMNIST, ""), (FashionMNIST, "FashionMNIST/raw"),
                                     (FashionMNIST, "fashion-mnist")])
def test_mnist_and_fashion_layouts(tmp_path, cls, sub):
    images, labels = mnist_arrays(4, 2)
    put_split(os.path.join(str(tmp_path), sub), "t10k", images, labels, compress=True)
    ds = cls(str(tmp_path), train=False, normalize=False)
    np.testing.assert_array_equal(ds.images[:, 0], images)
    if cls is FashionMNIST:
        assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"


def test_fashion_does_not_read_the_mnist_subfolder(tmp_path):
    put_split(str(tmp_path / "mnist"), "train", *mnist_arrays(2, 0))
    with pytest.raises(FileNotFoundError, match="fashion-mnist"):
        FashionMNIST(str(tmp_path))


def test_load_dataset_mnist_uses_data_dir_or_the_environment(tmp_path, monkeypatch):
    train = tuple(a.copy() for a in mnist_arrays(6, 3, size=8))
    test = mnist_arrays(4, 4, size=8)
    write_mnist_folder(tmp_path / "fashion-mnist", train=train, test=test, gzip=True)
    monkeypatch.setenv("PYCONV_DATA", str(tmp_path))
    ds = load_dataset("fashion-mnist", "test")
    assert ds.images.shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(ds.labels, test[1])
    monkeypatch.delenv("PYCONV_DATA")
    again = load_dataset("fashion-mnist", "train", data_dir=tmp_path / "fashion-mnist")
    np.testing.assert_allclose(again.images[:, 0], train[0] / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"no data folder given: pass data_dir .* \$PYCONV_DATA"):
        load_dataset("mnist")


def test_writer_magic_numbers_are_mnists(tmp_path):
    images, labels = mnist_arrays(3, 5)
    paths = write_mnist_folder(tmp_path, train=(images[:, None], labels), test=(images, labels))
    heads = {os.path.basename(p): open(p, "rb").read(4) for p in paths}
    assert heads["train-images-idx3-ubyte"] == b"\x00\x00\x08\x03"
    assert heads["t10k-labels-idx1-ubyte"] == b"\x00\x00\x08\x01"
    assert open(paths[0], "rb").read() == idx_bytes(images)


def test_writer_argument_errors(tmp_path):
    images, labels = mnist_arrays(3, 5)
    with pytest.raises(TypeError, match="train images must be uint8"):
        write_mnist_folder(tmp_path, train=(images.astype(np.float32), labels), test=(images, labels))
    with pytest.raises(ValueError, match=r"test labels must lie in 0..9, got 0..12"):
        write_mnist_folder(tmp_path, train=(images, labels), test=(images, np.array([0, 1, 12])))


def test_missing_files_say_where_we_looked_and_where_to_get_them(tmp_path):
    put(str(tmp_path / "train-images-idx3-ubyte"), idx_bytes(mnist_arrays(2, 0)[0]))
    with pytest.raises(FileNotFoundError) as info:
        MNIST(str(tmp_path))
    message = str(info.value)
    assert f"{tmp_path}: missing train-labels-idx1-ubyte[.gz]" in message
    assert f"{tmp_path / 'MNIST' / 'raw'}: no such folder" in message
    assert "yann.lecun.com/exdb/mnist" in message and "does not download" in message
    assert "train-images-idx3-ubyte[.gz]" not in message.split("Looked in:")[1]


def test_swapped_files_are_rejected_by_magic_number(tmp_path):
    images, labels = mnist_arrays(3, 0)
    put(str(tmp_path / "train-images-idx3-ubyte"), idx_bytes(labels))
    put(str(tmp_path / "train-labels-idx1-ubyte"), idx_bytes(images))
    pattern = (r"train-images-idx3-ubyte has IDX magic number 0x00000801 but an images file "
               r"must start with 0x00000803")
    with pytest.raises(ValueError, match=pattern):
        MNIST(str(tmp_path))
    put(str(tmp_path / "train-images-idx3-ubyte"), idx_bytes(images.astype(np.float32)))
    with pytest.raises(ValueError, match="magic number 0x00000D03"):
        MNIST(str(tmp_path))


def test_count_mismatch_truncation_and_bad_labels_name_the_file(tmp_path):
    images, labels = mnist_arrays(4, 0)
    put_split(str(tmp_path), "train", images, labels[:3])
    pattern = r"train-labels-idx1-ubyte holds 3 labels but .*train-images-idx3-ubyte holds 4 images"
    with pytest.raises(ValueError, match=pattern):
        MNIST(str(tmp_path))
    put(str(tmp_path / "train-labels-idx1-ubyte"), idx_bytes(np.array([0, 1, 10, 2], np.uint8)))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte holds label 10; expected 0..9"):
        MNIST(str(tmp_path))
    put(str(tmp_path / "train-labels-idx1-ubyte"), idx_bytes(labels)[:-2])
    with pytest.raises(ValueError, match="MNIST: .*train-labels-idx1-ubyte holds 10 bytes but") as info:
        MNIST(str(tmp_path))
    assert "\nThe official files: http://yann.lecun.com/exdb/mnist/" in str(info.value)


# ----- checksums ----------------------------------------------------------------------------


def test_official_table_is_consistent():
    for dataset, files in checksums.OFFICIAL_FILES.items():
        for name, (size, digest) in files.items():
            assert len(digest) == 32 and int(digest, 16) >= 0, (dataset, name)
    mnist = checksums.OFFICIAL_FILES["mnist"]
    # raw sizes follow from the headers: 16 + 60000*28*28, 8 + 10000
    assert mnist["train-images-idx3-ubyte"][0] == 16 + 60000 * 28 * 28
    assert mnist["t10k-labels-idx1-ubyte"][0] == 8 + 10000
    assert checksums.OFFICIAL_FILES["fashion-mnist"]["t10k-images-idx3-ubyte"][0] == 16 + 10000 * 784


def _official(monkeypatch, dataset, path, digest=None):
    data = open(path, "rb").read()
    digest = hashlib.md5(data).hexdigest() if digest is None else digest
    table = dict(checksums.OFFICIAL_FILES[dataset])
    table[os.path.basename(path)] = (len(data), digest)
    monkeypatch.setitem(checksums.OFFICIAL_FILES, dataset, table)


@pytest.mark.parametrize("compress", [False, True])
def test_checksum_of_an_official_size_file(tmp_path, monkeypatch, compress):
    images, labels = mnist_arrays(3, 0)
    put_split(str(tmp_path), "t10k", images, labels, compress)
    suffix = ".gz" if compress else ""
    labels_path = str(tmp_path / f"t10k-labels-idx1-ubyte{suffix}")
    _official(monkeypatch, "mnist", labels_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MNIST(str(tmp_path), train=False)
    notices = [str(w.message) for w in caught if issubclass(w.category, DatasetNotice)]
    assert len(notices) == 1 and "t10k-images-idx3-ubyte" in notices[0]  # labels: verified
    assert "not the official" in notices[0]
    wrong = "0" * 32
    _official(monkeypatch, "mnist", labels_path, digest=wrong)
    actual = hashlib.md5(open(labels_path, "rb").read()).hexdigest()
    with pytest.raises(ChecksumError) as info:
        MNIST(str(tmp_path), train=False)
    message = str(info.value)
    assert labels_path in message and wrong in message and actual in message
    assert "yann.lecun.com" in message


def test_fashion_files_in_the_mnist_table_fail_their_checksum(tmp_path, monkeypatch):
    # same size, other digest: the check tells the two datasets apart
    images, labels = mnist_arrays(2, 0)
    put_split(str(tmp_path), "train", images, labels)
    path = str(tmp_path / "train-labels-idx1-ubyte")
    _official(monkeypatch, "fashion-mnist", path)
    FashionMNIST(str(tmp_path))
    _official(monkeypatch, "mnist", path, digest=hashlib.md5(b"other").hexdigest())
    with pytest.raises(ChecksumError, match="train-labels-idx1-ubyte has the official size"):
        MNIST(str(tmp_path))
