"""cross_entropy (fused log_softmax + NLL), nll_loss and mse_loss on C++ row kernels
(csrc/cpu/loss.cpp)."""

from __future__ import annotations

from ..._native import _C
from . import ready

__all__ = ["cross_entropy_backward", "cross_entropy_forward", "mse_loss_backward",
           "mse_loss_forward", "nll_loss_backward", "nll_loss_forward"]


def cross_entropy_forward(logits, target, weight, reduction, ignore_index, label_smoothing):
    return _C.cross_entropy_forward(ready(logits), ready(target), ready(weight), reduction,
                                    int(ignore_index), float(label_smoothing))


def cross_entropy_backward(grad_loss, log_probs, target, weight, reduction, ignore_index,
                           label_smoothing):
    return _C.cross_entropy_backward(ready(grad_loss), ready(log_probs), ready(target),
                                     ready(weight), reduction, int(ignore_index),
                                     float(label_smoothing))


def nll_loss_forward(log_probs, target, weight, reduction, ignore_index):
    return _C.nll_loss_forward(ready(log_probs), ready(target), ready(weight), reduction,
                               int(ignore_index))


def nll_loss_backward(grad_loss, target, weight, input_shape, reduction, ignore_index):
    return _C.nll_loss_backward(ready(grad_loss), ready(target), ready(weight),
                                [int(v) for v in input_shape], reduction, int(ignore_index))


def mse_loss_forward(input, target, reduction):
    return _C.mse_loss_forward(ready(input), ready(target), reduction)


def mse_loss_backward(grad_loss, input, target, reduction):
    return tuple(_C.mse_loss_backward(ready(grad_loss), ready(input), ready(target), reduction))
