"""softmax and log_softmax along any dim on the C++ row kernels (csrc/cpu/softmax.cpp)."""

from __future__ import annotations

from ..._native import _C
from . import ready

__all__ = ["log_softmax_backward", "log_softmax_forward", "softmax_backward", "softmax_forward"]


def softmax_forward(x, dim):
    return _C.softmax_forward(ready(x), dim)


def softmax_backward(grad_y, y, dim):
    return _C.softmax_backward(ready(grad_y), ready(y), dim)


def log_softmax_forward(x, dim):
    return _C.log_softmax_forward(ready(x), dim)


def log_softmax_backward(grad_y, y, dim):
    return _C.log_softmax_backward(ready(grad_y), ready(y), dim)
