"""Reference conv2d and conv_transpose2d kernels: im2col + one GEMM per group.

Layout of the column matrix (``_im2col``): rows ``(c, r, s)`` and columns ``(n, p, q)``, i.e.
shape ``(C*R*S, N*P*Q)``. With channels leading, the rows of group ``g`` are one contiguous
block, so every kernel is a single (batched over groups) matmul on contiguous operands:

* forward:         y_cols (K, N*P*Q)     = W (K, C/G*R*S)   @ cols
* backward_weight: dW (K, C/G*R*S)       = grad_y (K, N*P*Q) @ cols.T
* backward_input:  grad_cols (C*R*S, NPQ) = W.T @ grad_y (K, N*P*Q), then a col2im
  scatter-add with one strided ``+=`` per kernel tap.

Only small arrays (outputs and output gradients) are transposed between NCHW and (K, N, P, Q).
conv_transpose2d is conv2d's adjoint, so its kernels are the conv2d kernels with the roles of
input and output exchanged; there is no second implementation.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...shapes import conv_output_size

__all__ = [
    "conv2d_backward_input", "conv2d_backward_weight", "conv2d_forward",
    "conv_transpose2d_backward_input", "conv_transpose2d_backward_weight",
    "conv_transpose2d_forward",
]


def _pad(x, padding):
    """x (N, C, H, W) zero-padded by (top, bottom, left, right); x itself when nothing to pad."""
    top, bottom, left, right = padding
    if not (top or bottom or left or right):
        return x
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def _im2col(x, kernel_size, out_size, stride, padding, dilation):
    """x (N, C, H, W) -> cols (C*R*S, N*P*Q) with
    cols[(c, r, s), (n, p, q)] = x_pad[n, c, p*sh + r*dh, q*sw + s*dw].

    ``out_size`` = (P, Q) is given rather than derived, so that windows past P (which exist when
    a transposed convolution used output_padding >= stride) are simply not gathered.
    """
    (kh, kw), (p, q), (sh, sw), (dh, dw) = kernel_size, out_size, stride, dilation
    xp = _pad(x, padding)
    # windows[n, c, i, j, a, b] = xp[n, c, i + a, j + b]; a, b span the dilated kernel extent
    windows = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    taps = windows[:, :, : (p - 1) * sh + 1 : sh, : (q - 1) * sw + 1 : sw, ::dh, ::dw]
    n, c = x.shape[:2]
    # (N, C, P, Q, R, S) -> (C, R, S, N, P, Q); the reshape makes the one copy
    return taps.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * p * q)


def _col2im(cols, input_shape, kernel_size, out_size, stride, padding, dilation):
    """Adjoint of _im2col: cols (C*R*S, N*P*Q) summed back into an (N, C, H, W) array."""
    n, c, h, w = input_shape
    (kh, kw), (p, q), (sh, sw), (dh, dw) = kernel_size, out_size, stride, dilation
    top, bottom, left, right = padding
    taps = cols.reshape(c, kh, kw, n, p, q)
    # accumulate channel-major so each tap adds a contiguous (C, N, P, Q) block
    acc = np.zeros((c, n, h + top + bottom, w + left + right), dtype=cols.dtype)
    for r in range(kh):
        for s in range(kw):
            rows = slice(r * dh, r * dh + (p - 1) * sh + 1, sh)
            columns = slice(s * dw, s * dw + (q - 1) * sw + 1, sw)
            acc[:, :, rows, columns] += taps[:, r, s]
    return np.ascontiguousarray(acc[:, :, top:top + h, left:left + w].transpose(1, 0, 2, 3))


def _grouped_rows(cols, groups):
    """cols (C*R*S, N*P*Q) -> (G, C/G*R*S, N*P*Q), a view."""
    rows, columns = cols.shape
    return cols.reshape(groups, rows // groups, columns)


def _channels_first(a, groups):
    """a (N, K, P, Q) -> (G, K/G, N*P*Q), contiguous (one copy of a small array)."""
    n, k, p, q = a.shape
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).reshape(groups, k // groups, n * p * q)


def _grouped_weight(weight, groups):
    """weight (K, C/G, R, S) -> (G, K/G, C/G*R*S), a view."""
    k, c_per_group, kh, kw = weight.shape
    return weight.reshape(groups, k // groups, c_per_group * kh * kw)


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    n, _, h, w = x.shape
    k, _, kh, kw = weight.shape
    top, bottom, left, right = padding
    p = conv_output_size(h, top, bottom, kh, stride[0], dilation[0])
    q = conv_output_size(w, left, right, kw, stride[1], dilation[1])
    cols = _im2col(x, (kh, kw), (p, q), stride, padding, dilation)
    y = np.matmul(_grouped_weight(weight, groups), _grouped_rows(cols, groups))
    y_nchw = y.reshape(k, n, p, q).transpose(1, 0, 2, 3)
    if bias is None:
        return np.ascontiguousarray(y_nchw)
    # the bias add doubles as the NCHW copy
    return np.add(y_nchw, bias.reshape(k, 1, 1), out=np.empty((n, k, p, q), dtype=y.dtype))


def conv2d_backward_input(grad_y, weight, input_shape, stride, padding, dilation, groups):
    p, q = grad_y.shape[2:]
    grad_cols = np.matmul(_grouped_weight(weight, groups).transpose(0, 2, 1),
                          _channels_first(grad_y, groups))
    return _col2im(grad_cols, tuple(input_shape), weight.shape[2:], (p, q), stride, padding,
                   dilation)


def conv2d_backward_weight(grad_y, x, weight_shape, stride, padding, dilation, groups):
    n, k, p, q = grad_y.shape
    kh, kw = weight_shape[2:]
    cols = _im2col(x, (kh, kw), (p, q), stride, padding, dilation)
    grad_w = np.matmul(_channels_first(grad_y, groups),
                       _grouped_rows(cols, groups).transpose(0, 2, 1))
    return grad_w.reshape(tuple(weight_shape))


def _symmetric(padding):
    ph, pw = padding
    return (ph, ph, pw, pw)


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, dilation, groups):
    n, _, h, w = x.shape
    _, k_per_group, kh, kw = weight.shape
    p = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    q = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    # weight (C, K/G, R, S) is the OIHW weight of the conv2d that maps y (N, K, P, Q) to x
    y = conv2d_backward_input(x, weight, (n, k_per_group * groups, p, q), stride,
                              _symmetric(padding), dilation, groups)
    if bias is not None:
        y += bias.reshape(-1, 1, 1)
    return y


def conv_transpose2d_backward_input(grad_y, weight, input_shape, stride, padding, dilation,
                                    groups):
    grad_x = conv2d_forward(grad_y, weight, None, stride, _symmetric(padding), dilation, groups)
    height, width = input_shape[2:]
    if grad_x.shape[2:] != (height, width):
        # output_padding >= stride leaves trailing output rows/columns that no input pixel
        # reached; the strided conv2d of grad_y then yields extra rows/columns that belong to no x
        grad_x = np.ascontiguousarray(grad_x[:, :, :height, :width])
    return grad_x


def conv_transpose2d_backward_weight(grad_y, x, weight_shape, stride, padding, dilation, groups):
    return conv2d_backward_weight(x, grad_y, weight_shape, stride, _symmetric(padding), dilation,
                                  groups)
