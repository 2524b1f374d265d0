"""max_pool2d, avg_pool2d and adaptive_avg_pool2d on the C++ per-plane kernels
(csrc/cpu/pool.cpp)."""

from __future__ import annotations

from ..._native import _C
from . import ready

__all__ = [
    "adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_forward",
    "avg_pool2d_backward", "avg_pool2d_forward",
    "max_pool2d_backward", "max_pool2d_forward",
]


def _shape(shape):
    return [int(v) for v in shape]


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    y, indices = _C.max_pool2d_forward(ready(x), kernel_size, stride, padding, dilation,
                                       bool(ceil_mode))
    return y, indices


def max_pool2d_backward(grad_y, indices, input_shape, kernel_size, stride, padding, dilation):
    return _C.max_pool2d_backward(ready(grad_y), ready(indices), _shape(input_shape), kernel_size,
                                  stride, padding, dilation)


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override):
    return _C.avg_pool2d_forward(ready(x), kernel_size, stride, padding, bool(ceil_mode),
                                 bool(count_include_pad), divisor_override)


def avg_pool2d_backward(grad_y, input_shape, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
    return _C.avg_pool2d_backward(ready(grad_y), _shape(input_shape), kernel_size, stride,
                                  padding, bool(ceil_mode), bool(count_include_pad),
                                  divisor_override)


def adaptive_avg_pool2d_forward(x, output_size):
    return _C.adaptive_avg_pool2d_forward(ready(x), output_size)


def adaptive_avg_pool2d_backward(grad_y, input_shape):
    return _C.adaptive_avg_pool2d_backward(ready(grad_y), _shape(input_shape))
