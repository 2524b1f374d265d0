"""cross_entropy (fused log_softmax + NLL), nll_loss, mse_loss and binary cross-entropy (on
probabilities and on logits) on C++ kernels (csrc/cpu/loss.cpp)."""

from __future__ import annotations

import math

import numpy as np

from ..._native import _C
from . import ready

__all__ = ["cross_entropy_backward", "cross_entropy_forward", "mse_loss_backward",
           "mse_loss_forward", "nll_loss_backward", "nll_loss_forward"]
# an older build of _C without them leaves the bce kernels on the reference
if _C is not None and hasattr(_C, "binary_cross_entropy_with_logits_backward"):
    __all__ += ["binary_cross_entropy_backward", "binary_cross_entropy_forward",
                "binary_cross_entropy_with_logits_backward",
                "binary_cross_entropy_with_logits_forward"]


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


def _periodic(weight, shape, dtype):
    """A weight broadcastable to ``shape`` as the flat array the C++ kernels take: element i of
    the flattened input uses ``w[i % len(w)]``. A weight covering only trailing dims (a scalar,
    per-class (C,), ...) stays that small; any other broadcast is materialised."""
    if weight is None:
        return None
    w = np.asarray(weight, dtype=dtype)
    dims = w.shape
    while dims and dims[0] == 1:
        dims = dims[1:]
    if len(dims) <= len(shape) and tuple(shape[len(shape) - len(dims):]) == dims:
        return ready(w.reshape(max(math.prod(dims), 1)))
    return ready(np.broadcast_to(w, shape).reshape(-1))


def binary_cross_entropy_forward(input, target, weight, reduction):
    x = ready(input)
    return _C.binary_cross_entropy_forward(x, ready(target), _periodic(weight, x.shape, x.dtype),
                                           reduction)


def binary_cross_entropy_backward(grad_loss, input, target, weight, reduction):
    x = ready(input)
    return _C.binary_cross_entropy_backward(ready(grad_loss), x, ready(target),
                                            _periodic(weight, x.shape, x.dtype), reduction)


def binary_cross_entropy_with_logits_forward(input, target, weight, pos_weight, reduction):
    x = ready(input)
    return _C.binary_cross_entropy_with_logits_forward(
        x, ready(target), _periodic(weight, x.shape, x.dtype),
        _periodic(pos_weight, x.shape, x.dtype), reduction)


def binary_cross_entropy_with_logits_backward(grad_loss, input, target, weight, pos_weight,
                                              reduction):
    x = ready(input)
    return tuple(_C.binary_cross_entropy_with_logits_backward(
        ready(grad_loss), x, ready(target), _periodic(weight, x.shape, x.dtype),
        _periodic(pos_weight, x.shape, x.dtype), reduction))
