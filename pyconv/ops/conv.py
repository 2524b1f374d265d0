"""``conv2d`` and ``conv_transpose2d``: PyTorch's signatures, argument checks, and autograd over
the backend's conv kernels.

Activations are (N, C, H, W), or unbatched (C, H, W) as PyTorch allows. conv2d weights are
(K, C/G, R, S) (OIHW); conv_transpose2d weights are (C, K/G, R, S) (IOHW). The bias gradient is
the output gradient summed over (N, P, Q), taken here rather than in a kernel.
"""

from __future__ import annotations

import numbers

from ..autograd import Function
from ..shapes import conv_padding, pair
from .validate import check_float, check_ndim, check_same_dtype, check_shape


def _save_inputs(ctx, x, weight, geometry):
    """Save what both backwards need; (C, H, W) input gets a batch dim, removed again later."""
    ctx.unbatched = x.ndim == 3
    if ctx.unbatched:
        x = x[None]
    ctx.save_for_backward(x, weight)
    ctx.geometry = geometry
    return x


def _backward(ctx, grad_y, input_grad, weight_grad):
    """(grad_x, grad_weight, grad_bias), each None unless needed. ``input_grad(grad_y, x,
    weight)`` and ``weight_grad(grad_y, x, weight)`` call the op's kernels (batched arrays)."""
    x, weight = ctx.saved_arrays
    if ctx.unbatched:
        grad_y = grad_y[None]
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    grad_x = grad_w = grad_b = None
    if need_x:
        grad_x = input_grad(grad_y, x, weight)
        grad_x = grad_x[0] if ctx.unbatched else grad_x
    if need_w:
        grad_w = weight_grad(grad_y, x, weight)
    if need_b:
        grad_b = grad_y.sum(axis=(0, 2, 3))
    return grad_x, grad_w, grad_b


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        x = _save_inputs(ctx, x, weight, (stride, padding, dilation, groups))
        y = ctx.backend.conv2d_forward(x, weight, bias, stride, padding, dilation, groups)
        return y[0] if ctx.unbatched else y

    @staticmethod
    def backward(ctx, grad_y):
        kernels, geometry = ctx.backend, ctx.geometry
        grads = _backward(
            ctx, grad_y,
            lambda g, x, w: kernels.conv2d_backward_input(g, w, x.shape, *geometry),
            lambda g, x, w: kernels.conv2d_backward_weight(g, x, w.shape, *geometry),
        )
        return grads + (None,) * 4


class ConvTranspose2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, dilation, groups):
        x = _save_inputs(ctx, x, weight, (stride, padding, dilation, groups))
        y = ctx.backend.conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding,
                                                 dilation, groups)
        return y[0] if ctx.unbatched else y

    @staticmethod
    def backward(ctx, grad_y):
        kernels, geometry = ctx.backend, ctx.geometry

        def input_grad(g, x, w):
            return kernels.conv_transpose2d_backward_input(g, w, x.shape, *geometry)

        grads = _backward(
            ctx, grad_y, input_grad,
            lambda g, x, w: kernels.conv_transpose2d_backward_weight(g, x, w.shape, *geometry),
        )
        return grads + (None,) * 5


def _check_tensors(op, input, weight, bias, weight_layout):
    """Types, dtypes and ranks shared by both ops."""
    check_float(input, op, "input")
    check_same_dtype(input, weight, op, "weight")
    check_same_dtype(input, bias, op, "bias")
    check_ndim(input, (3, 4), op, "input", ", i.e. (C, H, W) or (N, C, H, W)")
    check_ndim(weight, 4, op, "weight", f", i.e. {weight_layout}")
    if bias is not None:
        check_ndim(bias, 1, op, "bias", ", i.e. (out_channels,)")
    if min(weight.shape[2:]) < 1:
        raise ValueError(f"{op}: weight has an empty kernel: shape {weight.shape}")


def _check_groups(op, groups):
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    return int(groups)


def _check_divides(op, groups, channels, what):
    if channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {what}, got {channels}")


def _check_kernel_fits(op, input_size, padding, kernel, dilation):
    """The dilated kernel must fit in the padded input (else there is no output position)."""
    (h, w), (top, bottom, left, right) = input_size, padding
    padded = (h + top + bottom, w + left + right)
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if padded[0] < extent[0] or padded[1] < extent[1]:
        raise ValueError(
            f"{op}: the padded input size ({padded[0]} x {padded[1]}) is smaller than the dilated "
            f"kernel size ({extent[0]} x {extent[1]}): input {h} x {w}, padding (top, bottom, "
            f"left, right)={padding}, kernel {kernel[0]} x {kernel[1]}, dilation={dilation}"
        )


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    input (N, C, H, W) or (C, H, W); weight (K, C/groups, R, S); bias (K,) or None.
    padding: int, pair, 'valid' or 'same' ('same' needs stride 1; an even dilated kernel pads
    one more row/column at the bottom/right). Returns (N, K, P, Q) (or (K, P, Q)) with
    P = (H + 2*ph - dh*(R-1) - 1) // sh + 1.
    """
    op = "conv2d"
    _check_tensors(op, input, weight, bias, "(out_channels, in_channels/groups, kH, kW)")
    groups = _check_groups(op, groups)
    stride = pair(stride, "stride", op, minimum=1)
    dilation = pair(dilation, "dilation", op, minimum=1)
    kernel = tuple(weight.shape[2:])
    padding = conv_padding(padding, kernel, stride, dilation, op)
    channels, out_channels = input.shape[-3], weight.shape[0]
    _check_divides(op, groups, out_channels, "output channels (weight.shape[0])")
    _check_divides(op, groups, channels, "input channels (input.shape[-3])")
    if channels != weight.shape[1] * groups:
        raise ValueError(
            f"{op}: input has {channels} channels but weight expects {weight.shape[1] * groups} "
            f"(weight.shape[1]={weight.shape[1]} * groups={groups})"
        )
    check_shape(bias, (out_channels,), op, "bias")
    _check_kernel_fits(op, input.shape[-2:], padding, kernel, dilation)
    return Conv2d.apply(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution (the adjoint of conv2d), as
    ``torch.nn.functional.conv_transpose2d`` (note: groups comes before dilation).

    input (N, C, H, W) or (C, H, W); weight (C, K/groups, R, S); bias (K,) or None.
    output_padding must be smaller than stride or dilation (per dimension). Returns (N, K, P, Q)
    with P = (H - 1)*sh - 2*ph + dh*(R - 1) + oph + 1.
    """
    op = "conv_transpose2d"
    _check_tensors(op, input, weight, bias, "(in_channels, out_channels/groups, kH, kW)")
    groups = _check_groups(op, groups)
    stride = pair(stride, "stride", op, minimum=1)
    dilation = pair(dilation, "dilation", op, minimum=1)
    padding = pair(padding, "padding", op, minimum=0)
    output_padding = pair(output_padding, "output_padding", op, minimum=0)
    for extra, s, d in zip(output_padding, stride, dilation):
        if extra >= s and extra >= d:
            raise ValueError(
                f"{op}: output_padding must be smaller than either stride or dilation in each "
                f"dimension, got output_padding={output_padding}, stride={stride}, "
                f"dilation={dilation}"
            )
    channels = input.shape[-3]
    _check_divides(op, groups, weight.shape[0], "input channels (weight.shape[0])")
    if channels != weight.shape[0]:
        raise ValueError(
            f"{op}: input has {channels} channels but weight expects {weight.shape[0]} "
            f"(weight.shape[0]={weight.shape[0]})"
        )
    out_channels = weight.shape[1] * groups
    check_shape(bias, (out_channels,), op, "bias")
    in_size, kernel = input.shape[-2:], weight.shape[2:]
    out_size = tuple(
        (n - 1) * s - 2 * p + d * (k - 1) + e + 1
        for n, s, p, d, k, e in zip(in_size, stride, padding, dilation, kernel, output_padding)
    )
    if min(out_size) < 1:
        raise ValueError(
            f"{op}: the output size ({out_size[0]} x {out_size[1]}) is not positive: "
            f"(input - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1 with "
            f"input {in_size[0]} x {in_size[1]}, stride={stride}, padding={padding}, "
            f"dilation={dilation}, kernel {kernel[0]} x {kernel[1]}, "
            f"output_padding={output_padding}"
        )
    return ConvTranspose2d.apply(input, weight, bias, stride, padding, output_padding, dilation,
                                 groups)
