"""Activations on the C++ kernels of csrc/cpu/activation.cpp (AVX2 float32, libm float64)."""

from __future__ import annotations

from ..._native import _C
from . import ready

__all__ = [
    "gelu_backward", "gelu_forward", "leaky_relu_backward", "leaky_relu_forward",
    "relu_backward", "relu_forward", "sigmoid_backward", "sigmoid_forward",
    "tanh_backward", "tanh_forward",
]


def relu_forward(x):
    return _C.relu_forward(ready(x))


def relu_backward(grad_y, y):
    return _C.relu_backward(ready(grad_y), ready(y))


def leaky_relu_forward(x, negative_slope):
    return _C.leaky_relu_forward(ready(x), float(negative_slope))


def leaky_relu_backward(grad_y, x, negative_slope):
    return _C.leaky_relu_backward(ready(grad_y), ready(x), float(negative_slope))


def sigmoid_forward(x):
    return _C.sigmoid_forward(ready(x))


def sigmoid_backward(grad_y, y):
    return _C.sigmoid_backward(ready(grad_y), ready(y))


def tanh_forward(x):
    return _C.tanh_forward(ready(x))


def tanh_backward(grad_y, y):
    return _C.tanh_backward(ready(grad_y), ready(y))


def gelu_forward(x, approximate):
    return _C.gelu_forward(ready(x), str(approximate))


def gelu_backward(grad_y, x, approximate):
    return _C.gelu_backward(ready(grad_y), ready(x), str(approximate))
