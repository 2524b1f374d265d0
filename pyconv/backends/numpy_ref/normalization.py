"""Reference batch normalisation over every axis but 1 (channels): forward and backward.

Statistics and the normalisation itself are computed in float64 and cast back, so float32
results are as exact as float32 allows and independent of the reduction order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["batch_norm_backward", "batch_norm_forward"]


def _channel_view(values, ndim):
    """A (C,) array as (1, C, 1, ...), to broadcast against an (N, C, *) array of ndim dims."""
    return values.reshape((1, -1) + (1,) * (ndim - 2))


def _reduce_axes(ndim):
    return (0,) + tuple(range(2, ndim))


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """x (N, C, *); weight, bias, running_mean, running_var (C,) or None.

    Returns (y, save_mean, save_invstd): y like x, the others (C,) in x's dtype. In training mode
    running_mean / running_var (when given) are updated in place with the unbiased variance;
    an empty batch leaves them untouched, as PyTorch does.
    """
    axes = _reduce_axes(x.ndim)
    count = x.size // x.shape[1] if x.shape[1] else 0
    x64 = x.astype(np.float64, copy=False)
    if training:
        if count == 0:
            zeros = np.zeros(x.shape[1], dtype=x.dtype)
            return np.empty_like(x), zeros, zeros.copy()
        mean = x64.mean(axis=axes)
        centered = x64 - _channel_view(mean, x.ndim)
        var = np.mean(centered * centered, axis=axes)
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean.astype(np.float64) + momentum * mean
        if running_var is not None:
            unbiased = var * (count / (count - 1))
            running_var[...] = (1 - momentum) * running_var.astype(np.float64) + momentum * unbiased
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
        centered = x64 - _channel_view(mean, x.ndim)
    invstd = 1.0 / np.sqrt(var + eps)
    y = centered * _channel_view(invstd, x.ndim)
    if weight is not None:
        y = y * _channel_view(weight.astype(np.float64), x.ndim)
    if bias is not None:
        y = y + _channel_view(bias.astype(np.float64), x.ndim)
    return y.astype(x.dtype), mean.astype(x.dtype), invstd.astype(x.dtype)


def batch_norm_backward(grad_y, x, weight, save_mean, save_invstd, training):
    """grad_y, x (N, C, *); weight (C,) or None (meaning ones); save_mean, save_invstd (C,).

    With xhat = (x - mean) * invstd, M = N * prod(*) and g = grad_y:
    grad_bias = sum(g), grad_weight = sum(g * xhat), and grad_x = w * invstd * g in eval mode or,
    in training mode (where mean and invstd depend on x),
    grad_x = w * invstd * (g - grad_bias / M - xhat * grad_weight / M).
    Returns (grad_x, grad_weight, grad_bias).
    """
    axes = _reduce_axes(x.ndim)
    count = x.size // x.shape[1] if x.shape[1] else 0
    g = grad_y.astype(np.float64, copy=False)
    invstd = _channel_view(save_invstd.astype(np.float64), x.ndim)
    mean = _channel_view(save_mean.astype(np.float64), x.ndim)
    xhat = (x.astype(np.float64, copy=False) - mean) * invstd
    grad_bias = g.sum(axis=axes)
    grad_weight = (g * xhat).sum(axis=axes)
    scale = invstd if weight is None else invstd * _channel_view(weight.astype(np.float64), x.ndim)
    if training and count > 0:
        g = (g - _channel_view(grad_bias / count, x.ndim)
             - xhat * _channel_view(grad_weight / count, x.ndim))
    grad_x = g * scale
    return grad_x.astype(x.dtype), grad_weight.astype(x.dtype), grad_bias.astype(x.dtype)
