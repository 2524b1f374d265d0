"""Reference activations: relu, leaky_relu, sigmoid, tanh, gelu (forward and backward)."""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "gelu_backward", "gelu_forward", "leaky_relu_backward", "leaky_relu_forward",
    "relu_backward", "relu_forward", "sigmoid_backward", "sigmoid_forward",
    "tanh_backward", "tanh_forward",
]

try:  # SciPy's erf is vectorised; math.erf is exact too but runs per element
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - depends on the environment
    _erf = np.vectorize(math.erf, otypes=[np.float64])

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def relu_forward(x):
    return np.maximum(x, 0)


def relu_backward(grad_y, y):
    # multiplying by the mask is ~5x faster than np.where here, but inf * 0 would give NaN
    # where PyTorch gives 0, so non-finite gradients take the exact path
    if np.isfinite(grad_y).all():
        return np.multiply(grad_y, y > 0, dtype=grad_y.dtype)
    return np.where(y > 0, grad_y, grad_y.dtype.type(0))


def leaky_relu_forward(x, negative_slope):
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


def leaky_relu_backward(grad_y, x, negative_slope):
    return np.where(x > 0, grad_y, grad_y * grad_y.dtype.type(negative_slope))


def sigmoid_forward(x):
    # exp(-|x|) never overflows; pick the algebraically equal form by sign
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(grad_y, y):
    return grad_y * y * (1 - y)


def tanh_forward(x):
    return np.tanh(x)


def tanh_backward(grad_y, y):
    return grad_y * (1 - y * y)


def _check_approximate(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_forward(x, approximate):
    _check_approximate(approximate)
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        return (0.5 * x * (1 + np.tanh(inner))).astype(x.dtype, copy=False)
    return (0.5 * x * (1 + _erf(x * _INV_SQRT_2))).astype(x.dtype, copy=False)


def gelu_backward(grad_y, x, approximate):
    _check_approximate(approximate)
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        t = np.tanh(inner)
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner
    else:
        cdf = 0.5 * (1 + _erf(x * _INV_SQRT_2))
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        d = cdf + x * pdf
    return (grad_y * d).astype(grad_y.dtype, copy=False)
