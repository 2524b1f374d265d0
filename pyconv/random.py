"""The global random generator behind ``randn``, ``rand``, layer initialisation and dropout.

``pyconv.manual_seed(s)`` makes every later draw reproducible. The generator is NumPy's PCG64;
results are therefore reproducible within pyconv but are not the same numbers PyTorch draws.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

__all__ = ["manual_seed", "generator", "initial_seed", "next_seed", "thread_generator"]

_seed = 0
_generator = np.random.default_rng(_seed)


class _ThreadState(threading.local):
    generator = None  # set by thread_generator() for the current thread only


_thread = _ThreadState()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator (returns it, as ``torch.manual_seed`` returns its generator)."""
    global _generator, _seed
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    _seed = int(seed)
    _generator = np.random.default_rng(_seed & 0xFFFF_FFFF_FFFF_FFFF)
    return _generator


def initial_seed() -> int:
    return _seed


def generator() -> np.random.Generator:
    """The current generator: this thread's own inside ``thread_generator``, else the global
    one."""
    own = _thread.generator
    return _generator if own is None else own


@contextlib.contextmanager
def thread_generator(gen: np.random.Generator):
    """Within the block, draws made by this thread (``generator()``, ``next_seed()``) come from
    ``gen``; other threads keep the global generator. The DataLoader runs random transforms in
    its background thread this way, so their values do not depend on the thread's timing."""
    if not isinstance(gen, np.random.Generator):
        raise TypeError(f"thread_generator: gen must be a numpy Generator, got "
                        f"{type(gen).__name__}")
    previous = _thread.generator
    _thread.generator = gen
    try:
        yield gen
    finally:
        _thread.generator = previous


def next_seed() -> int:
    """A fresh 63-bit seed drawn from the global generator (for counter-based kernels such as
    dropout, which take a seed instead of a generator)."""
    return int(generator().integers(0, 2**63 - 1))
