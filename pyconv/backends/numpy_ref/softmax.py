"""Reference softmax and log-softmax along one axis (forward and backward).

Both subtract the maximum along ``dim`` first, so inputs like ``[-1e4, 1e4]`` give finite, exact
results in float32 as in float64. The output keeps the input's dtype.
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax_backward", "log_softmax_forward", "softmax_backward", "softmax_forward"]


def _shifted(x, dim):
    """x - max(x, dim): every slice's largest value becomes 0, so exp() cannot overflow."""
    # initial=-inf lets a zero-length dim reduce (the result is then empty, as PyTorch's)
    return x - np.max(x, axis=dim, keepdims=True, initial=-np.inf)


def softmax_forward(x, dim):
    """x any shape, dim in [0, x.ndim). Returns exp(x - max) / sum(exp(x - max)), x's shape."""
    e = np.exp(_shifted(x, dim))
    return e / np.sum(e, axis=dim, keepdims=True)


def softmax_backward(grad_y, y, dim):
    """grad_x = y * (grad_y - sum(grad_y * y, dim)); grad_y and y of one shape."""
    return y * (grad_y - np.sum(grad_y * y, axis=dim, keepdims=True))


def log_softmax_forward(x, dim):
    """x any shape, dim in [0, x.ndim). Returns x - max - log(sum(exp(x - max))), x's shape."""
    s = _shifted(x, dim)
    with np.errstate(divide="ignore"):  # the sum is >= 1 (exp(0) is in it) unless dim is empty
        return s - np.log(np.sum(np.exp(s), axis=dim, keepdims=True))


def log_softmax_backward(grad_y, y, dim):
    """grad_x = grad_y - exp(y) * sum(grad_y, dim), y being the log-softmax output."""
    return grad_y - np.exp(y) * np.sum(grad_y, axis=dim, keepdims=True)
