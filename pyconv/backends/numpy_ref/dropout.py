"""Reference dropout: a Bernoulli keep-mask drawn from a generator seeded per call."""

from __future__ import annotations

import numpy as np

__all__ = ["dropout_backward", "dropout_forward"]


def dropout_forward(x, p, seed):
    mask = np.random.default_rng(seed).random(x.shape) >= p
    scale = x.dtype.type(1.0 / (1.0 - p))
    return x * mask * scale, mask


def dropout_backward(grad_y, mask, p):
    return grad_y * mask * grad_y.dtype.type(1.0 / (1.0 - p))
