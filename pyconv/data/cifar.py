"""CIFAR-10 from its local "python version" batches (nothing is downloaded).

Files: ``data_batch_1`` .. ``data_batch_5`` (train, 10000 samples each), ``test_batch``
(10000) and optionally ``batches.meta`` (the class names), looked for in
``root/cifar-10-batches-py`` (the extracted archive), ``root/cifar10/cifar-10-batches-py``,
``root/cifar10`` and ``root`` itself. Each batch is a pickled dict with ``data`` uint8
(n, 3072) (a row is the red 32x32 plane, then green, then blue, each row-major: already CHW)
and ``labels`` (n ints in 0..9). images (N, 3, 32, 32) float32 in [0, 1] (``normalize=False``:
uint8), labels int64 (N,). The pickles are read with an unpickler that only builds NumPy arrays
and plain values (unpickling can otherwise run arbitrary code); official files are checked
against their published MD5 (:mod:`pyconv.data.checksums`).
"""

from __future__ import annotations

import os
import pickle

import numpy as np

from .checksums import SOURCES, check_official
from .datasets import ImageDataset
from .locate import find_files, official_source

__all__ = ["CIFAR10", "CIFAR10_CLASSES", "UnsafePickleError", "read_cifar_batch"]

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
_SUBFOLDERS = ("cifar-10-batches-py", os.path.join("cifar10", "cifar-10-batches-py"), "cifar10",
               "")

# What the official batches reference (pickled by Python 2 with NumPy 1.x) and what Python 3
# with NumPy 2 writes. Anything else in a pickle is refused.
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


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A batch file asks to build something other than NumPy arrays and plain values."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_PICKLE_GLOBALS:
            raise UnsafePickleError(
                f"CIFAR10: refusing to load {module}.{name} from a batch file (only NumPy arrays "
                f"and plain Python values are allowed)"
            )
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core"):]  # NumPy 2 moved numpy.core
        return super().find_class(module, name)


def _load_pickle(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            value = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{exc} ({path})") from None
    except pickle.UnpicklingError as exc:
        raise ValueError(f"CIFAR10: {path} is truncated or not a pickle ({exc})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"CIFAR10: {path} is truncated or not a pickle "
                         f"({type(exc).__name__}: {exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"CIFAR10: {path} does not hold a dict (got {type(value).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in value.items()}


def read_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (images uint8 (n, 3, 32, 32), labels int64 (n,)); ValueError naming
    the file if its keys, shapes, dtype or labels are wrong."""
    batch = _load_pickle(path)
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"CIFAR10: {path} lacks 'data' or 'labels' (keys: {sorted(batch)})")
    data = np.asarray(batch["data"])
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError):
        raise ValueError(f"CIFAR10: {path} has labels that are not integers") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise ValueError(
            f"CIFAR10: {path} has data {data.shape} and labels {labels.shape}; expected "
            f"(n, 3072) and (n,)"
        )
    if data.dtype != np.uint8:
        if data.dtype.kind not in "iu" or (data.size and (data.min() < 0 or data.max() > 255)):
            raise ValueError(f"CIFAR10: {path} has data of dtype {data.dtype}; expected uint8 "
                             f"(pixel values 0..255)")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"CIFAR10: {path} has labels {int(labels.min())}..{int(labels.max())}; "
                         f"expected 0..9")
    return data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32), labels


def _read_classes(folder: str) -> list[str]:
    path = os.path.join(folder, "batches.meta")
    if not os.path.isfile(path):
        return list(CIFAR10_CLASSES)
    check_official("cifar10", path, "CIFAR10")
    names = _load_pickle(path).get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise ValueError(f"CIFAR10: {path} has no list of 10 'label_names'")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


class CIFAR10(ImageDataset):
    """``CIFAR10(root, train=True, normalize=True, transform=None)``: the train (50000) or test
    (10000) side; see the module docstring for the files, folders and shapes. ``classes`` come
    from ``batches.meta`` when present, else the standard ten names."""

    def __init__(self, root, train: bool = True, normalize: bool = True, transform=None):
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        paths = find_files("CIFAR10", root, _SUBFOLDERS, {n: [n] for n in names},
                           SOURCES["cifar10"])
        parts = []
        with official_source(SOURCES["cifar10"]):
            for name in names:
                check_official("cifar10", paths[name], "CIFAR10")
                parts.append(read_cifar_batch(paths[name]))
            classes = _read_classes(os.path.dirname(paths[names[0]]))
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if normalize:
            images = images.astype(np.float32) / np.float32(255.0)
        super().__init__(images, labels, classes, transform=transform)
        self.root = root
        self.train = train
        self.files = paths
