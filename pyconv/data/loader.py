"""``DataLoader``: iterate over a dataset in (optionally shuffled) batches of pyconv tensors,
built ahead in a background thread.

For a dataset with ``get_batch`` (every dataset in :mod:`pyconv.data`), a batch of B samples
costs one fancy-indexing operation per field: ``images[idx]`` (B, C, H, W), ``labels[idx]``
(B,). Other datasets are read sample by sample and stacked. The loader's ``transform`` then
maps the first field's NumPy array (B, C, H, W) to a new one before it becomes a tensor.
"""

from __future__ import annotations

import math
import numbers
import queue
import threading

import numpy as np

from .. import random as _random
from ..tensor import Tensor
from .datasets import TensorDataset

__all__ = ["DataLoader"]

# How often a blocked producer checks whether the consumer has gone (seconds).
_POLL = 0.05
# ``with thread_generator(g):`` makes this thread's pyconv.random draws come from ``g``
_THREAD_GENERATOR = getattr(_random, "thread_generator", None)


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

    ``transform``: a callable applied to the first field of every batch as a NumPy array
    (B, C, H, W), e.g. :mod:`pyconv.data.transforms` augmentation. A random transform drawing
    from pyconv's global generator (``seed=None``) gives the same values with or without
    prefetching and follows ``pyconv.manual_seed``. A dataset's own ``transform`` runs wherever
    the batch is indexed (the background thread): give random ones to the loader instead.

    ``prefetch``: how many batches a background thread builds ahead (a bounded queue); 0 builds
    each batch in the calling thread when it is asked for. Batches, their order and their values
    are the same either way. An exception raised while building a batch is re-raised in the
    loop, with its traceback; leaving the loop early (``break``, dropping the iterator) stops
    the thread.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, transform=None, prefetch: int = 2):
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
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got "
                            f"{type(transform).__name__}")
        if not isinstance(prefetch, numbers.Integral) or isinstance(prefetch, bool):
            raise TypeError(f"DataLoader: prefetch must be an int, got {prefetch!r}")
        if prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be >= 0, got {prefetch}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.transform = transform
        self.prefetch = int(prefetch)
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

    def _fields(self, indices: np.ndarray, transform: bool = True):
        """The batch at ``indices`` as NumPy arrays (a tuple, or one array for datasets whose
        samples are not tuples), with the loader's transform applied if ``transform``."""
        get_batch = getattr(self.dataset, "get_batch", None)
        if get_batch is not None:
            fields = get_batch(indices)
        else:
            samples = [self.dataset[int(i)] for i in indices]
            if not isinstance(samples[0], tuple):
                fields = np.stack([np.asarray(s) for s in samples])
            else:
                fields = tuple(np.stack([np.asarray(s[k]) for s in samples])
                               for k in range(len(samples[0])))
        return self._apply_transform(fields) if transform else fields

    def _apply_transform(self, fields):
        if self.transform is None:
            return fields
        if not isinstance(fields, tuple):
            return self.transform(np.asarray(fields))
        return (self.transform(np.asarray(fields[0])),) + tuple(fields[1:])

    def _tasks(self) -> list[np.ndarray]:
        n = len(self.dataset)
        order = self._order(n)
        stop = n - n % self.batch_size if self.drop_last else n
        return [order[start:start + self.batch_size] for start in range(0, stop, self.batch_size)]

    def __iter__(self):
        tasks = self._tasks()  # here, so the permutation is drawn when the pass starts
        streams = self._streams(len(tasks))
        return (self._serial(tasks, streams) if self.prefetch == 0
                else self._prefetched(tasks, streams))

    def _streams(self, count: int):
        """One generator per batch for the transform's random draws, seeded from pyconv's
        global generator when the pass starts (as the transform itself would draw, so
        ``pyconv.manual_seed`` reproduces them) and the same whichever thread runs the
        transform; None when pyconv.random cannot give a thread its own generator (the
        transform then runs in the consumer's thread)."""
        if self.transform is None or _THREAD_GENERATOR is None:
            return None
        base = _random.next_seed()
        return [np.random.default_rng([base, i]) for i in range(count)]

    def _build(self, indices, stream, transform: bool):
        """The batch's NumPy fields; the transform applied if ``transform``, drawing from
        ``stream`` when there is one."""
        if not transform or stream is None:
            return self._fields(indices, transform)
        with _THREAD_GENERATOR(stream):
            return self._fields(indices, transform)

    @staticmethod
    def _wrap(fields):
        if not isinstance(fields, tuple):
            return _to_tensor(fields)
        return tuple(_to_tensor(f) for f in fields)

    def _serial(self, tasks, streams):
        for i, indices in enumerate(tasks):
            yield self._wrap(self._build(indices, streams and streams[i], True))

    def _prefetched(self, tasks, streams):
        # without per-batch generators a random transform must run in this thread, in order
        late_transform = self.transform is not None and streams is None
        slots = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def offer(item) -> bool:
            while not stop.is_set():
                try:
                    slots.put(item, timeout=_POLL)
                    return True
                except queue.Full:
                    continue
            return False

        def produce():
            try:
                for i, indices in enumerate(tasks):
                    if stop.is_set():
                        return
                    fields = self._build(indices, streams and streams[i], not late_transform)
                    if not offer(("batch", fields)):
                        return
                offer(("end", None))
            except BaseException as exc:  # handed to the consumer, re-raised there
                offer(("error", exc))

        worker = threading.Thread(target=produce, name="pyconv-DataLoader", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = slots.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield self._wrap(self._apply_transform(value) if late_transform else value)
        finally:
            stop.set()
            if worker is not threading.current_thread():  # the GC may close us from anywhere
                worker.join()

    def __repr__(self):
        return (f"DataLoader(dataset={type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, prefetch={self.prefetch})")
