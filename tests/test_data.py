"""pyconv.data: bundled digits, seeded split, TensorDataset, ImageDataset, load_dataset's
registry, Normalize/Compose. (DataLoader: test_data_loader.py; MNIST/IDX: test_data_mnist.py;
CIFAR-10: test_data_cifar.py; image folders: test_data_folder.py.)"""

import importlib.util
import os
import sys

import numpy as np
import pytest

import pyconv
from pyconv.data import (
    DATASETS, Compose, DigitsDataset, ImageDataset, Normalize, TensorDataset, load_dataset,
    load_digits, load_digits_split, read_images, stratified_split,
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


# ----- ImageDataset and load_dataset --------------------------------------------------------


def test_image_dataset_fields_subset_and_label_check():
    images = np.arange(48, dtype=np.float32).reshape(3, 1, 4, 4)
    ds = ImageDataset(images, np.array([2, 0, 1], np.uint8), ["a", "b", "c"])
    assert ds.labels.dtype == np.int64 and ds.images is images and ds.classes == ["a", "b", "c"]
    sub = ds.subset(np.array([2, 0]))
    np.testing.assert_array_equal(sub.images, images[[2, 0]])
    np.testing.assert_array_equal(sub.labels, [1, 2])
    with pytest.raises(ValueError, match=r"labels must lie in 0..1 \(one per class\), got 0..2"):
        ImageDataset(images, np.array([2, 0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match=r"images must be \(N, C, H, W\), got shape \(3, 16\)"):
        ImageDataset(images.reshape(3, 16), np.zeros(3), ["a"])


def test_load_dataset_digits_is_the_seeded_split():
    assert DATASETS == ("digits", "mnist", "fashion-mnist", "cifar10", "folder")
    train = load_dataset("digits", seed=3, test_fraction=0.25)
    test = load_dataset("digits", "test", seed=3, test_fraction=0.25)
    images, labels = load_digits()
    for side, is_train in ((train, True), (test, False)):
        ref = DigitsDataset(train=is_train, seed=3, test_fraction=0.25)
        np.testing.assert_array_equal(side.images, images[ref.indices])
        np.testing.assert_array_equal(side.labels, labels[ref.indices])
        assert side.images.dtype == np.float32 and side.classes == [str(d) for d in range(10)]
    assert len(train) + len(test) == 1797


def test_load_dataset_argument_errors():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; expected one of digits, mnist"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        load_dataset("digits", "val")
    with pytest.raises(TypeError, match=r"dataset 'digits' takes no option\(s\) \['size'\]"):
        load_dataset("digits", size=3)


def test_old_import_paths_still_work():
    from pyconv.data import datasets

    assert datasets.MNIST is pyconv.data.MNIST and datasets.read_idx is pyconv.data.read_idx
    assert datasets.load_digits_split is load_digits_split
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        datasets.nothing


def test_image_files_without_pillow_say_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `import PIL` fail
    with pytest.raises(ImportError, match="read_images: reading image files needs Pillow: pip install pillow"):
        read_images(["x.png"])
