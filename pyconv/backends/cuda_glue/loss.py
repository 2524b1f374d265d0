"""Launch glue for kernels/loss.cu: cross_entropy and nll_loss with class-index targets, and the
elementwise losses mse_loss, binary_cross_entropy and binary_cross_entropy_with_logits.

Rows (M, C), int64 targets (M,), class weights (C,) or None (the kernels then get ones).
Per-row losses go to an (M,) array, which is the result for reduction 'none'; 'sum' and 'mean'
are formed from it by ``class_loss_sum``, one block reducing in a fixed order (bitwise
reproducible). The elementwise losses work the same way on per-element losses
(``elementwise_loss_sum``); their weight and pos_weight are broadcast to the input's shape here.
"""

from __future__ import annotations

from . import as_contiguous, ceil_div, elementwise_grid, i32, i64, real, suffix

__all__ = [
    "binary_cross_entropy_backward", "binary_cross_entropy_forward",
    "binary_cross_entropy_with_logits_backward", "binary_cross_entropy_with_logits_forward",
    "cross_entropy_backward", "cross_entropy_forward", "mse_loss_backward", "mse_loss_forward",
    "nll_loss_backward", "nll_loss_forward",
]

REDUCTIONS = ("none", "mean", "sum")
# Row kernels: one block per row, one thread per class up to this many.
ROW_MAX_THREADS = 256
SUM_THREADS = 1024
ELEMENTWISE_THREADS = 256
# Row kernels stride over rows with at most one wave of resident threads (2048 per SM, sm_80+).
_THREADS_PER_SM = 2048


def _class_inputs(dev, op, rows, target, weight, reduction):
    """Check what protects memory; return contiguous (rows, target, weight), weight ones when
    None. ``rows`` is (M, C) of float32 or float64."""
    suffix(rows.dtype)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if rows.ndim != 2:
        raise ValueError(f"{op}: expected rows of shape (M, C), got {rows.shape}")
    m, c = rows.shape
    if target.dtype != "int64":
        raise TypeError(f"{op}: target must be int64, got {target.dtype}")
    if target.shape != (m,):
        raise ValueError(f"{op}: target must have shape ({m},), got {target.shape}")
    if weight is None:
        weight = dev.xp.ones((c,), dtype=rows.dtype)
    elif weight.dtype != rows.dtype:
        raise TypeError(f"{op}: weight has dtype {weight.dtype} but the rows have {rows.dtype}")
    elif weight.shape != (c,):
        raise ValueError(f"{op}: weight must have shape ({c},), got {weight.shape}")
    return as_contiguous(dev, rows), as_contiguous(dev, target), as_contiguous(dev, weight)


def _target_args(target, weight, classes, ignore_index):
    """The kernels' (target, weight, M, C, ignore_index) arguments."""
    return (target, weight, i64(target.shape[0], "rows"), i32(classes, "classes"),
            i64(ignore_index, "ignore_index"))


def _smoothing_scales(dtype, label_smoothing, classes):
    """(1 - eps, eps / C) as the reference rounds them: in Python floats, then to the dtype."""
    smooth = label_smoothing / classes if label_smoothing > 0 and classes else 0.0
    return real(dtype, 1 - label_smoothing), real(dtype, smooth)


def _row_launch(dev, rows, classes):
    """grid, block for the one-block-per-row kernels: a warp multiple covering the classes."""
    threads = min(ROW_MAX_THREADS, max(32, ceil_div(classes, 32) * 32))
    blocks = max(1, min(rows, dev.multiprocessors * (_THREADS_PER_SM // threads)))
    return (blocks,), (threads,)


def _class_loss_sum(dev, values, target_args, divide_by_weight):
    """sum(values), over the summed target weights when ``divide_by_weight``: a 0-d array."""
    out = dev.xp.empty((), dtype=values.dtype)
    dev.function("loss", "class_loss_sum_" + suffix(values.dtype))(
        (1,), (SUM_THREADS,),
        (out, values, i64(values.size, "values"), *target_args, i32(divide_by_weight, "flag")))
    return out


def _reduce(dev, row_loss, target_args, reduction):
    if reduction == "none":
        return row_loss
    return _class_loss_sum(dev, row_loss, target_args, reduction == "mean")


def _row_grad(dev, op, grad_loss, dtype, target_args, reduction):
    """(array, stride): the gradient reaching row m's loss is array[m * stride] (the kernels zero
    it on ignored rows)."""
    if grad_loss.dtype != dtype:
        raise TypeError(f"{op}: grad_loss has dtype {grad_loss.dtype}, expected {dtype}")
    rows = int(target_args[2])
    if reduction == "none":
        if grad_loss.shape != (rows,):
            raise ValueError(f"{op}: grad_loss must have shape ({rows},) for reduction 'none', "
                             f"got {grad_loss.shape}")
        return as_contiguous(dev, grad_loss), i64(1, "stride")
    if grad_loss.size != 1:
        raise ValueError(f"{op}: grad_loss must hold one value for reduction {reduction!r}, got "
                         f"shape {grad_loss.shape}")
    grad_loss = as_contiguous(dev, grad_loss)
    if reduction == "mean":
        grad_loss = _class_loss_sum(dev, grad_loss, target_args, True)
    return grad_loss, i64(0, "stride")


def cross_entropy_forward(dev, logits, target, weight, reduction, ignore_index, label_smoothing):
    op = "cross_entropy_forward"
    logits, target, weight = _class_inputs(dev, op, logits, target, weight, reduction)
    m, c = logits.shape
    xp = dev.xp
    log_probs = xp.empty((m, c), dtype=logits.dtype)
    row_loss = xp.empty((m,), dtype=logits.dtype)
    target_args = _target_args(target, weight, c, ignore_index)
    if m:
        grid, block = _row_launch(dev, m, c)
        dev.function("loss", "cross_entropy_forward_rows_" + suffix(logits.dtype))(
            grid, block, (row_loss, log_probs, logits, *target_args,
                          *_smoothing_scales(logits.dtype, label_smoothing, c)))
    return _reduce(dev, row_loss, target_args, reduction), log_probs


def cross_entropy_backward(dev, grad_loss, log_probs, target, weight, reduction, ignore_index,
                           label_smoothing):
    op = "cross_entropy_backward"
    log_probs, target, weight = _class_inputs(dev, op, log_probs, target, weight, reduction)
    m, c = log_probs.shape
    target_args = _target_args(target, weight, c, ignore_index)
    row_grad, stride = _row_grad(dev, op, grad_loss, log_probs.dtype, target_args, reduction)
    grad = dev.xp.empty((m, c), dtype=log_probs.dtype)
    if grad.size:
        grid, block = _row_launch(dev, m, c)
        dev.function("loss", "cross_entropy_backward_rows_" + suffix(log_probs.dtype))(
            grid, block, (grad, row_grad, stride, log_probs, *target_args,
                          *_smoothing_scales(log_probs.dtype, label_smoothing, c)))
    return grad


def nll_loss_forward(dev, log_probs, target, weight, reduction, ignore_index):
    op = "nll_loss_forward"
    log_probs, target, weight = _class_inputs(dev, op, log_probs, target, weight, reduction)
    m, c = log_probs.shape
    row_loss = dev.xp.empty((m,), dtype=log_probs.dtype)
    target_args = _target_args(target, weight, c, ignore_index)
    if m:
        grid, block = elementwise_grid(dev, m, ELEMENTWISE_THREADS)
        dev.function("loss", "nll_loss_forward_rows_" + suffix(log_probs.dtype))(
            grid, block, (row_loss, log_probs, *target_args))
    return _reduce(dev, row_loss, target_args, reduction)


def nll_loss_backward(dev, grad_loss, target, weight, input_shape, reduction, ignore_index):
    op = "nll_loss_backward"
    grad = dev.xp.empty(tuple(int(s) for s in input_shape), dtype=grad_loss.dtype)
    # the output carries the (M, C) shape and the dtype the checks compare with
    _, target, weight = _class_inputs(dev, op, grad, target, weight, reduction)
    m, c = grad.shape
    target_args = _target_args(target, weight, c, ignore_index)
    row_grad, stride = _row_grad(dev, op, grad_loss, grad.dtype, target_args, reduction)
    if grad.size:
        grid, block = elementwise_grid(dev, grad.size, ELEMENTWISE_THREADS)
        dev.function("loss", "nll_loss_backward_" + suffix(grad.dtype))(
            grid, block, (grad, row_grad, stride, *target_args))
    return grad


# ---------------------------------------------------------------------------------------------
# elementwise losses
# ---------------------------------------------------------------------------------------------


def _elementwise_inputs(dev, op, input, target, reduction):
    """Contiguous (input, target) of one shape and float dtype; the reduction checked."""
    suffix(input.dtype)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if target.dtype != input.dtype:
        raise TypeError(f"{op}: target has dtype {target.dtype} but input has {input.dtype}")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target must have the input's shape {tuple(input.shape)}, got "
                         f"{tuple(target.shape)}")
    return as_contiguous(dev, input), as_contiguous(dev, target)


def _broadcast_weight(dev, op, name, weight, input):
    """(array, flag) kernel arguments: ``weight`` broadcast to the input's shape and made
    contiguous, flag 1; or the input itself as a never-read stand-in, flag 0."""
    if weight is None:
        return input, i32(0, "has_" + name)
    if weight.dtype != input.dtype:
        raise TypeError(f"{op}: {name} has dtype {weight.dtype} but input has {input.dtype}")
    try:
        full = dev.xp.broadcast_to(weight, input.shape)
    except ValueError:
        raise ValueError(f"{op}: {name} of shape {tuple(weight.shape)} does not broadcast to the "
                         f"input's shape {tuple(input.shape)}") from None
    return as_contiguous(dev, full), i32(1, "has_" + name)


def _elementwise_launch(dev, entry, input, args):
    n = input.size
    if n:
        grid, block = elementwise_grid(dev, n, ELEMENTWISE_THREADS)
        dev.function("loss", f"{entry}_{suffix(input.dtype)}")(
            grid, block, (*args, i64(n, "elements")))


def _elementwise_reduce(dev, loss, reduction):
    """The per-element loss as is ('none') or its sum / mean as a 0-d array."""
    if reduction == "none":
        return loss
    out = dev.xp.empty((), dtype=loss.dtype)
    divisor = loss.size if reduction == "mean" else 1
    dev.function("loss", "elementwise_loss_sum_" + suffix(loss.dtype))(
        (1,), (SUM_THREADS,), (out, loss, i64(loss.size, "elements"), real(loss.dtype, divisor)))
    return out


def _elementwise_grad(dev, op, grad_loss, input, reduction):
    """(grad_loss, stride, divisor) arguments: the gradient reaching element i is
    grad_loss[i * stride] / divisor."""
    if grad_loss.dtype != input.dtype:
        raise TypeError(f"{op}: grad_loss has dtype {grad_loss.dtype}, expected {input.dtype}")
    if reduction == "none":
        if tuple(grad_loss.shape) != tuple(input.shape):
            raise ValueError(f"{op}: grad_loss must have the input's shape {tuple(input.shape)} "
                             f"for reduction 'none', got {tuple(grad_loss.shape)}")
        return as_contiguous(dev, grad_loss), i64(1, "stride"), real(input.dtype, 1)
    if grad_loss.size != 1:
        raise ValueError(f"{op}: grad_loss must hold one value for reduction {reduction!r}, got "
                         f"shape {tuple(grad_loss.shape)}")
    divisor = max(input.size, 1) if reduction == "mean" else 1
    return as_contiguous(dev, grad_loss), i64(0, "stride"), real(input.dtype, divisor)


def mse_loss_forward(dev, input, target, reduction):
    input, target = _elementwise_inputs(dev, "mse_loss_forward", input, target, reduction)
    loss = dev.xp.empty(input.shape, dtype=input.dtype)
    _elementwise_launch(dev, "mse_loss_forward", input, (loss, input, target))
    return _elementwise_reduce(dev, loss, reduction)


def mse_loss_backward(dev, grad_loss, input, target, reduction):
    op = "mse_loss_backward"
    input, target = _elementwise_inputs(dev, op, input, target, reduction)
    grad = _elementwise_grad(dev, op, grad_loss, input, reduction)
    grad_input = dev.xp.empty(input.shape, dtype=input.dtype)
    grad_target = dev.xp.empty_like(grad_input)
    _elementwise_launch(dev, "mse_loss_backward", input,
                        (grad_input, grad_target, *grad, input, target))
    return grad_input, grad_target


def binary_cross_entropy_forward(dev, input, target, weight, reduction):
    op = "binary_cross_entropy_forward"
    input, target = _elementwise_inputs(dev, op, input, target, reduction)
    loss = dev.xp.empty(input.shape, dtype=input.dtype)
    _elementwise_launch(dev, op, input,
                        (loss, input, target, *_broadcast_weight(dev, op, "weight", weight, input)))
    return _elementwise_reduce(dev, loss, reduction)


def binary_cross_entropy_backward(dev, grad_loss, input, target, weight, reduction):
    op = "binary_cross_entropy_backward"
    input, target = _elementwise_inputs(dev, op, input, target, reduction)
    grad = _elementwise_grad(dev, op, grad_loss, input, reduction)
    grad_input = dev.xp.empty(input.shape, dtype=input.dtype)
    _elementwise_launch(dev, op, input,
                        (grad_input, *grad, input, target,
                         *_broadcast_weight(dev, op, "weight", weight, input)))
    return grad_input


def binary_cross_entropy_with_logits_forward(dev, input, target, weight, pos_weight, reduction):
    op = "binary_cross_entropy_with_logits_forward"
    input, target = _elementwise_inputs(dev, op, input, target, reduction)
    loss = dev.xp.empty(input.shape, dtype=input.dtype)
    _elementwise_launch(dev, op, input,
                        (loss, input, target, *_broadcast_weight(dev, op, "weight", weight, input),
                         *_broadcast_weight(dev, op, "pos_weight", pos_weight, input)))
    return _elementwise_reduce(dev, loss, reduction)


def binary_cross_entropy_with_logits_backward(dev, grad_loss, input, target, weight, pos_weight,
                                              reduction):
    op = "binary_cross_entropy_with_logits_backward"
    input, target = _elementwise_inputs(dev, op, input, target, reduction)
    grad = _elementwise_grad(dev, op, grad_loss, input, reduction)
    grad_input = dev.xp.empty(input.shape, dtype=input.dtype)
    grad_target = dev.xp.empty_like(grad_input)
    _elementwise_launch(dev, op, input,
                        (grad_input, grad_target, *grad, input, target,
                         *_broadcast_weight(dev, op, "weight", weight, input),
                         *_broadcast_weight(dev, op, "pos_weight", pos_weight, input)))
    return grad_input, grad_target
