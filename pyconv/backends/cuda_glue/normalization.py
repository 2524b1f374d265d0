"""Launch glue for kernels/normalization.cu: batch norm forward (training / eval) and backward.

x (N, C, *) is viewed as (N, C, S) with S the product of the spatial sizes; the kernels run one
block per channel. In training mode the running statistics are updated in place, so they must be
the caller's own C-contiguous, writeable arrays (see :func:`.optim.in_place_operand`).
"""

from __future__ import annotations

import math

from . import as_contiguous, i32, i64, in_place_operand, operand, real, suffix

__all__ = ["batch_norm_backward", "batch_norm_forward"]

# kernels/normalization.cu: BN_MAX_THREADS; blocks are whole warps (its block reduction needs it)
_MAX_THREADS = 512


def _threads(dev, count: int) -> int:
    """Threads per channel block: enough whole warps to give each thread an element, capped."""
    warps = max(1, min(-(-count // dev.warp_size), _MAX_THREADS // dev.warp_size))
    return warps * dev.warp_size


def _per_channel(dev, name, array, x):
    """A (C,) input of x's dtype as a contiguous array, or None."""
    if array is None:
        return None
    return as_contiguous(dev, operand(name, array, x.dtype, (x.shape[1],)))


def _sizes(x):
    """(N, C, S) as kernel arguments, and the element count per channel N * S."""
    n, c = x.shape[0], x.shape[1]
    s = math.prod(x.shape[2:])
    return (i32(n, "x.shape[0]"), i32(c, "x.shape[1]"), i64(s, "prod(x.shape[2:])")), n * s


def batch_norm_forward(dev, x, weight, bias, running_mean, running_var, training, momentum, eps):
    """x (N, C, *); weight, bias, running_mean, running_var (C,) or None.

    Returns (y like x, save_mean (C,), save_invstd (C,)); in training, updates running_mean and
    running_var (those given) in place.
    """
    sfx = suffix(x.dtype)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (N, C, *), got shape {x.shape}")
    x = as_contiguous(dev, x)
    channels = x.shape[1]
    sizes, count = _sizes(x)
    weight = _per_channel(dev, "weight", weight, x)
    bias = _per_channel(dev, "bias", bias, x)
    y = dev.xp.empty_like(x)
    save_mean = dev.xp.zeros(channels, dtype=x.dtype)
    save_invstd = dev.xp.zeros(channels, dtype=x.dtype)
    flags = (i32(weight is not None, "has_weight"), i32(bias is not None, "has_bias"))
    # an absent weight/bias is never read: any array of the dtype holds its place
    weight = x if weight is None else weight
    bias = x if bias is None else bias
    launch = (channels,), (_threads(dev, count),)

    if training:
        # each running statistic is updated in place when given (and left alone when None)
        update = (i32(running_mean is not None, "update_mean"),
                  i32(running_var is not None, "update_var"))
        if running_mean is not None:
            running_mean = in_place_operand("running_mean", running_mean, x.dtype, (channels,))
        if running_var is not None:
            running_var = in_place_operand("running_var", running_var, x.dtype, (channels,))
            if count == 1:
                raise ValueError("batch_norm_forward: updating running_var with the unbiased "
                                 "variance needs more than one value per channel, got 1")
        if channels:
            dev.function("normalization", "batch_norm_forward_train_" + sfx)(*launch, (
                y, save_mean, save_invstd,
                save_mean if running_mean is None else running_mean,  # placeholders: not touched
                save_mean if running_var is None else running_var,
                x, weight, bias, *sizes, *flags, *update, real(x.dtype, momentum),
                real(x.dtype, eps)))
        return y, save_mean, save_invstd

    if running_mean is None or running_var is None:
        raise ValueError("batch_norm_forward: running_mean and running_var are required when "
                         "training=False")
    running_mean = _per_channel(dev, "running_mean", running_mean, x)
    running_var = _per_channel(dev, "running_var", running_var, x)
    if channels:
        dev.function("normalization", "batch_norm_forward_eval_" + sfx)(*launch, (
            y, save_mean, save_invstd, x, weight, bias, running_mean, running_var, *sizes, *flags,
            real(x.dtype, eps)))
    return y, save_mean, save_invstd


def batch_norm_backward(dev, grad_y, x, weight, save_mean, save_invstd, training):
    """grad_y, x (N, C, *); weight (C,) or None; save_mean, save_invstd (C,).

    Returns (grad_x like x, grad_weight (C,), grad_bias (C,)).
    """
    sfx = suffix(x.dtype)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (N, C, *), got shape {x.shape}")
    x = as_contiguous(dev, x)
    grad_y = as_contiguous(dev, operand("grad_y", grad_y, x.dtype, x.shape))
    channels = x.shape[1]
    sizes, count = _sizes(x)
    weight = _per_channel(dev, "weight", weight, x)
    save_mean = _per_channel(dev, "save_mean", save_mean, x)
    save_invstd = _per_channel(dev, "save_invstd", save_invstd, x)
    grad_x = dev.xp.empty_like(x)
    grad_weight = dev.xp.zeros(channels, dtype=x.dtype)
    grad_bias = dev.xp.zeros(channels, dtype=x.dtype)
    if channels:
        dev.function("normalization", "batch_norm_backward_" + sfx)(
            (channels,), (_threads(dev, count),), (
                grad_x, grad_weight, grad_bias, grad_y, x, x if weight is None else weight,
                save_mean, save_invstd, *sizes, i32(weight is not None, "has_weight"),
                i32(bool(training), "training")))
    return grad_x, grad_weight, grad_bias
