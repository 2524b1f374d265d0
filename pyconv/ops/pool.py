"""Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d (argument checks, then backend kernels
with autograd).

Inputs are (N, C, H, W) or unbatched (C, H, W); the Functions add and remove the batch axis so
that kernels always see 4-D arrays.
"""

from __future__ import annotations

import numbers

from ..autograd import Function
from ..shapes import pair, pool_output_size
from .validate import check_float, check_ndim


def _batched(array):
    """(C, H, W) -> (1, C, H, W); 4-D arrays unchanged."""
    return array if array.ndim == 4 else array[None]


def _like_input(array, input_ndim):
    """Drop the batch axis added by :func:`_batched` for an unbatched input."""
    return array if input_ndim == 4 else array[0]


def _batched_shape(shape):
    return shape if len(shape) == 4 else (1,) + tuple(shape)


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        y, indices = ctx.backend.max_pool2d_forward(_batched(x), kernel_size, stride, padding,
                                                    dilation, ceil_mode)
        ctx.save_for_backward(indices)
        ctx.input_shape = x.shape
        ctx.geometry = (kernel_size, stride, padding, dilation)
        ctx.mark_non_differentiable(1)
        return _like_input(y, x.ndim), _like_input(indices, x.ndim)

    @staticmethod
    def backward(ctx, grad_y, grad_indices):
        (indices,) = ctx.saved_arrays
        shape = ctx.input_shape
        grad_x = ctx.backend.max_pool2d_backward(_batched(grad_y), indices, _batched_shape(shape),
                                                 *ctx.geometry)
        return grad_x.reshape(shape), None, None, None, None, None


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
        ctx.input_shape = x.shape
        ctx.geometry = (kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override)
        y = ctx.backend.avg_pool2d_forward(_batched(x), *ctx.geometry)
        return _like_input(y, x.ndim)

    @staticmethod
    def backward(ctx, grad_y):
        shape = ctx.input_shape
        grad_x = ctx.backend.avg_pool2d_backward(_batched(grad_y), _batched_shape(shape),
                                                 *ctx.geometry)
        return grad_x.reshape(shape), None, None, None, None, None, None


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, output_size):
        ctx.input_shape = x.shape
        y = ctx.backend.adaptive_avg_pool2d_forward(_batched(x), output_size)
        return _like_input(y, x.ndim)

    @staticmethod
    def backward(ctx, grad_y):
        shape = ctx.input_shape
        grad_x = ctx.backend.adaptive_avg_pool2d_backward(_batched(grad_y), _batched_shape(shape))
        return grad_x.reshape(shape), None


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------


def _check_input(input, op: str, nonempty_dims: str):
    """A float (N, C, H, W) or (C, H, W) tensor whose ``nonempty_dims`` ('C, H and W' or
    'H and W') are non-zero; the batch may be empty."""
    check_float(input, op, "input")
    check_ndim(input, (3, 4), op, "input", " ((N, C, H, W) or unbatched (C, H, W))")
    checked = input.shape[-3:] if nonempty_dims.startswith("C") else input.shape[-2:]
    if 0 in checked:
        raise ValueError(f"{op}: input must have non-zero {nonempty_dims} (only the batch "
                         f"dimension may be empty), got shape {input.shape}")


def _pool_geometry(op: str, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalised (kernel_size, stride, padding, dilation) pairs after PyTorch's checks: sizes
    >= 1, 0 <= padding <= kernel_size // 2 per dimension, and an output of at least 1 x 1."""
    kernel_size = pair(kernel_size, "kernel_size", op, minimum=1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel_size
    else:
        stride = pair(stride, "stride", op, minimum=1)
    padding = pair(padding, "padding", op, minimum=0)
    dilation = pair(dilation, "dilation", op, minimum=1)
    half = (kernel_size[0] // 2, kernel_size[1] // 2)
    if padding[0] > half[0] or padding[1] > half[1]:
        raise ValueError(f"{op}: padding must be at most half of kernel_size in each dimension "
                         f"(kernel_size // 2 = {half}), got padding={padding} for "
                         f"kernel_size={kernel_size}")
    in_size = tuple(input.shape[-2:])
    out_size = tuple(
        pool_output_size(length, k, s, p, d, ceil_mode)
        for length, k, s, p, d in zip(in_size, kernel_size, stride, padding, dilation)
    )
    if min(out_size) < 1:
        dilated = f", dilation={dilation}" if dilation != (1, 1) else ""
        raise ValueError(
            f"{op}: output size would be {out_size} (must be at least (1, 1)) for input size "
            f"(H, W)={in_size} with kernel_size={kernel_size}, stride={stride}, "
            f"padding={padding}{dilated}, ceil_mode={ceil_mode}: the window does not fit in the "
            f"padded input"
        )
    return kernel_size, stride, padding, dilation


def _adaptive_output_size(output_size, in_size, op: str):
    """int or pair of ints/None (None keeps that input size) -> (P, Q), each >= 0."""
    def is_int(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if is_int(output_size):
        sizes = (output_size, output_size)
    elif (isinstance(output_size, (tuple, list)) and len(output_size) == 2
          and all(v is None or is_int(v) for v in output_size)):
        sizes = tuple(output_size)
    else:
        raise TypeError(f"{op}: output_size must be an int or a pair of ints (None keeps the "
                        f"input size), got {output_size!r}")
    sizes = tuple(int(length) if v is None else int(v) for v, length in zip(sizes, in_size))
    if min(sizes) < 0:
        raise ValueError(f"{op}: output_size must be >= 0 in each dimension, got {output_size!r}")
    return sizes


# ---------------------------------------------------------------------------------------------
# public functions (PyTorch signatures)
# ---------------------------------------------------------------------------------------------


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over (dilated) windows; padding counts as -inf.

    input (N, C, H, W) or (C, H, W); stride defaults to kernel_size. Returns output
    (N, C, P, Q) (or (C, P, Q)), and with ``return_indices`` also the int64 flat positions
    h*W + w of each maximum in its input plane (not differentiable).
    """
    op = "max_pool2d"
    _check_input(input, op, "C, H and W")
    ceil_mode = bool(ceil_mode)
    geometry = _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode)
    output, indices = MaxPool2d.apply(input, *geometry, ceil_mode)
    return (output, indices) if return_indices else output


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over windows: the window sum divided by divisor_override if given, else by the
    window size counting padding (count_include_pad) or only the input cells.

    input (N, C, H, W) or (C, H, W); stride defaults to kernel_size. Returns (N, C, P, Q) (or
    (C, P, Q)).
    """
    op = "avg_pool2d"
    _check_input(input, op, "C, H and W")
    ceil_mode = bool(ceil_mode)
    kernel_size, stride, padding, _ = _pool_geometry(op, input, kernel_size, stride, padding, 1,
                                                     ceil_mode)
    if divisor_override is not None:
        if not isinstance(divisor_override, numbers.Integral) or isinstance(divisor_override, bool):
            raise TypeError(f"{op}: divisor_override must be an int or None, got "
                            f"{divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be non-zero, got 0")
        divisor_override = int(divisor_override)
    return AvgPool2d.apply(input, kernel_size, stride, padding, ceil_mode,
                           bool(count_include_pad), divisor_override)


def adaptive_avg_pool2d(input, output_size):
    """Mean over windows that tile the input into output_size: along an axis of length L with
    O outputs, window i spans [floor(i*L/O), ceil((i+1)*L/O)).

    input (N, C, H, W) or (C, H, W); output_size an int or a pair whose None entries keep the
    input size. Returns (N, C, P, Q) (or (C, P, Q)).
    """
    op = "adaptive_avg_pool2d"
    _check_input(input, op, "H and W")
    sizes = _adaptive_output_size(output_size, input.shape[-2:], op)
    return AdaptiveAvgPool2d.apply(input, sizes)
