"""Dropout on the C++ kernels of csrc/cpu/dropout.cpp, with the reference's counter-based mask
(pyconv/backends/numpy_ref/dropout.py), bit for bit."""

from __future__ import annotations

import numpy as np

from ..._native import _C
from ..numpy_ref.dropout import keep_threshold
from . import ready

__all__ = ["dropout_backward", "dropout_forward"]


def _scale(p):
    # the reference's 1 / (1 - p) in double, rounded to the array's dtype by the kernel
    return 1.0 / (1.0 - p)


def dropout_forward(x, p, seed):
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout_forward: p must be in [0, 1), got {p}")
    return tuple(_C.dropout_forward(ready(x), keep_threshold(p), int(seed) % 2**64, _scale(p)))


def dropout_backward(grad_y, mask, p):
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"dropout_backward: mask must be a bool array, got {mask.dtype}")
    if mask.shape != np.shape(grad_y):
        raise ValueError(f"dropout_backward: mask shape {mask.shape} differs from grad_y's "
                         f"{np.shape(grad_y)}")
    return _C.dropout_backward(ready(grad_y), ready(mask), _scale(float(p)))
