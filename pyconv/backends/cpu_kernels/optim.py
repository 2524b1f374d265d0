"""Fused SGD and Adam/AdamW steps on the C++ kernels of csrc/cpu/optim.cpp, in place on the
caller's arrays. The scalars PyTorch computes in Python floats are computed here the same way
(as pyconv/backends/numpy_ref/optim.py does) and rounded to the array's dtype by the kernel."""

from __future__ import annotations

import numpy as np

from ..._native import _C
from . import ready

__all__ = ["adam_step", "sgd_step"]


def _float_param(param):
    if param.dtype not in (np.float32, np.float64):
        raise TypeError(f"param must be float32 or float64, got {param.dtype}")
    return in_place("param", param)


def in_place(name, array):
    """``array`` itself, checked to be updatable in place: a C-contiguous, aligned, writeable
    NumPy array (a copy would leave the caller's array unchanged)."""
    flags = array.flags
    if not (flags.c_contiguous and flags.aligned):
        raise ValueError(f"{name} is updated in place and must be C-contiguous "
                         f"(got strides {array.strides} for shape {array.shape})")
    if not flags.writeable:
        raise ValueError(f"{name} is updated in place and must be writeable")
    return array


def _like(name, array, param):
    if array.dtype != param.dtype:
        raise TypeError(f"{name} has dtype {array.dtype}, expected {param.dtype}")
    if array.shape != param.shape:
        raise ValueError(f"{name} has shape {array.shape}, expected {param.shape}")
    return array


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, nesterov, weight_decay,
             maximize, first_step):
    _float_param(param)
    grad = ready(_like("grad", grad, param))
    if momentum != 0:
        if momentum_buffer is None:
            raise ValueError("momentum_buffer is required when momentum != 0")
        in_place("momentum_buffer", _like("momentum_buffer", momentum_buffer, param))
    else:
        momentum_buffer = None
    _C.sgd_step(param, grad, momentum_buffer, float(lr), float(momentum), 1.0 - dampening,
                float(weight_decay), bool(nesterov), bool(maximize), bool(first_step))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, amsgrad, maximize, decoupled_weight_decay):
    _float_param(param)
    grad = ready(_like("grad", grad, param))
    in_place("exp_avg", _like("exp_avg", exp_avg, param))
    in_place("exp_avg_sq", _like("exp_avg_sq", exp_avg_sq, param))
    if amsgrad:
        if max_exp_avg_sq is None:
            raise ValueError("max_exp_avg_sq is required when amsgrad is True")
        in_place("max_exp_avg_sq", _like("max_exp_avg_sq", max_exp_avg_sq, param))
    else:
        max_exp_avg_sq = None
    if weight_decay == 0:
        mode, decay = 0, 0.0
    elif decoupled_weight_decay:
        mode, decay = 2, 1 - lr * weight_decay
    else:
        mode, decay = 1, weight_decay
    # PyTorch's lerp switches formula at weight 0.5 (see numpy_ref.optim._lerp_)
    lerp_weight = 1 - beta1
    from_end = lerp_weight >= 0.5
    if from_end:
        lerp_weight = 1 - lerp_weight
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    _C.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, mode, float(decay),
                 float(lerp_weight), bool(from_end), float(beta2), float(1 - beta2),
                 float(-(lr / bias_correction1)), float(bias_correction2_sqrt), float(eps),
                 bool(amsgrad), bool(maximize))
