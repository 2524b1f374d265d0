"""Batch normalisation on the C++ kernels of csrc/cpu/normalization.cpp."""

from __future__ import annotations

from ..._native import _C
from . import ready
from .optim import in_place

__all__ = ["batch_norm_backward", "batch_norm_forward"]


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    if training:
        # updated in place: they must be the caller's own arrays
        for name, array in (("running_mean", running_mean), ("running_var", running_var)):
            if array is not None:
                in_place(name, array)
    else:
        running_mean, running_var = ready(running_mean), ready(running_var)
    return tuple(_C.batch_norm_forward(ready(x), ready(weight), ready(bias), running_mean,
                                       running_var, bool(training), float(momentum), float(eps)))


def batch_norm_backward(grad_y, x, weight, save_mean, save_invstd, training):
    return tuple(_C.batch_norm_backward(ready(grad_y), ready(x), ready(weight), ready(save_mean),
                                        ready(save_invstd), bool(training)))
