"""The global random generator behind ``randn``, ``rand``, layer initialisation and dropout.

``pyconv.manual_seed(s)`` makes every later draw reproducible. The generator is NumPy's PCG64;
results are therefore reproducible within pyconv but are not the same numbers PyTorch draws.
"""

from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "generator", "initial_seed", "next_seed"]

_seed = 0
_generator = np.random.default_rng(_seed)


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
    """The current global generator."""
    return _generator


def next_seed() -> int:
    """A fresh 63-bit seed drawn from the global generator (for counter-based kernels such as
    dropout, which take a seed instead of a generator)."""
    return int(_generator.integers(0, 2**63 - 1))
