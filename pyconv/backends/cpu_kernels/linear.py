"""linear on the C++ packed GEMM (csrc/cpu/linear.cpp)."""

from __future__ import annotations

from ..._native import _C
from . import ready

__all__ = ["linear_backward_input", "linear_backward_weight", "linear_forward"]


def linear_forward(x, weight, bias):
    return _C.linear_forward(ready(x), ready(weight), ready(bias))


def linear_backward_input(grad_y, weight):
    return _C.linear_backward_input(ready(grad_y), ready(weight))


def linear_backward_weight(grad_y, x):
    return _C.linear_backward_weight(ready(grad_y), ready(x))
