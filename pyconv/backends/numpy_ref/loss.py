"""Reference losses: cross entropy (fused log-softmax + NLL), NLL, MSE, binary cross entropy on
probabilities and on logits, each forward and backward.

Conventions shared by every kernel here: ``reduction`` is 'none' (per-element or per-row loss),
'sum' or 'mean' (0-d results); outputs keep the input's dtype. Class-index losses work on rows
(M, C) with int64 targets (M,); rows whose target equals ``ignore_index`` contribute nothing, and
'mean' divides by the summed weight of the other rows (NaN when that is 0, as PyTorch).
"""

from __future__ import annotations

import numpy as np

from .activation import sigmoid_forward
from .softmax import log_softmax_forward

__all__ = [
    "binary_cross_entropy_backward", "binary_cross_entropy_forward",
    "binary_cross_entropy_with_logits_backward", "binary_cross_entropy_with_logits_forward",
    "cross_entropy_backward", "cross_entropy_forward", "mse_loss_backward", "mse_loss_forward",
    "nll_loss_backward", "nll_loss_forward",
]

# PyTorch clamps each log of binary_cross_entropy here, so 0 * log(0) is 0 and the loss finite.
_LOG_FLOOR = -100.0
# ... and floors the x * (1 - x) denominator of its gradient here.
_GRAD_EPS = 1e-12


# ----- elementwise losses -----------------------------------------------------------------------


def _reduce(loss, reduction):
    """Per-element loss -> as is ('none'), its sum or its mean (0-d; NaN when empty)."""
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / loss.size
    return np.asarray(total, dtype=loss.dtype)


def _reduction_grad(grad_loss, shape, reduction):
    """Gradient of the reduced loss with respect to each element of the per-element loss."""
    if reduction == "none":
        return grad_loss
    if reduction == "mean":
        grad_loss = grad_loss / max(int(np.prod(shape)), 1)
    return np.broadcast_to(grad_loss, shape)


def mse_loss_forward(input, target, reduction):
    """(input - target)**2, reduced. input and target of one shape. Returns () or input's shape."""
    diff = input - target
    return _reduce(diff * diff, reduction)


def mse_loss_backward(grad_loss, input, target, reduction):
    """grad_loss () or input's shape. Returns (grad_input, grad_target), each input's shape."""
    grad_input = 2 * (input - target) * _reduction_grad(grad_loss, input.shape, reduction)
    return grad_input, -grad_input


def binary_cross_entropy_forward(input, target, weight, reduction):
    """-w * (t * log(x) + (1 - t) * log(1 - x)), each log clamped to >= -100.

    input (probabilities in [0, 1]) and target of one shape; weight broadcastable to input or
    None. Returns () or input's shape.
    """
    with np.errstate(divide="ignore"):
        log_x = np.maximum(np.log(input), _LOG_FLOOR)
        log_1mx = np.maximum(np.log1p(-input), _LOG_FLOOR)
    loss = -(target * log_x + (1 - target) * log_1mx)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_backward(grad_loss, input, target, weight, reduction):
    """Gradient with respect to input: w * (x - t) / max(x * (1 - x), 1e-12), times grad_loss
    (() or input's shape). Returns input's shape."""
    g = _reduction_grad(grad_loss, input.shape, reduction)
    if weight is not None:
        g = g * weight
    denominator = np.maximum(input * (1 - input), input.dtype.type(_GRAD_EPS))
    return g * (input - target) / denominator


def _softplus_pair(x):
    """(softplus(x), softplus(-x)) = (-log(1 - sigmoid(x)), -log(sigmoid(x))).

    Written as max(+-x, 0) + log1p(exp(-|x|)) so that no exp() overflows and no log() sees 0,
    whatever |x| is.
    """
    tail = np.log1p(np.exp(-np.abs(x)))
    return np.maximum(x, 0) + tail, np.maximum(-x, 0) + tail


def binary_cross_entropy_with_logits_forward(input, target, weight, pos_weight, reduction):
    """w * (pw * t * softplus(-x) + (1 - t) * softplus(x)), which equals
    -w * (pw * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x))) without its overflow.

    input (logits) and target of one shape; weight and pos_weight broadcastable to input, or
    None. Returns () or input's shape.
    """
    softplus_x, softplus_neg_x = _softplus_pair(input)
    positive = target * softplus_neg_x
    if pos_weight is not None:
        positive = positive * pos_weight
    loss = positive + (1 - target) * softplus_x
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits_backward(grad_loss, input, target, weight, pos_weight,
                                              reduction):
    """d/dx = w * ((1 - t) * sigmoid(x) - pw * t * sigmoid(-x));
    d/dt = w * (pw * softplus(-x) - softplus(x)) (= -w * x without pos_weight).

    grad_loss () or input's shape. Returns (grad_input, grad_target), each input's shape.
    """
    g = _reduction_grad(grad_loss, input.shape, reduction)
    if weight is not None:
        g = g * weight
    positive = target if pos_weight is None else target * pos_weight
    grad_input = g * ((1 - target) * sigmoid_forward(input) - positive * sigmoid_forward(-input))
    softplus_x, softplus_neg_x = _softplus_pair(input)
    if pos_weight is not None:
        softplus_neg_x = pos_weight * softplus_neg_x
    grad_target = g * (softplus_neg_x - softplus_x)
    return grad_input, grad_target


# ----- class-index losses -----------------------------------------------------------------------


def _target_weights(target, weight, ignore_index, dtype):
    """For int64 targets (M,): (ignored rows mask, targets with ignored rows set to class 0 so
    they can index, w[t] per row with 0 on ignored rows)."""
    ignored = target == ignore_index
    safe_target = np.where(ignored, 0, target)
    if weight is None:
        target_weight = (~ignored).astype(dtype)
    else:
        target_weight = np.where(ignored, 0, weight[safe_target]).astype(dtype, copy=False)
    return ignored, safe_target, target_weight


def _reduce_rows(loss, target_weight, reduction):
    """Per-row loss (M,) -> as is, its sum, or its sum over sum(w[t]) ('mean')."""
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / target_weight.sum()
    return np.asarray(total, dtype=loss.dtype)


def _row_grad(grad_loss, ignored, target_weight, reduction):
    """Gradient of the reduced loss with respect to each row's loss (M,), 0 on ignored rows (so
    the NaN scale of an all-ignored 'mean' never reaches the logits, as in PyTorch)."""
    if reduction == "none":
        scale = grad_loss
    elif reduction == "sum":
        scale = np.broadcast_to(grad_loss, ignored.shape)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.broadcast_to(grad_loss / target_weight.sum(), ignored.shape)
    return np.where(ignored, 0, scale)


def _pick(rows, index):
    """rows[m, index[m]] for every m: (M, C), (M,) -> (M,)."""
    return np.take_along_axis(rows, index[:, None], axis=1)[:, 0]


def nll_loss_forward(log_probs, target, weight, reduction, ignore_index):
    """loss[m] = -w[t] * log_probs[m, t] (0 for ignored rows), reduced.

    log_probs (M, C); target int64 (M,); weight (C,) or None. Returns () or (M,).
    """
    ignored, safe_target, target_weight = _target_weights(target, weight, ignore_index,
                                                          log_probs.dtype)
    with np.errstate(invalid="ignore"):  # 0 * -inf on ignored rows; np.where drops it
        loss = np.where(ignored, 0, -target_weight * _pick(log_probs, safe_target))
    return _reduce_rows(loss, target_weight, reduction)


def nll_loss_backward(grad_loss, target, weight, input_shape, reduction, ignore_index):
    """Gradient of nll_loss_forward with respect to log_probs: -w[t] * grad at (m, t[m]), 0
    elsewhere. grad_loss () or (M,). Returns input_shape = (M, C)."""
    ignored, safe_target, target_weight = _target_weights(target, weight, ignore_index,
                                                          grad_loss.dtype)
    row_grad = _row_grad(grad_loss, ignored, target_weight, reduction)
    grad = np.zeros(input_shape, dtype=grad_loss.dtype)
    np.put_along_axis(grad, safe_target[:, None], (-target_weight * row_grad)[:, None], axis=1)
    return grad


def cross_entropy_forward(logits, target, weight, reduction, ignore_index, label_smoothing):
    """Fused log-softmax + NLL with label smoothing eps. Per non-ignored row, lp = log_softmax:
    loss = (1 - eps) * w[t] * -lp[t] + eps / C * sum_c w[c] * -lp[c]; ignored rows give 0.

    logits (M, C); target int64 (M,); weight (C,) or None. Returns (loss, log_probs): loss ()
    or (M,); log_probs (M, C), for the backward.
    """
    log_probs = log_softmax_forward(logits, 1)
    ignored, safe_target, target_weight = _target_weights(target, weight, ignore_index,
                                                          logits.dtype)
    with np.errstate(invalid="ignore"):  # 0 * -inf on ignored rows; np.where drops it
        loss = -target_weight * _pick(log_probs, safe_target)
        if label_smoothing > 0:
            weighted = log_probs if weight is None else log_probs * weight
            smooth = -weighted.sum(axis=1)
            n_classes = logits.shape[1]
            loss = (1 - label_smoothing) * loss + (label_smoothing / n_classes) * smooth
        loss = np.where(ignored, 0, loss)
    return _reduce_rows(loss, target_weight, reduction), log_probs


def cross_entropy_backward(grad_loss, log_probs, target, weight, reduction, ignore_index,
                           label_smoothing):
    """Gradient of cross_entropy_forward with respect to logits.

    A row's loss is -sum_c a_c * lp_c with a_c = (1 - eps) * w[t] * [c == t] + eps / C * w[c];
    its gradient with respect to the logits is softmax * sum_c a_c - a.
    grad_loss () or (M,); log_probs (M, C) from the forward. Returns grad_logits (M, C).
    """
    ignored, safe_target, target_weight = _target_weights(target, weight, ignore_index,
                                                          log_probs.dtype)
    coeff = np.zeros_like(log_probs)
    np.put_along_axis(coeff, safe_target[:, None],
                      ((1 - label_smoothing) * target_weight)[:, None], axis=1)
    if label_smoothing > 0:
        n_classes = log_probs.shape[1]
        coeff += (label_smoothing / n_classes) * (1 if weight is None else weight)
    row_grad = _row_grad(grad_loss, ignored, target_weight, reduction)
    grad = np.exp(log_probs) * coeff.sum(axis=1, keepdims=True) - coeff
    return grad * row_grad[:, None]
