"""Writers of small datasets in the official on-disk formats, for tests and CI (e.g. the bundled
digits upsampled to 28x28 as an MNIST folder): what they write, the readers in
:mod:`pyconv.data` read back unchanged."""

from __future__ import annotations

import os
import pickle

import numpy as np

from .cifar import CIFAR10_CLASSES
from .idx import write_idx

__all__ = ["write_cifar10_folder", "write_mnist_folder"]


def _images_labels(pair, op: str, name: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, channels, H, W) or, for channels=1, (N, H, W); labels (N,)) checked."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{op}: {name} must be a pair (images, labels), got {type(pair).__name__}")
    images, labels = np.asarray(pair[0]), np.asarray(pair[1])
    if images.dtype != np.uint8:
        raise TypeError(f"{op}: {name} images must be uint8 (0..255), got {images.dtype}")
    if channels == 1 and images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    expected = "(N, H, W) or (N, 1, H, W)" if channels == 1 else f"(N, {channels}, 32, 32)"
    if (images.ndim != (3 if channels == 1 else 4)
            or (channels != 1 and images.shape[1:] != (channels, 32, 32))):
        raise ValueError(f"{op}: {name} images must be {expected}, got shape {images.shape}")
    if labels.shape != (images.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"{op}: {name} labels must be integers of shape ({images.shape[0]},), "
                         f"got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{op}: {name} labels must lie in 0..9, got "
                         f"{int(labels.min())}..{int(labels.max())}")
    return images, labels


def write_mnist_folder(folder, train, test, gzip: bool = False) -> list[str]:
    """Write ``train`` and ``test`` = (images uint8 (N, H, W) or (N, 1, H, W), labels (N,) in
    0..9) as the four MNIST IDX files in ``folder`` (gzipped ``.gz`` when ``gzip``). Returns the
    paths written. ``MNIST(folder)`` / ``load_dataset("mnist", data_dir=folder)`` read them."""
    paths = []
    suffix = ".gz" if gzip else ""
    for prefix, pair in (("train", train), ("t10k", test)):
        images, labels = _images_labels(pair, "write_mnist_folder",
                                        "train" if prefix == "train" else "test", 1)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels.astype(np.uint8))):
            path = os.path.join(os.fspath(folder), f"{prefix}-{kind}-ubyte{suffix}")
            write_idx(path, array)
            paths.append(path)
    return paths


def write_cifar10_folder(folder, train, test, classes=None) -> list[str]:
    """Write ``train`` and ``test`` = (images uint8 (N, 3, 32, 32), labels (N,) in 0..9) as the
    CIFAR-10 python batches in ``folder``: ``data_batch_1`` .. ``data_batch_5`` (the training
    samples in order, split as evenly as possible), ``test_batch`` and ``batches.meta``
    (``classes``, default the standard ten). Pickled as the official files are: bytes keys,
    ``data`` uint8 (n, 3072), ``labels`` a list of ints. Returns the paths written."""
    op = "write_cifar10_folder"
    classes = list(CIFAR10_CLASSES if classes is None else classes)
    if len(classes) != 10 or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{op}: classes must be 10 names (str), got {classes!r}")
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    train_images, train_labels = _images_labels(train, op, "train", 3)
    test_images, test_labels = _images_labels(test, op, "test", 3)
    batches = [(f"data_batch_{i + 1}", part)
               for i, part in enumerate(np.array_split(np.arange(train_images.shape[0]), 5))]
    paths = []

    def dump(name, value):
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            pickle.dump(value, f, protocol=2)
        paths.append(path)

    for name, idx in batches:
        dump(name, {b"batch_label": name.encode(), b"labels": [int(v) for v in train_labels[idx]],
                    b"data": train_images[idx].reshape(-1, 3072), b"filenames": []})
    dump("test_batch", {b"batch_label": b"test_batch", b"labels": [int(v) for v in test_labels],
                        b"data": test_images.reshape(-1, 3072), b"filenames": []})
    dump("batches.meta", {b"label_names": [c.encode() for c in classes],
                          b"num_cases_per_batch": 10000, b"num_vis": 3072})
    return paths
