"""The dataset protocol, ``TensorDataset`` over arrays or tensors, and ``ImageDataset`` (labelled
images with class names), the type every loader in :mod:`pyconv.data` returns.

Every dataset here is array-backed: it holds one NumPy array per field with the sample axis
first, returns one sample as a tuple of tensors from ``dataset[i]``, and a whole batch as a tuple
of arrays from ``dataset.get_batch(indices)`` (one fancy-indexing operation per field), which is
what :class:`~pyconv.data.DataLoader` uses.

``ImageDataset``: ``images`` (N, C, H, W) (NCHW, as the conv layers expect), float32 in [0, 1]
(or the raw uint8 values when a loader is asked for ``normalize=False``), ``labels`` int64 (N,)
and ``classes``, the class names (``labels`` index into it). The readers live one per file:
:mod:`~pyconv.data.digits`, :mod:`~pyconv.data.mnist`, :mod:`~pyconv.data.cifar`,
:mod:`~pyconv.data.image_folder`; :func:`pyconv.data.load_dataset` picks one by name.
"""

from __future__ import annotations

import importlib

import numpy as np

from ..tensor import Tensor

__all__ = ["Dataset", "ImageDataset", "TensorDataset"]


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


class ImageDataset(TensorDataset):
    """Labelled images: ``arrays = (images, labels)`` with images (N, C, H, W) and labels int64
    (N,) in ``0 .. len(classes) - 1``; ``classes`` are the class names (str)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes, transform=None):
        op = type(self).__name__
        if images.ndim != 4:
            raise ValueError(f"{op}: images must be (N, C, H, W), got shape {images.shape}")
        labels = np.asarray(labels).astype(np.int64, copy=False)
        super().__init__(images, labels, transform=transform)
        self.classes = [str(c) for c in classes]
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(
                f"{op}: labels must lie in 0..{len(self.classes) - 1} (one per class), got "
                f"{int(labels.min())}..{int(labels.max())}")

    @property
    def images(self) -> np.ndarray:
        """(N, C, H, W), untransformed."""
        return self.arrays[0]

    @property
    def labels(self) -> np.ndarray:
        """int64 (N,)."""
        return self.arrays[1]

    def subset(self, indices) -> "ImageDataset":
        """The samples at ``indices`` (int array) as a new ImageDataset (same classes and
        transform)."""
        return ImageDataset(self.images[indices], self.labels[indices], self.classes,
                            transform=self.transform)


# The readers used to live here: ``from pyconv.data.datasets import MNIST`` keeps working.
_MOVED = {
    "DigitsDataset": "digits", "load_digits": "digits", "load_digits_split": "digits",
    "stratified_split": "split", "read_idx": "idx", "MNIST": "mnist", "CIFAR10": "cifar",
}


def __getattr__(name):
    if name in _MOVED:
        return getattr(importlib.import_module(f".{_MOVED[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
