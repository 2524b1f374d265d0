"""``batch_norm``: argument checks, then the backend's batch-norm kernels with autograd.

Gradients flow to input, weight and bias; the running statistics are updated in place by the
forward (training mode) and are never differentiated.
"""

from __future__ import annotations

import numbers

from ..autograd import Function
from .validate import check_float, check_same_dtype

_OP = "batch_norm"


class BatchNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        y, save_mean, save_invstd = ctx.backend.batch_norm_forward(
            x, weight, bias, running_mean, running_var, training, momentum, eps)
        ctx.save_for_backward(x, weight, save_mean, save_invstd)
        ctx.training = training
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, weight, save_mean, save_invstd = ctx.saved_arrays
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x, grad_w, grad_b = ctx.backend.batch_norm_backward(
            grad_y, x, weight, save_mean, save_invstd, ctx.training)
        return (grad_x if need_x else None, grad_w if need_w else None,
                grad_b if need_b else None, None, None, None, None, None)


def _check_per_channel(value, channels: int, name: str) -> None:
    if value is not None and tuple(value.shape) != (channels,):
        raise ValueError(
            f"{_OP}: {name} must have one element per channel, shape ({channels},) for input "
            f"with {channels} channels (input.shape[1]={channels}), got shape {tuple(value.shape)}"
        )


def _check_number(value, name: str, minimum: float | None = None) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{_OP}: {name} must be a real number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{_OP}: {name} must be >= {minimum}, got {value}")
    return float(value)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise input (N, C, *) per channel: (x - mean) / sqrt(var + eps) * weight + bias.

    training=True uses the batch statistics (biased variance) and, when running_mean and
    running_var are given, updates them in place:
    running = (1 - momentum) * running + momentum * batch_stat (unbiased variance).
    training=False uses running_mean and running_var, which must then be given.
    running_mean, running_var, weight, bias: (C,) tensors or None. Returns a tensor like input.
    """
    check_float(input, _OP, "input")
    if input.ndim < 2:
        raise ValueError(
            f"{_OP}: expected input with at least 2 dimensions (N, C, *), got {input.ndim} "
            f"(shape {input.shape})"
        )
    channels = input.shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        check_same_dtype(input, value, _OP, name)
        _check_per_channel(value, channels, name)
    if (running_mean is None) != (running_var is None):
        missing = "running_var" if running_var is None else "running_mean"
        raise ValueError(f"{_OP}: running_mean and running_var must both be given or both be "
                         f"None, got {missing}=None only")
    training = bool(training)
    if not training and running_mean is None:
        raise ValueError(f"{_OP}: running_mean and running_var must be given when "
                         f"training=False (evaluation mode uses them), got None")
    momentum = _check_number(momentum, "momentum")
    eps = _check_number(eps, "eps", minimum=0.0)
    values_per_channel = input.numel() // channels if channels else 0
    if training and values_per_channel == 1:
        raise ValueError(f"{_OP}: Expected more than 1 value per channel when training, got input "
                         f"size {tuple(input.shape)}")
    return BatchNorm.apply(input, weight, bias, running_mean, running_var, training, momentum, eps)
