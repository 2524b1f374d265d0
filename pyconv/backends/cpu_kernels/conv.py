"""conv2d on the C++ packed implicit GEMM (csrc/cpu/conv2d.cpp)."""

from __future__ import annotations

from ..._native import _C
from . import ready

__all__ = ["conv2d_backward_input", "conv2d_backward_weight", "conv2d_forward"]


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    return _C.conv2d_forward(ready(x), ready(weight), ready(bias), tuple(stride), tuple(padding),
                             tuple(dilation), int(groups))


def conv2d_backward_input(grad_y, weight, input_shape, stride, padding, dilation, groups):
    return _C.conv2d_backward_input(ready(grad_y), ready(weight), tuple(input_shape),
                                    tuple(stride), tuple(padding), tuple(dilation), int(groups))


def conv2d_backward_weight(grad_y, x, weight_shape, stride, padding, dilation, groups):
    return _C.conv2d_backward_weight(ready(grad_y), ready(x), tuple(weight_shape), tuple(stride),
                                     tuple(padding), tuple(dilation), int(groups))
