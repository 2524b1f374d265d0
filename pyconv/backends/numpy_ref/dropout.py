"""Reference dropout with a counter-based keep-mask that every backend reproduces bit for bit.

The mask of an array depends only on ``(seed, i)``, ``i`` the element's flat C-order index
(0-based), never on how the work is split among threads:

1. ``z = seed + (i + 1) * 0x9E3779B97F4A7C15`` (all arithmetic on unsigned 64-bit integers,
   wrapping modulo 2**64; ``seed`` is taken modulo 2**64). This is the state of Vigna's
   SplitMix64 generator started at ``seed`` after ``i + 1`` steps.
2. SplitMix64's finaliser (Stafford's Mix13):
   ``z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9``; ``z = (z ^ (z >> 27)) * 0x94D049BB133111EB``;
   ``z = z ^ (z >> 31)``. So ``z`` is output number ``i`` of ``splitmix64`` seeded with ``seed``.
3. ``k = z >> 40``: the top 24 bits, ``u = k / 2**24`` uniform in [0, 1).
4. Keep iff ``u >= p``, evaluated exactly as ``k >= ceil(p * 2**24)`` (:func:`keep_threshold`; ``p``
   a double, ``p * 2**24`` is exact).

Kept elements are scaled by ``1 / (1 - p)`` computed in double and rounded to the array's dtype;
``y = x * mask * scale`` in that order (a dropped inf or NaN gives NaN, as in PyTorch).
"""

from __future__ import annotations

import math

import numpy as np

# keep_mask and keep_threshold are public helpers (the CUDA glue shares keep_threshold) but not
# contract kernels, so the backend's star import leaves them out
__all__ = ["dropout_backward", "dropout_forward"]

_U64 = np.uint64
_GAMMA = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)
_CHUNK = 1 << 16  # elements hashed at a time: the uint64 temporaries stay in cache


def keep_threshold(p: float) -> int:
    """The integer form of ``u >= p`` for ``u = k / 2**24``: keep iff ``k >= keep_threshold(p)``."""
    return math.ceil(float(p) * 2.0**24)


def keep_mask(shape, p: float, seed: int) -> np.ndarray:
    """The bool keep-mask of an array of ``shape`` (True = kept), as the module docstring defines."""
    n = math.prod(shape)
    seed = _U64(int(seed) % 2**64)
    threshold = _U64(keep_threshold(p))
    mask = np.empty(n, dtype=bool)
    for start in range(0, n, _CHUNK):
        z = np.arange(start + 1, min(start + _CHUNK, n) + 1, dtype=np.uint64)
        z *= _GAMMA
        z += seed
        z ^= z >> _U64(30)
        z *= _MIX1
        z ^= z >> _U64(27)
        z *= _MIX2
        z ^= z >> _U64(31)
        z >>= _U64(40)
        np.greater_equal(z, threshold, out=mask[start:start + len(z)])
    return mask.reshape(shape)


def dropout_forward(x, p, seed):
    mask = keep_mask(x.shape, p, seed)
    scale = x.dtype.type(1.0 / (1.0 - p))
    return x * mask * scale, mask


def dropout_backward(grad_y, mask, p):
    return grad_y * mask * grad_y.dtype.type(1.0 / (1.0 - p))
