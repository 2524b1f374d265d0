"""Datasets: the bundled digits, MNIST from local IDX files, CIFAR-10 from its local python
pickles, and ``TensorDataset`` over arrays or tensors.

Every dataset here is array-backed: it holds one NumPy array per field with the sample axis
first, returns one sample as a tuple of tensors from ``dataset[i]``, and a whole batch as a tuple
of arrays from ``dataset.get_batch(indices)`` (one fancy-indexing operation per field), which is
what :class:`~pyconv.data.DataLoader` uses.

Shapes (NCHW, as the conv layers expect):

* digits: images (N, 1, 8, 8), N = 1797 in all;
* MNIST: images (N, 1, 28, 28), N = 60000 (train) / 10000 (test);
* CIFAR-10: images (N, 3, 32, 32), N = 50000 / 10000;
* labels: int64 (N,).

With ``normalize=True`` (the default) images are float32 scaled to [0, 1] (digits divide by 16,
MNIST and CIFAR-10 by 255); with ``normalize=False`` they are the raw uint8 values. Nothing is
ever downloaded: MNIST and CIFAR-10 read files the user placed under ``root``.
"""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np

from ..tensor import Tensor

__all__ = [
    "CIFAR10",
    "Dataset",
    "DigitsDataset",
    "MNIST",
    "TensorDataset",
    "load_digits",
    "load_digits_split",
    "read_idx",
    "stratified_split",
]

DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")


class Dataset:
    """The dataset protocol: ``len(dataset)`` samples and ``dataset[i]`` one sample (a tuple of
    tensors/arrays, or a single one). Subclass and implement both, as with PyTorch.

    Array-backed datasets also define ``get_batch(indices) -> tuple of arrays`` (leading axis
    ``len(indices)``); :class:`~pyconv.data.DataLoader` then builds each batch with one indexing
    operation per field instead of stacking samples one by one.
    """

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")


def _as_numpy(value, op: str, name: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return np.asarray(value.detach())
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(
        f"{op}: {name} must be a pyconv Tensor or a NumPy array, got {type(value).__name__}")


class TensorDataset(Dataset):
    """Samples are the rows of equally long arrays or tensors (sample axis first).

    ``TensorDataset(images, labels)``: ``dataset[i]`` is ``(images[i], labels[i])`` as tensors
    and ``get_batch(idx)`` is ``(images[idx], labels[idx])`` as arrays. ``transform``, if given,
    is applied to the first field only (the inputs), on one sample or on a whole batch alike (see
    :mod:`pyconv.data.transforms`).
    """

    def __init__(self, *tensors, transform=None):
        op = type(self).__name__
        if not tensors:
            raise ValueError(f"{op}: expected at least one tensor or array, got none")
        arrays = tuple(_as_numpy(t, op, f"tensor {i}") for i, t in enumerate(tensors))
        for i, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(
                    f"{op}: tensor {i} is 0-dimensional; expected a leading sample axis")
            if a.shape[0] != arrays[0].shape[0]:
                raise ValueError(
                    f"{op}: tensor {i} has {a.shape[0]} samples (shape {a.shape}) but tensor 0 "
                    f"has {arrays[0].shape[0]} (shape {arrays[0].shape}); all must match"
                )
        if transform is not None and not callable(transform):
            raise TypeError(f"{op}: transform must be callable, got {type(transform).__name__}")
        self.arrays = arrays
        self.transform = transform

    @property
    def tensors(self) -> tuple:
        """The fields as tensors sharing memory with the arrays (untransformed)."""
        return tuple(Tensor._wrap(a) for a in self.arrays)

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def _transformed(self, fields: list) -> tuple:
        if self.transform is not None:
            fields[0] = self.transform(fields[0])
        return tuple(fields)

    def __getitem__(self, index):
        n = len(self)
        op = type(self).__name__
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"{op}: index must be an int, got {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"{op}: index {index} is out of range for {n} samples")
        fields = self._transformed([a[index] for a in self.arrays])
        return tuple(Tensor._wrap(np.asarray(f)) for f in fields)

    def get_batch(self, indices) -> tuple:
        """The samples at ``indices`` (int array (B,)) as a tuple of arrays (B, ...)."""
        return self._transformed([a[indices] for a in self.arrays])


# ----- the bundled digits ------------------------------------------------------------------


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    with np.load(DIGITS_PATH) as f:
        return f["images"], f["labels"]


def _scaled(images: np.ndarray, maximum: float, normalize: bool) -> np.ndarray:
    """uint8 images to float32 in [0, 1] when ``normalize``, else unchanged."""
    if not normalize:
        return images
    return images.astype(np.float32) / np.float32(maximum)


def load_digits(normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All 1797 bundled 8x8 digits (UCI optdigits test set, see DIGITS_LICENSE.txt).

    Returns ``(images, labels)``: images (1797, 1, 8, 8), float32 in [0, 1] when ``normalize``
    (pixel counts / 16) else uint8 0..16; labels int64 (1797,) in 0..9. Fresh arrays each call.
    """
    images, labels = _digits_arrays()
    return _scaled(images[:, None], 16.0, normalize), labels


def stratified_split(labels, test_fraction: float, seed: int, op: str = "stratified_split"):
    """Seeded stratified split: in each class, ``round(count * test_fraction)`` randomly chosen
    samples go to the test side, so both sides keep the class proportions.

    labels: int array (N,). Returns ``(train_indices, test_indices)``, int64, each sorted.
    The same (labels, test_fraction, seed) always gives the same split.
    """
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not 0 < test_fraction < 1):
        raise ValueError(f"{op}: test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{op}: seed must be an int, got {type(seed).__name__}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(int(seed))
    test_parts = []
    for cls in np.unique(labels):  # one draw per class (10 for digits), not per sample
        members = np.flatnonzero(labels == cls)
        n_test = int(round(members.size * test_fraction))
        test_parts.append(rng.permutation(members)[:n_test])
    test = np.sort(np.concatenate(test_parts)).astype(np.int64)
    is_test = np.zeros(labels.shape[0], dtype=bool)
    is_test[test] = True
    train = np.flatnonzero(~is_test).astype(np.int64)
    if train.size == 0 or test.size == 0:
        raise ValueError(
            f"{op}: test_fraction={test_fraction} leaves {train.size} training and {test.size} "
            f"test samples out of {labels.shape[0]}; both must be non-empty"
        )
    return train, test


class DigitsDataset(TensorDataset):
    """One side of the seeded stratified train/test split of the bundled digits.

    ``DigitsDataset(train=True, seed=0, test_fraction=0.2)``: ``arrays = (images, labels)`` with
    images (n, 1, 8, 8) and labels int64 (n,); n = 1438 (train) or 359 (test) with the default
    fraction. Both sides of one (seed, test_fraction) are disjoint and together cover all 1797.
    """

    def __init__(self, train: bool = True, seed: int = 0, test_fraction: float = 0.2,
                 normalize: bool = True, transform=None):
        images, labels = load_digits(normalize)
        train_idx, test_idx = stratified_split(labels, test_fraction, seed, op="DigitsDataset")
        idx = train_idx if train else test_idx
        super().__init__(images[idx], labels[idx], transform=transform)
        self.train = train
        self.seed = seed
        self.test_fraction = test_fraction
        self.indices = idx  # positions in load_digits() order
        self.classes = list(range(10))


def load_digits_split(seed: int = 0, test_fraction: float = 0.2, normalize: bool = True):
    """The seeded stratified split of the bundled digits as arrays:
    ``(train_images, train_labels), (test_images, test_labels)``, images (n, 1, 8, 8) and
    labels int64 (n,) as :func:`load_digits` gives them; the same samples, in the same order,
    as ``DigitsDataset(train=True/False, seed, test_fraction)``."""
    images, labels = load_digits(normalize)
    train, test = stratified_split(labels, test_fraction, seed, op="load_digits_split")
    return (images[train], labels[train]), (images[test], labels[test])


# ----- MNIST (IDX files) -------------------------------------------------------------------

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (LeCun's MNIST format; ``.gz`` files are decompressed).

    Header: two zero bytes, a type code (0x08 uint8 ... 0x0E float64), the number of dimensions,
    then each dimension as a big-endian int32; then the values, big-endian, row-major.
    Returns an array of that shape in native byte order.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"read_idx: {path} holds {len(raw)} bytes but its header (shape {shape}, "
            f"{dtype.newbyteorder('=')}) implies {expected}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_file(op: str, root: str, names: list[str], what: str, hint: str) -> str:
    """The first existing ``root/name`` among ``names``; FileNotFoundError listing them all."""
    candidates = [os.path.join(root, n) for n in names]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"{op}: cannot find the {what}; looked for " + ", ".join(candidates) + f". {hint}"
    )


class MNIST(TensorDataset):
    """MNIST from the four IDX files under ``root`` (nothing is downloaded).

    Reads ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (``train=True``) or
    ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``),
    from ``root`` or ``root/MNIST/raw`` (torchvision's layout). images (N, 1, 28, 28), labels
    int64 (N,). Any IDX image file of shape (N, H, W) works (e.g. Fashion-MNIST).
    """

    classes = list(range(10))
    _HINT = ("pyconv does not download datasets: copy the MNIST IDX files (optionally .gz) into "
             "that directory")

    def __init__(self, root: str, train: bool = True, normalize: bool = True, transform=None):
        prefix = "train" if train else "t10k"
        images = read_idx(self._locate(root, f"{prefix}-images-idx3-ubyte", f"{prefix} images"))
        labels = read_idx(self._locate(root, f"{prefix}-labels-idx1-ubyte", f"{prefix} labels"))
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"MNIST: expected images (N, H, W) and labels (N,), got {images.shape} and "
                f"{labels.shape} in {root}"
            )
        super().__init__(_scaled(images[:, None], 255.0, normalize), labels.astype(np.int64),
                         transform=transform)
        self.root = root
        self.train = train

    def _locate(self, root: str, name: str, what: str) -> str:
        names = [name, name + ".gz", os.path.join("MNIST", "raw", name),
                 os.path.join("MNIST", "raw", name + ".gz")]
        return _find_file("MNIST", root, names, what, self._HINT)


# ----- CIFAR-10 (python pickle batches) ----------------------------------------------------

# What the official batches reference (pickled by Python 2 with NumPy 1.x) and what Python 3
# with NumPy 2 writes. Anything else in a pickle is refused: unpickling can run arbitrary code.
_ALLOWED_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes with pickle protocol 2
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"CIFAR10: refusing to load {module}.{name} from a batch file (only NumPy arrays "
                f"and plain Python values are allowed)"
            )
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]  # NumPy 2 moved numpy.core
        return super().find_class(module, name)


def _read_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (images uint8 (n, 3, 32, 32), labels int64 (n,))."""
    with open(path, "rb") as f:
        batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    if not isinstance(batch, dict):
        raise ValueError(f"CIFAR10: {path} does not hold a dict (got {type(batch).__name__})")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"CIFAR10: {path} lacks 'data' or 'labels' (keys: {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise ValueError(
            f"CIFAR10: {path} has data {data.shape} and labels {labels.shape}; expected "
            f"(n, 3072) and (n,)"
        )
    if data.dtype != np.uint8 and data.size and (data.min() < 0 or data.max() > 255):
        raise ValueError(f"CIFAR10: {path} has pixel values outside 0..255")
    # each row is the red plane, then green, then blue, each 32x32 row-major: already CHW
    return data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32), labels


class CIFAR10(TensorDataset):
    """CIFAR-10 from the "python version" batches under ``root`` (nothing is downloaded).

    Reads ``data_batch_1`` .. ``data_batch_5`` (``train=True``) or ``test_batch`` from
    ``root/cifar-10-batches-py`` or ``root`` itself. images (N, 3, 32, 32), labels int64 (N,).
    The pickles are loaded with an unpickler that only accepts NumPy arrays and plain values.
    """

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]
    _HINT = ("pyconv does not download datasets: extract the CIFAR-10 python version "
             "(cifar-10-python.tar.gz) there")

    def __init__(self, root: str, train: bool = True, normalize: bool = True, transform=None):
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        parts = [_read_cifar_batch(self._locate(root, n)) for n in names]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        super().__init__(_scaled(images, 255.0, normalize), labels, transform=transform)
        self.root = root
        self.train = train

    def _locate(self, root: str, name: str) -> str:
        return _find_file("CIFAR10", root, [os.path.join("cifar-10-batches-py", name), name],
                          f"batch file {name!r}", self._HINT)
