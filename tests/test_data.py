"""pyconv.data: bundled digits, seeded split, TensorDataset, DataLoader, transforms, and the MNIST
and CIFAR-10 readers on small synthetic files written here."""

import gzip
import importlib.util
import os
import pickle
import struct

import numpy as np
import pytest

import pyconv
from pyconv.data import (
    CIFAR10, MNIST, Compose, DataLoader, Dataset, DigitsDataset, Normalize, TensorDataset,
    load_digits, load_digits_split, read_idx, stratified_split,
)

# ----- bundled digits ----------------------------------------------------------------------


def test_load_digits_shapes_dtypes_and_scaling():
    raw, labels = load_digits(normalize=False)
    images, labels2 = load_digits()
    assert raw.shape == (1797, 1, 8, 8) and raw.dtype == np.uint8
    assert raw.min() == 0 and raw.max() == 16
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(10))
    assert images.dtype == np.float32 and images.shape == raw.shape
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_allclose(images, raw.astype(np.float64) / 16, rtol=1e-7)


def test_bundled_digits_equal_scikit_learn_copy():
    # scikit-learn's own data file, read without importing scikit-learn (slow to import)
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-learn is not installed")
    csv = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
    if not os.path.isfile(csv):
        pytest.skip(f"{csv} not found in this scikit-learn version")
    ref = np.loadtxt(csv, delimiter=",")
    raw, labels = load_digits(normalize=False)
    np.testing.assert_array_equal(raw.reshape(1797, 64), ref[:, :64])
    np.testing.assert_array_equal(labels, ref[:, 64])


def test_stratified_split_is_deterministic_disjoint_and_stratified():
    _, labels = load_digits()
    train, test = stratified_split(labels, 0.2, seed=7)
    train2, test2 = stratified_split(labels, 0.2, seed=7)
    np.testing.assert_array_equal(train, train2)
    np.testing.assert_array_equal(test, test2)
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(labels.size))
    counts = np.bincount(labels, minlength=10)
    np.testing.assert_array_equal(np.bincount(labels[test], minlength=10), np.round(counts * 0.2))
    _, other = stratified_split(labels, 0.2, seed=8)
    assert not np.array_equal(test, other)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, True, "0.2"])
def test_stratified_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(np.arange(10) % 2, fraction, seed=0)


def test_stratified_split_rejects_bad_seed_and_empty_side():
    with pytest.raises(TypeError, match="seed must be an int"):
        stratified_split(np.arange(10) % 2, 0.2, seed=1.5)
    with pytest.raises(ValueError, match="both must be non-empty"):
        stratified_split(np.array([0, 1]), 0.2, seed=0)  # round(1 * 0.2) = 0 test samples


def test_digits_dataset_sides_match_the_full_set():
    images, labels = load_digits()
    train = DigitsDataset(train=True, seed=3, test_fraction=0.25)
    test = DigitsDataset(train=False, seed=3, test_fraction=0.25)
    assert train.train and not test.train
    assert len(train) + len(test) == 1797
    assert abs(len(test) - 0.25 * 1797) <= 10
    for side in (train, test):
        np.testing.assert_array_equal(side.arrays[0], images[side.indices])
        np.testing.assert_array_equal(side.arrays[1], labels[side.indices])
    raw_train = DigitsDataset(train=True, seed=3, test_fraction=0.25, normalize=False)
    assert raw_train.arrays[0].dtype == np.uint8
    np.testing.assert_array_equal(raw_train.indices, train.indices)


def test_load_digits_split_gives_the_dataset_sides_as_arrays():
    (train_x, train_y), (test_x, test_y) = load_digits_split(seed=4)
    for arrays, train in (((train_x, train_y), True), ((test_x, test_y), False)):
        side = DigitsDataset(train=train, seed=4)
        np.testing.assert_array_equal(arrays[0], side.arrays[0])
        np.testing.assert_array_equal(arrays[1], side.arrays[1])
    assert train_x.shape == (1438, 1, 8, 8) and test_y.shape == (359,)
    with pytest.raises(ValueError, match="load_digits_split: test_fraction"):
        load_digits_split(test_fraction=2)


# ----- TensorDataset -----------------------------------------------------------------------


def test_tensor_dataset_items_batches_and_transform():
    x = np.arange(24, dtype=np.float32).reshape(6, 1, 2, 2)
    y = np.arange(6) % 3
    ds = TensorDataset(pyconv.tensor(x), y, transform=lambda a: a * 2)
    assert len(ds) == 6
    xi, yi = ds[4]
    assert isinstance(xi, pyconv.Tensor) and isinstance(yi, pyconv.Tensor)
    np.testing.assert_array_equal(xi.numpy(), x[4] * 2)
    assert yi.item() == y[4]
    xb, yb = ds.get_batch(np.array([5, 0, 2]))
    np.testing.assert_array_equal(xb, x[[5, 0, 2]] * 2)
    np.testing.assert_array_equal(yb, y[[5, 0, 2]])
    np.testing.assert_array_equal(ds.tensors[0].numpy(), x)  # untransformed
    np.testing.assert_array_equal(ds[-1][0].numpy(), x[5] * 2)


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match=r"tensor 1 has 5 samples \(shape \(5,\)\) but tensor 0 has 6"):
        TensorDataset(np.zeros((6, 2)), np.zeros(5))
    with pytest.raises(TypeError, match="tensor 0 must be a pyconv Tensor or a NumPy array"):
        TensorDataset([1, 2, 3])
    with pytest.raises(ValueError, match="tensor 0 is 0-dimensional"):
        TensorDataset(np.array(1.0, dtype=np.float32))
    with pytest.raises(TypeError, match="transform must be callable"):
        TensorDataset(np.zeros(3), transform=3)
    ds = TensorDataset(np.zeros(3))
    with pytest.raises(IndexError, match="index 3 is out of range for 3 samples"):
        ds[3]
    with pytest.raises(TypeError, match="index must be an int"):
        ds[1.0]


# ----- DataLoader --------------------------------------------------------------------------


def _dataset(n=10):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return TensorDataset(x, np.arange(n))


@pytest.mark.parametrize("n,batch,drop_last", [(10, 3, False), (10, 3, True), (10, 5, True),
                                               (10, 5, False), (7, 10, False), (1, 1, False)])
def test_loader_batches_in_order(n, batch, drop_last):
    ds = _dataset(n)
    loader = DataLoader(ds, batch_size=batch, drop_last=drop_last)
    batches = list(loader)
    assert len(batches) == len(loader)
    sizes = [b[1].shape[0] for b in batches]
    full, rest = divmod(n, batch)
    assert sizes == [batch] * full + ([] if drop_last or rest == 0 else [rest])
    if sizes:
        labels = np.concatenate([b[1].numpy() for b in batches])
        np.testing.assert_array_equal(labels, np.arange(len(labels)))
        for xb, yb in batches:
            assert isinstance(xb, pyconv.Tensor) and xb.dtype == np.float32
            np.testing.assert_array_equal(xb.numpy(), ds.arrays[0][yb.numpy()])


def test_loader_takes_a_tuple_of_arrays_as_a_tensor_dataset():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    y = np.arange(5)
    batches = list(DataLoader((x, pyconv.tensor(y)), batch_size=2))
    assert [b[0].shape for b in batches] == [(2, 2), (2, 2), (1, 2)]
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)
    with pytest.raises(ValueError, match="tensor 1 has 4 samples"):
        DataLoader((x, y[:4]))


def test_loader_drop_last_with_fewer_samples_than_a_batch_yields_nothing():
    loader = DataLoader(_dataset(4), batch_size=5, drop_last=True)
    assert len(loader) == 0 and list(loader) == []


def _epoch_labels(loader):
    return np.concatenate([yb.numpy() for _, yb in loader])


def test_loader_shuffle_with_seed_is_a_reproducible_permutation_per_pass():
    ds = _dataset(50)
    a = DataLoader(ds, batch_size=8, shuffle=True, seed=11)
    b = DataLoader(ds, batch_size=8, shuffle=True, seed=11)
    first, second = _epoch_labels(a), _epoch_labels(a)
    for order in (first, second):
        np.testing.assert_array_equal(np.sort(order), np.arange(50))
    assert not np.array_equal(first, np.arange(50))
    assert not np.array_equal(first, second)  # a new order every pass
    np.testing.assert_array_equal(_epoch_labels(b), first)
    np.testing.assert_array_equal(_epoch_labels(b), second)
    c = DataLoader(ds, batch_size=8, shuffle=True, seed=12)
    assert not np.array_equal(_epoch_labels(c), first)


def test_loader_shuffle_without_seed_follows_manual_seed():
    ds = _dataset(40)
    loader = DataLoader(ds, batch_size=16, shuffle=True)
    pyconv.manual_seed(5)
    first = _epoch_labels(loader)
    pyconv.manual_seed(5)
    again = _epoch_labels(loader)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(np.sort(first), np.arange(40))
    shuffled_drop = _epoch_labels(DataLoader(ds, batch_size=16, shuffle=True, drop_last=True))
    assert shuffled_drop.size == 32 and np.unique(shuffled_drop).size == 32


class _CountingDataset(TensorDataset):
    def __init__(self, *arrays):
        super().__init__(*arrays)
        self.item_calls = 0
        self.batch_calls = 0

    def __getitem__(self, index):
        self.item_calls += 1
        return super().__getitem__(index)

    def get_batch(self, indices):
        self.batch_calls += 1
        return super().get_batch(indices)


def test_loader_indexes_array_backed_datasets_once_per_batch():
    ds = _CountingDataset(np.zeros((20, 3), np.float32), np.arange(20))
    assert len(list(DataLoader(ds, batch_size=6, shuffle=True, seed=0))) == 4
    assert ds.batch_calls == 4 and ds.item_calls == 0


class _SampleDataset(Dataset):
    """Not array-backed: samples are made one at a time."""

    def __init__(self, n, tuples=True):
        self.n, self.tuples = n, tuples

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = np.full((2, 2), i, dtype=np.float64)
        return (x, i) if self.tuples else x


def test_loader_stacks_samples_of_other_datasets():
    xb, yb = next(iter(DataLoader(_SampleDataset(5), batch_size=3)))
    assert xb.shape == (3, 2, 2) and xb.dtype == np.float64
    assert yb.dtype == np.int64
    np.testing.assert_array_equal(yb.numpy(), [0, 1, 2])
    np.testing.assert_array_equal(xb.numpy()[:, 0, 0], [0, 1, 2])
    single = list(DataLoader(_SampleDataset(5, tuples=False), batch_size=2))
    assert [b.shape for b in single] == [(2, 2, 2), (2, 2, 2), (1, 2, 2)]


def test_loader_argument_errors():
    ds = _dataset(4)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        DataLoader(ds, batch_size=2.0)
    with pytest.raises(TypeError, match="seed must be an int or None"):
        DataLoader(ds, seed=1.5)
    with pytest.raises(TypeError, match="dataset must define __len__ and __getitem__"):
        DataLoader(object())


# ----- transforms --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_per_channel(shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    mean, std = [0.1, -0.2, 0.3], [0.5, 2.0, 1.5]
    out = Normalize(mean, std)(x)
    assert out.dtype == dtype and out.shape == shape
    expected = np.empty(shape)
    for c in range(3):
        expected[..., c, :, :] = (x[..., c, :, :].astype(np.float64) - mean[c]) / std[c]
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


def test_normalize_scalar_uint8_and_tensor_inputs():
    raw = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    out = Normalize(8, 4)(raw)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (raw.astype(np.float64) - 8) / 4)
    t = pyconv.tensor(np.ones((2, 3, 2, 2)))
    out_t = Normalize([1.0, 0.0, 2.0], [1.0, 2.0, 4.0])(t)
    assert isinstance(out_t, pyconv.Tensor) and out_t.dtype == np.float64
    np.testing.assert_allclose(out_t.numpy()[0, :, 0, 0], [0.0, 0.5, -0.25])


def test_normalize_errors():
    with pytest.raises(ValueError, match=r"input has 2 channels \(shape \(2, 4, 4\)\) but mean/std have 3"):
        Normalize([0, 0, 0], [1, 1, 1])(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="input has 2 dimensions"):
        Normalize([0, 0, 0], [1, 1, 1])(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="std must be finite and non-zero"):
        Normalize(0.0, [1.0, 0.0])
    with pytest.raises(ValueError, match="mean has 2 values but std has 3"):
        Normalize([0, 0], [1, 1, 1])
    with pytest.raises(TypeError, match="mean must be a number or a sequence"):
        Normalize("a", 1)


def test_compose_applies_in_order():
    pipeline = Compose([lambda a: a + 1, lambda a: a * 10, Normalize(5.0, 5.0)])
    np.testing.assert_allclose(pipeline(np.zeros((1, 1, 1), np.float32)), [[[1.0]]])
    assert "Normalize" in repr(pipeline)
    with pytest.raises(TypeError, match=r"transforms\[1\] is not callable"):
        Compose([abs, 3])


def test_loader_applies_transform_to_whole_batches():
    images, labels = load_digits()
    ds = TensorDataset(images, labels, transform=Normalize(0.5, 0.25))
    xb, yb = next(iter(DataLoader(ds, batch_size=7)))
    np.testing.assert_allclose(xb.numpy(), (images[:7] - 0.5) / 0.25, rtol=1e-6)


# ----- MNIST on synthetic IDX files ----------------------------------------------------------


def _write_idx(path, array, type_code=0x08, compress=False):
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + big_endian.tobytes())


def _mnist_files(root, prefix, n, seed, compress=False):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    suffix = ".gz" if compress else ""
    os.makedirs(root, exist_ok=True)
    _write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte{suffix}"), images, compress=compress)
    _write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte{suffix}"), labels, compress=compress)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_train_and_test_idx_files(tmp_path, compress):
    train_images, train_labels = _mnist_files(tmp_path, "train", 5, 0, compress)
    test_images, test_labels = _mnist_files(tmp_path, "t10k", 3, 1, compress)
    train = MNIST(str(tmp_path), train=True)
    test = MNIST(str(tmp_path), train=False, normalize=False)
    assert len(train) == 5 and len(test) == 3
    x, y = train.arrays
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], train_images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, train_labels)
    np.testing.assert_array_equal(test.arrays[0][:, 0], test_images)
    np.testing.assert_array_equal(test.arrays[1], test_labels)


def test_mnist_accepts_torchvision_layout(tmp_path):
    images, _ = _mnist_files(tmp_path / "MNIST" / "raw", "t10k", 2, 3, compress=True)
    test = MNIST(str(tmp_path), train=False, normalize=False)
    np.testing.assert_array_equal(test.arrays[0][:, 0], images)


def test_mnist_missing_files_name_the_expected_paths(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        MNIST(str(tmp_path), train=True)
    message = str(info.value)
    assert os.path.join(str(tmp_path), "train-images-idx3-ubyte") in message
    assert "train-images-idx3-ubyte.gz" in message and "does not download" in message
    _mnist_files(tmp_path, "train", 2, 0)
    os.remove(tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        MNIST(str(tmp_path), train=True)


def test_mnist_rejects_mismatched_counts(tmp_path):
    _mnist_files(tmp_path, "train", 4, 0)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"labels \(N,\), got \(4, 28, 28\) and \(3,\)"):
        MNIST(str(tmp_path))


@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                        (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)])
def test_read_idx_every_type_code(tmp_path, dtype, code):
    values = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = tmp_path / "x.idx"
    _write_idx(path, values, type_code=code)
    out = read_idx(str(path))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_read_idx_rejects_corrupt_files(tmp_path):
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(str(bad_magic))
    truncated = tmp_path / "short"
    _write_idx(truncated, np.zeros((2, 3), np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"holds 17 bytes but its header \(shape \(2, 3\), uint8\) implies 18"):
        read_idx(str(truncated))


# ----- CIFAR-10 on synthetic pickle batches --------------------------------------------------


def _write_cifar_batch(path, n, seed, protocol=2):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    with open(path, "wb") as f:
        # bytes keys and a list of labels, as in the official (Python 2) batches
        pickle.dump({b"batch_label": b"synthetic", b"data": data, b"labels": labels,
                     b"filenames": [b"x.png"] * n}, f, protocol=protocol)
    return data, labels


def test_cifar10_reads_train_and_test_batches(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    parts = [_write_cifar_batch(base / f"data_batch_{i}", 2 + i, i, protocol=2 + i % 3)
             for i in range(1, 6)]
    test_data, test_labels = _write_cifar_batch(base / "test_batch", 3, 9)
    train = CIFAR10(str(tmp_path), train=True)
    x, y = train.arrays
    assert x.shape == (sum(2 + i for i in range(1, 6)), 3, 32, 32) and x.dtype == np.float32
    data = np.concatenate([p[0] for p in parts])
    np.testing.assert_array_equal(y, np.concatenate([p[1] for p in parts]))
    rng = np.random.default_rng(0)
    for _ in range(20):  # pixel (c, h, w) of image i is byte c*1024 + h*32 + w of its row
        i, c, h, w = rng.integers(0, x.shape[0]), rng.integers(0, 3), rng.integers(0, 32), rng.integers(0, 32)
        assert x[i, c, h, w] == np.float32(data[i, c * 1024 + h * 32 + w] / 255.0)
    test = CIFAR10(str(base), train=False, normalize=False)  # batches directly in root
    assert test.arrays[0].dtype == np.uint8
    np.testing.assert_array_equal(test.arrays[0].reshape(3, -1), test_data)
    np.testing.assert_array_equal(test.arrays[1], test_labels)


def test_cifar10_missing_batch_names_the_expected_paths(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(str(tmp_path), train=True)
    assert os.path.join(str(tmp_path), "cifar-10-batches-py", "data_batch_1") in str(info.value)
    with pytest.raises(FileNotFoundError, match="test_batch"):
        CIFAR10(str(tmp_path), train=False)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_cifar10_refuses_pickles_with_code(tmp_path):
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": [0]}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        CIFAR10(str(tmp_path), train=False)


def test_cifar10_rejects_malformed_batches(tmp_path):
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"data \(2, 100\) and labels \(2,\); expected \(n, 3072\)"):
        CIFAR10(str(tmp_path), train=False)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"labels": [0]}, f)
    with pytest.raises(ValueError, match="lacks 'data' or 'labels'"):
        CIFAR10(str(tmp_path), train=False)
