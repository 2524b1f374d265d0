"""Losses: cross_entropy, nll_loss, mse_loss, binary_cross_entropy(_with_logits).

Each public function validates every argument (PyTorch's rules, with messages that name the
argument), then calls one autograd Function over the backend kernels. Differences from PyTorch,
all of them errors where PyTorch would broadcast or fail later:

* ``mse_loss`` and both binary cross entropies require ``target.shape == input.shape``
  (PyTorch's ``mse_loss`` only warns and broadcasts);
* ``weight`` (and ``pos_weight``) must not require grad, as in PyTorch, which raises too;
* ``binary_cross_entropy`` has no gradient for ``target`` (the kernel contract provides none):
  a target that requires grad raises NotImplementedError instead of silently getting none.

Class-index losses accept input (C,) (unbatched, target ()), (N, C) (target (N,)) or
(N, C, d1, ...) (target (N, d1, ...)); the Functions move the class dim last and flatten to the
kernels' (M, C) rows, and 'none' returns the loss in target's shape.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..autograd import Function, is_grad_enabled
from .softmax import log_softmax
from .validate import check_float, check_same_dtype, check_shape, check_tensor

_REDUCTIONS = ("none", "mean", "sum")


# ----- argument checks --------------------------------------------------------------------------


def _check_reduction(reduction, op: str) -> None:
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _check_not_requiring_grad(value, op: str, name: str) -> None:
    """PyTorch's losses are not differentiable with respect to their weights; refuse a weight
    that asks for a gradient rather than leave its .grad silently empty."""
    if value is not None and value.requires_grad and is_grad_enabled():
        raise ValueError(f"{op}: {name} must not require grad (the loss is not differentiable "
                         f"with respect to {name}); pass {name}.detach()")


def _check_same_shape(input, target, op: str) -> None:
    if target.shape != input.shape:
        raise ValueError(f"{op}: target must have the input's shape {input.shape}, got "
                         f"{target.shape} (pyconv does not broadcast loss targets)")


def _check_elementwise_pair(input, target, op: str) -> None:
    """input a float tensor; target a tensor of the same dtype and shape."""
    check_float(input, op, "input")
    check_tensor(target, op, "target")
    check_same_dtype(input, target, op, "target")
    _check_same_shape(input, target, op)


def _check_elementwise_weight(weight, input, op: str, name: str = "weight") -> None:
    """None, or a tensor of input's dtype that broadcasts to input's shape (without growing it)."""
    if weight is None:
        return
    check_tensor(weight, op, name)
    check_same_dtype(input, weight, op, name)
    try:
        broadcast = np.broadcast_shapes(weight.shape, input.shape)
    except ValueError:
        broadcast = None
    if broadcast != input.shape:
        raise ValueError(f"{op}: {name} of shape {weight.shape} does not broadcast to the input's "
                         f"shape {input.shape}")
    _check_not_requiring_grad(weight, op, name)


def _class_dim(input) -> int:
    return 0 if input.ndim == 1 else 1


def _check_class_input(input, op: str) -> int:
    """input (C,), (N, C) or (N, C, d1, ...) with C >= 1; returns C."""
    check_float(input, op, "input")
    if input.ndim == 0:
        raise ValueError(f"{op}: expected input of shape (C,), (N, C) or (N, C, d1, ...), got a "
                         f"0-d tensor")
    n_classes = input.shape[_class_dim(input)]
    if n_classes == 0:
        raise ValueError(f"{op}: input of shape {input.shape} has no classes (size 0 along dim "
                         f"{_class_dim(input)})")
    return n_classes


def _check_class_weight(weight, input, n_classes: int, op: str) -> None:
    if weight is None:
        return
    check_tensor(weight, op, "weight")
    check_same_dtype(input, weight, op, "weight")
    check_shape(weight, (n_classes,), op, "weight")
    _check_not_requiring_grad(weight, op, "weight")


def _check_ignore_index(ignore_index, op: str) -> int:
    if not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool):
        raise TypeError(f"{op}: ignore_index must be an int, got {ignore_index!r}")
    return int(ignore_index)


def _check_label_smoothing(label_smoothing, op: str) -> float:
    if not isinstance(label_smoothing, numbers.Real) or isinstance(label_smoothing, bool):
        raise TypeError(f"{op}: label_smoothing must be a float, got {label_smoothing!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    return float(label_smoothing)


def _check_class_loss_args(input, target, weight, ignore_index, reduction, op: str):
    """The checks cross_entropy and nll_loss share (not the target's dtype, shape and values,
    which depend on the kind of target). Returns (number of classes, ignore_index as an int)."""
    n_classes = _check_class_input(input, op)
    check_tensor(target, op, "target")
    _check_class_weight(weight, input, n_classes, op)
    ignore_index = _check_ignore_index(ignore_index, op)
    _check_reduction(reduction, op)
    return n_classes, ignore_index


def _check_index_target(target, input, n_classes: int, ignore_index: int, op: str) -> None:
    """int64 class indices of input's shape without the class dim, each in [0, C) or equal to
    ignore_index (the values are read here, before any kernel indexes with them)."""
    if target.dtype != np.int64:
        raise TypeError(f"{op}: target must be int64 class indices (or, for cross_entropy, "
                        f"floating class probabilities of the input's shape), got dtype "
                        f"{target.dtype}")
    dim = _class_dim(input)
    expected = input.shape[:dim] + input.shape[dim + 1:]
    if target.shape != expected:
        raise ValueError(f"{op}: expected target of shape {expected} (input shape {input.shape} "
                         f"without the class dim {dim}), got {target.shape}")
    t = target._data
    out_of_range = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if out_of_range.any():
        value = int(t[out_of_range].reshape(-1)[0])
        raise ValueError(f"{op}: target contains class index {value}, but input has {n_classes} "
                         f"classes (expected 0 <= target < {n_classes}, or target == "
                         f"ignore_index={ignore_index})")


def _check_probabilities(input, op: str) -> None:
    x = input._data
    outside = ~((x >= 0) & (x <= 1))  # NaN counts as outside, as in PyTorch
    if outside.any():
        value = float(x[outside].reshape(-1)[0])
        raise ValueError(f"{op}: all elements of input should be between 0 and 1 (probabilities; "
                         f"use binary_cross_entropy_with_logits for logits), got {value}")


# ----- class-index layout -------------------------------------------------------------------------


def _rows(x):
    """(C,), (N, C) or (N, C, d1, ...) -> (M, C) rows with the classes last."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim > 2:
        x = x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))
    return x.reshape(-1, x.shape[-1])


def _unrows(rows, shape):
    """Inverse of :func:`_rows`: (M, C) -> ``shape`` with the classes back at dim 1 (or 0)."""
    if len(shape) <= 2:
        return rows.reshape(shape)
    n = len(shape)
    classes_last = rows.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],))
    return classes_last.transpose((0, n - 1) + tuple(range(1, n - 1)))


# ----- autograd Functions -------------------------------------------------------------------------


class CrossEntropy(Function):
    """Class-index targets; x (C,), (N, C) or (N, C, d1, ...), target x.shape without C."""

    @staticmethod
    def forward(ctx, x, target, weight, reduction, ignore_index, label_smoothing):
        flat_target = target.reshape(-1)
        loss, log_probs = ctx.backend.cross_entropy_forward(
            _rows(x), flat_target, weight, reduction, ignore_index, label_smoothing)
        ctx.save_for_backward(log_probs, flat_target, weight)
        ctx.meta = (x.shape, reduction, ignore_index, label_smoothing)
        return loss.reshape(target.shape) if reduction == "none" else loss

    @staticmethod
    def backward(ctx, grad_loss):
        log_probs, flat_target, weight = ctx.saved_arrays
        shape, reduction, ignore_index, label_smoothing = ctx.meta
        grad_rows = ctx.backend.cross_entropy_backward(
            grad_loss.reshape(-1) if reduction == "none" else grad_loss, log_probs, flat_target,
            weight, reduction, ignore_index, label_smoothing)
        return _unrows(grad_rows, shape), None, None, None, None, None


class NLL(Function):
    """x (C,), (N, C) or (N, C, d1, ...) of log-probabilities, target x.shape without C."""

    @staticmethod
    def forward(ctx, x, target, weight, reduction, ignore_index):
        flat_target = target.reshape(-1)
        rows = _rows(x)
        loss = ctx.backend.nll_loss_forward(rows, flat_target, weight, reduction, ignore_index)
        ctx.save_for_backward(flat_target, weight)
        ctx.meta = (x.shape, rows.shape, reduction, ignore_index)
        return loss.reshape(target.shape) if reduction == "none" else loss

    @staticmethod
    def backward(ctx, grad_loss):
        flat_target, weight = ctx.saved_arrays
        shape, rows_shape, reduction, ignore_index = ctx.meta
        grad_rows = ctx.backend.nll_loss_backward(
            grad_loss.reshape(-1) if reduction == "none" else grad_loss, flat_target, weight,
            rows_shape, reduction, ignore_index)
        return _unrows(grad_rows, shape), None, None, None, None


class MSE(Function):
    @staticmethod
    def forward(ctx, x, target, reduction):
        ctx.save_for_backward(x, target)
        ctx.reduction = reduction
        return ctx.backend.mse_loss_forward(x, target, reduction)

    @staticmethod
    def backward(ctx, grad_loss):
        x, target = ctx.saved_arrays
        grad_x, grad_target = ctx.backend.mse_loss_backward(grad_loss, x, target, ctx.reduction)
        need_x, need_target = ctx.needs_input_grad[:2]
        return (grad_x if need_x else None), (grad_target if need_target else None), None


class BCE(Function):
    @staticmethod
    def forward(ctx, x, target, weight, reduction):
        ctx.save_for_backward(x, target, weight)
        ctx.reduction = reduction
        return ctx.backend.binary_cross_entropy_forward(x, target, weight, reduction)

    @staticmethod
    def backward(ctx, grad_loss):
        x, target, weight = ctx.saved_arrays
        grad_x = ctx.backend.binary_cross_entropy_backward(grad_loss, x, target, weight,
                                                           ctx.reduction)
        return grad_x, None, None, None


class BCEWithLogits(Function):
    @staticmethod
    def forward(ctx, x, target, weight, pos_weight, reduction):
        ctx.save_for_backward(x, target, weight, pos_weight)
        ctx.reduction = reduction
        return ctx.backend.binary_cross_entropy_with_logits_forward(x, target, weight, pos_weight,
                                                                    reduction)

    @staticmethod
    def backward(ctx, grad_loss):
        x, target, weight, pos_weight = ctx.saved_arrays
        grad_x, grad_target = ctx.backend.binary_cross_entropy_with_logits_backward(
            grad_loss, x, target, weight, pos_weight, ctx.reduction)
        need_x, need_target = ctx.needs_input_grad[:2]
        return (grad_x if need_x else None), (grad_target if need_target else None), None, None, None


# ----- public functions ---------------------------------------------------------------------------


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    """PyTorch's loss for class-probability targets, composed from log_softmax and tensor
    arithmetic (so gradients reach input and target):
    -sum_c w[c] * t'[c] * log_softmax(input)[c] per sample, t' = t * (1 - eps) + eps / C;
    'mean' divides by the number of samples N * d1 * ... (not by the weights)."""
    dim = _class_dim(input)
    n_classes = input.shape[dim]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    terms = log_softmax(input, dim) * target
    if weight is not None:
        terms = terms * weight.reshape((n_classes,) + (1,) * (input.ndim - dim - 1))
    if reduction == "none":
        return -terms.sum(dim)
    total = -terms.sum()
    if reduction == "sum":
        return total
    samples = input.numel() // n_classes
    return total / samples if samples else total * float("nan")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Log-softmax over the class dim followed by the negative log-likelihood.

    input (C,), (N, C) or (N, C, d1, ...) logits. target: int64 class indices of input's shape
    without C (values in [0, C) or ignore_index), or floating class probabilities of input's
    shape. weight (C,) or None. Returns () or, with reduction='none', target's shape (indices)
    or input's shape without C (probabilities).
    """
    op = "cross_entropy"
    n_classes, ignore_index = _check_class_loss_args(input, target, weight, ignore_index,
                                                     reduction, op)
    label_smoothing = _check_label_smoothing(label_smoothing, op)
    if target.dtype.kind == "f":
        check_same_dtype(input, target, op, "target")
        if target.shape != input.shape:
            raise ValueError(f"{op}: floating target (class probabilities) must have the input's "
                             f"shape {input.shape}, got {target.shape}; class indices must be "
                             f"int64")
        if ignore_index >= 0:
            raise ValueError(f"{op}: ignore_index is not supported for class-probability "
                             f"(floating) targets, got ignore_index={ignore_index}")
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    _check_index_target(target, input, n_classes, ignore_index, op)
    return CrossEntropy.apply(input, target, weight, reduction, ignore_index, label_smoothing)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood: -weight[t] * input[..., t, ...] per sample.

    input (C,), (N, C) or (N, C, d1, ...) log-probabilities; target int64 of input's shape
    without C; weight (C,) or None. 'mean' divides by the summed weight of the non-ignored
    targets. Returns () or, with reduction='none', target's shape.
    """
    op = "nll_loss"
    n_classes, ignore_index = _check_class_loss_args(input, target, weight, ignore_index,
                                                     reduction, op)
    _check_index_target(target, input, n_classes, ignore_index, op)
    return NLL.apply(input, target, weight, reduction, ignore_index)


def mse_loss(input, target, reduction="mean"):
    """(input - target)**2, reduced. input and target of one shape and dtype (pyconv raises
    where PyTorch warns and broadcasts). Gradients reach both. Returns () or input's shape."""
    op = "mse_loss"
    _check_elementwise_pair(input, target, op)
    _check_reduction(reduction, op)
    return MSE.apply(input, target, reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-weight * (target * log(input) + (1 - target) * log(1 - input)), logs clamped at -100.

    input probabilities in [0, 1]; target of input's shape; weight broadcastable to input or
    None. Returns () or input's shape. Differentiable with respect to input only.
    """
    op = "binary_cross_entropy"
    _check_elementwise_pair(input, target, op)
    _check_elementwise_weight(weight, input, op)
    _check_reduction(reduction, op)
    _check_probabilities(input, op)
    if target.requires_grad and is_grad_enabled():
        raise NotImplementedError(f"{op}: the gradient with respect to target is not "
                                  f"implemented; pass target.detach(), or use "
                                  f"binary_cross_entropy_with_logits on logits")
    return BCE.apply(input, target, weight, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Binary cross entropy of sigmoid(input), computed stably from the logits:
    -weight * (pos_weight * target * log(sigmoid(input)) + (1 - target) * log(1 - sigmoid(input))).

    input logits; target of input's shape; weight and pos_weight (usually (C,), applied along
    the last dim) broadcastable to input, or None. Gradients reach input and target.
    Returns () or input's shape.
    """
    op = "binary_cross_entropy_with_logits"
    _check_elementwise_pair(input, target, op)
    _check_elementwise_weight(weight, input, op)
    _check_elementwise_weight(pos_weight, input, op, "pos_weight")
    _check_reduction(reduction, op)
    return BCEWithLogits.apply(input, target, weight, pos_weight, reduction)
