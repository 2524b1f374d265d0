"""``DataLoader``: iterate over a dataset in (optionally shuffled) batches of pyconv tensors.

For a dataset with ``get_batch`` (every dataset in :mod:`pyconv.data.datasets`), a batch of B
samples costs one fancy-indexing operation per field: ``images[idx]`` (B, C, H, W),
``labels[idx]`` (B,). Other datasets are read sample by sample and stacked.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import random as _random
from ..tensor import Tensor
from .datasets import TensorDataset

__all__ = ["DataLoader"]


def _to_tensor(value) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor._wrap(np.asarray(value))


class DataLoader:
    """``for images, labels in DataLoader(dataset, batch_size=64, shuffle=True): ...``

    ``dataset`` is a :class:`~pyconv.data.Dataset` or, as a shorthand for
    ``TensorDataset(images, labels)``, a tuple of arrays/tensors with a common first axis
    (``DataLoader((images, labels), ...)``).

    Yields one tuple of tensors per batch (a single tensor if the dataset's samples are not
    tuples), each with the batch axis first. The last batch is smaller when ``len(dataset)`` is
    not a multiple of ``batch_size``, unless ``drop_last=True`` drops it.

    Shuffling draws a new permutation at the start of every pass. With ``seed=None`` it comes
    from pyconv's global generator (so ``pyconv.manual_seed`` makes it reproducible); with an int
    ``seed`` the loader owns a generator seeded once here, so pass k of two loaders built with
    the same seed visits samples in the same order.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None):
        if isinstance(dataset, (tuple, list)) and dataset and all(
                isinstance(a, (np.ndarray, Tensor)) for a in dataset):
            dataset = TensorDataset(*dataset)
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader: dataset must define __len__ and __getitem__, got "
                f"{type(dataset).__name__}"
            )
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool):
            raise TypeError(f"DataLoader: batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)):
            raise TypeError(f"DataLoader: seed must be an int or None, got {seed!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self._generator = None if seed is None else np.random.default_rng(int(seed))

    def __len__(self) -> int:
        """Number of batches per pass."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self, n: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(n)
        # looked up per pass: manual_seed replaces the global generator object
        generator = self._generator if self._generator is not None else _random.generator()
        return generator.permutation(n)

    def _collate(self, indices: np.ndarray):
        get_batch = getattr(self.dataset, "get_batch", None)
        if get_batch is not None:
            fields = get_batch(indices)
        else:
            samples = [self.dataset[int(i)] for i in indices]
            if not isinstance(samples[0], tuple):
                return _to_tensor(np.stack([np.asarray(s) for s in samples]))
            fields = tuple(np.stack([np.asarray(s[k]) for s in samples])
                           for k in range(len(samples[0])))
        if not isinstance(fields, tuple):
            return _to_tensor(fields)
        return tuple(_to_tensor(f) for f in fields)

    def __iter__(self):
        n = len(self.dataset)
        order = self._order(n)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            yield self._collate(order[start:start + self.batch_size])

    def __repr__(self):
        return (f"DataLoader(dataset={type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed})")
