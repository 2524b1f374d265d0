"""Launch glue for kernels/dropout.cu.

The keep-mask is the counter-based function documented in
:mod:`pyconv.backends.numpy_ref.dropout`: the kernel hashes (seed, flat index), so the mask is the
reference's bit for bit whatever the grid. ``p`` reaches the kernel as the integer threshold of
:func:`~pyconv.backends.numpy_ref.dropout.keep_threshold`, which makes ``u >= p`` exact.
"""

from __future__ import annotations

import numpy as np

from ..numpy_ref.dropout import keep_threshold
from . import as_contiguous, elementwise_grid, i64, real, suffix

__all__ = ["dropout_backward", "dropout_forward"]

THREADS = 256  # the kernels' __launch_bounds__


def _scale(dtype, p):
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    return real(dtype, 1.0 / (1.0 - p))


def dropout_forward(dev, x, p, seed):
    kind = suffix(x.dtype)
    scale = _scale(x.dtype, p)
    y = dev.xp.empty(x.shape, dtype=x.dtype)
    mask = dev.xp.empty(x.shape, dtype=bool)
    n = x.size
    if n:
        grid, block = elementwise_grid(dev, n, THREADS)
        dev.function("dropout", f"dropout_forward_{kind}")(
            grid, block,
            (y, mask, as_contiguous(dev, x), i64(n, "n"), np.uint64(int(seed) % 2**64),
             np.uint32(keep_threshold(p)), scale))
    return y, mask


def dropout_backward(dev, grad_y, mask, p):
    kind = suffix(grad_y.dtype)
    if mask.dtype != bool:
        raise TypeError(f"dropout_backward: mask must be a bool array, got {mask.dtype}")
    if mask.shape != grad_y.shape:
        raise ValueError(f"dropout_backward: mask shape {mask.shape} differs from grad_y's "
                         f"{grad_y.shape}")
    scale = _scale(grad_y.dtype, p)
    grad_x = dev.xp.empty(grad_y.shape, dtype=grad_y.dtype)
    n = grad_y.size
    if n:
        grid, block = elementwise_grid(dev, n, THREADS)
        dev.function("dropout", f"dropout_backward_{kind}")(
            grid, block,
            (grad_x, as_contiguous(dev, grad_y), as_contiguous(dev, mask), i64(n, "n"), scale))
    return grad_x
