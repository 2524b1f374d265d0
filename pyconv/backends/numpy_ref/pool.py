"""Reference pooling kernels: max_pool2d, avg_pool2d, adaptive_avg_pool2d (forward and backward).

Arrays are (N, C, H, W) -> (N, C, P, Q). Max and average pooling loop over the kh*kw window taps
only: each tap is one strided slice of the padded input, covering every output position at once.
Adaptive pooling sums one axis at a time, looping over the offsets inside its windows.
"""

from __future__ import annotations

import numpy as np

from ...shapes import pool_output_size

__all__ = [
    "adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_forward",
    "avg_pool2d_backward", "avg_pool2d_forward",
    "max_pool2d_backward", "max_pool2d_forward",
]


# ---------------------------------------------------------------------------------------------
# window geometry shared by max and average pooling
# ---------------------------------------------------------------------------------------------


def _output_size(input_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """(P, Q) for an (N, C, H, W) input."""
    return tuple(
        pool_output_size(length, k, s, p, d, ceil_mode)
        for length, k, s, p, d in zip(input_shape[2:], kernel_size, stride, padding, dilation)
    )


def _padded_length(length, out_len, kernel, stride, padding, dilation):
    """Length of the padded axis: the symmetric padding, extended on the right when a ceil_mode
    window reaches past it."""
    reach = (out_len - 1) * stride + dilation * (kernel - 1) + 1
    return max(length + 2 * padding, reach)


def _pad(x, out_size, kernel_size, stride, padding, dilation, fill):
    """x (N, C, H, W) padded with ``fill`` so that every tap slice of :func:`_tap` is in range."""
    N, C, H, W = x.shape
    (ph, pw) = padding
    Hp = _padded_length(H, out_size[0], kernel_size[0], stride[0], ph, dilation[0])
    Wp = _padded_length(W, out_size[1], kernel_size[1], stride[1], pw, dilation[1])
    if (Hp, Wp) == (H, W):
        return x
    out = np.full((N, C, Hp, Wp), fill, dtype=x.dtype)
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


def _tap(i, j, out_size, stride, dilation):
    """Index of tap (i, j) of every window in the padded input: an (N, C, P, Q) strided view."""
    (P, Q), (sh, sw), (dh, dw) = out_size, stride, dilation
    return (slice(None), slice(None),
            slice(i * dh, i * dh + (P - 1) * sh + 1, sh),
            slice(j * dw, j * dw + (Q - 1) * sw + 1, sw))


# ---------------------------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------------------------


def _first_valid_tap(out_len, stride, padding, dilation):
    """Input coordinate of the first tap at or after 0 of each window, (out_len,) int64.

    PyTorch's CPU kernel starts every window with this position as its argmax, so a window of
    -inf values reports it (and a window whose taps all fall in the padding, possible with
    dilation, reports it even though it lies outside the window or the plane).
    """
    start = np.arange(out_len, dtype=np.int64) * stride - padding
    skipped = np.maximum(-start + dilation - 1, 0) // dilation  # taps left of the input
    return start + skipped * dilation


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Max over each window, padding counting as -inf.

    x (N, C, H, W). Returns (y (N, C, P, Q), indices int64 (N, C, P, Q)) with indices the flat
    h*W + w of the maximum in its plane. As PyTorch's CPU kernel, taps are visited in row-major
    order and one replaces the current maximum when it is greater or NaN: the first maximum
    wins ties, and the last NaN of a window is its maximum.
    """
    N, C, H, W = x.shape
    kh, kw = kernel_size
    P, Q = _output_size(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    xp = _pad(x, (P, Q), kernel_size, stride, padding, dilation, -np.inf)

    # Masked writes (np.where, copyto) with data-dependent masks mispredict branches and cost ~10x
    # more than plain arithmetic here, so the loop keeps only the running maximum and, per output,
    # a code: 0 = no tap won yet, else 1 + the number of the last winning tap. Taps come in
    # increasing order, so a winner's code is larger than any earlier one and max() records it.
    y = np.full((N, C, P, Q), -np.inf, dtype=x.dtype)
    code_type = np.uint8 if kh * kw < 255 else np.int64
    code = np.zeros((N, C, P, Q), dtype=code_type)
    has_nan = x.size > 0 and bool(np.isnan(x.max()))  # x.max() is NaN exactly when x holds one
    for tap in range(kh * kw):
        v = xp[_tap(tap // kw, tap % kw, (P, Q), stride, dilation)]
        wins = v > y  # padding (-inf) never wins: it is not > -inf and not NaN
        if has_nan:
            wins |= np.isnan(v)
        np.maximum(code, np.multiply(wins, tap + 1, dtype=code_type), out=code)
        np.maximum(v, y, out=y)  # on ties NumPy returns the second operand: y, as PyTorch (+-0)
    return y, _max_pool_indices(code, x.shape, (P, Q), kernel_size, stride, padding, dilation)


def _max_pool_indices(code, input_shape, out_size, kernel_size, stride, padding, dilation):
    """Flat plane indices (N, C, P, Q) int64 from the winning-tap codes of max_pool2d_forward."""
    W = input_shape[3]
    (P, Q), (kh, kw), (sh, sw) = out_size, kernel_size, stride
    (ph, pw), (dh, dw) = padding, dilation
    window_origin = ((np.arange(P, dtype=np.int64) * sh - ph)[:, None] * W
                     + (np.arange(Q, dtype=np.int64) * sw - pw)[None, :])
    taps = np.arange(kh * kw, dtype=np.int64)
    tap_offset = np.concatenate([[0], (taps // kw) * dh * W + (taps % kw) * dw])
    indices = tap_offset[code]
    indices += window_origin
    never_won = code == 0
    if never_won.any():
        first = (_first_valid_tap(P, sh, ph, dh)[:, None] * W
                 + _first_valid_tap(Q, sw, pw, dw)[None, :])
        indices = np.where(never_won, first, indices)
    return indices


def max_pool2d_backward(grad_y, indices, input_shape, kernel_size, stride, padding, dilation):
    """Scatter-add grad_y (N, C, P, Q) to the flat plane positions in indices (N, C, P, Q); the
    window geometry is not needed here.

    Overlapping windows may share a maximum, so contributions are summed in output order (as
    PyTorch). A window without any input cell (dilation can step over the whole input) reports
    an index outside the plane; its output is a constant -inf and gets no gradient.
    Returns grad_x of input_shape = (N, C, H, W).
    """
    N, C, H, W = input_shape
    planes, plane = N * C, H * W
    grad_x = np.zeros(planes * plane, dtype=grad_y.dtype)
    if grad_x.size == 0 or grad_y.size == 0:
        return grad_x.reshape(input_shape)
    flat_indices = indices.reshape(planes, -1)
    grads = grad_y.reshape(planes, -1)
    inside = (flat_indices >= 0) & (flat_indices < plane)
    offsets = flat_indices + (np.arange(planes, dtype=np.int64) * plane)[:, None]
    if inside.all():
        np.add.at(grad_x, offsets.ravel(), grads.ravel())
    else:
        np.add.at(grad_x, offsets[inside], grads[inside])
    return grad_x.reshape(input_shape)


# ---------------------------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------------------------


def _avg_divisor_1d(length, out_len, kernel, stride, padding, count_include_pad):
    """Per-window divisor along one axis, (out_len,) int64, PyTorch's rule: the window clipped to
    the padded input (never beyond it, where ceil_mode windows may reach) or, without
    count_include_pad, to the real input."""
    start = np.arange(out_len, dtype=np.int64) * stride - padding
    end = np.minimum(start + kernel, length + padding)
    if count_include_pad:
        return end - start
    return np.minimum(end, length) - np.maximum(start, 0)


def _avg_divisor(input_shape, out_size, kernel_size, stride, padding, count_include_pad,
                 divisor_override, dtype):
    """(P, Q) divisors (or the scalar override) in ``dtype``."""
    if divisor_override is not None:
        return np.asarray(divisor_override, dtype=dtype)
    rows, cols = (
        _avg_divisor_1d(length, out_len, k, s, p, count_include_pad)
        for length, out_len, k, s, p in zip(input_shape[2:], out_size, kernel_size, stride, padding)
    )
    return (rows[:, None] * cols[None, :]).astype(dtype)


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override):
    """Window sums (row-major over the taps, padding adding 0) divided by divisor_override if
    given, else by the window size clipped to the padded input (count_include_pad=True) or to
    the real input (False), as PyTorch.

    x (N, C, H, W). Returns y (N, C, P, Q).
    """
    no_dilation = (1, 1)
    P, Q = _output_size(x.shape, kernel_size, stride, padding, no_dilation, ceil_mode)
    xp = _pad(x, (P, Q), kernel_size, stride, padding, no_dilation, 0)
    sums = np.zeros(x.shape[:2] + (P, Q), dtype=x.dtype)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            sums += xp[_tap(i, j, (P, Q), stride, no_dilation)]
    divisor = _avg_divisor(x.shape, (P, Q), kernel_size, stride, padding, count_include_pad,
                           divisor_override, x.dtype)
    return sums / divisor


def avg_pool2d_backward(grad_y, input_shape, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
    """Gradient of avg_pool2d_forward: each window spreads grad_y / divisor over its cells.

    grad_y (N, C, P, Q). Returns grad_x of input_shape = (N, C, H, W).
    """
    N, C, H, W = input_shape
    (ph, pw) = padding
    no_dilation = (1, 1)
    P, Q = grad_y.shape[2:]
    divisor = _avg_divisor(input_shape, (P, Q), kernel_size, stride, padding, count_include_pad,
                           divisor_override, grad_y.dtype)
    share = grad_y / divisor
    Hp = _padded_length(H, P, kernel_size[0], stride[0], ph, 1)
    Wp = _padded_length(W, Q, kernel_size[1], stride[1], pw, 1)
    grad_padded = np.zeros((N, C, Hp, Wp), dtype=grad_y.dtype)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            # within one tap the windows hit distinct cells, so += on the view is exact
            grad_padded[_tap(i, j, (P, Q), stride, no_dilation)] += share
    return np.ascontiguousarray(grad_padded[:, :, ph:ph + H, pw:pw + W])


# ---------------------------------------------------------------------------------------------
# adaptive average pooling
# ---------------------------------------------------------------------------------------------


def _adaptive_bounds(length, out_len):
    """Window i spans [floor(i*L/O), ceil((i+1)*L/O)): (starts, ends), each (out_len,) int64."""
    i = np.arange(out_len, dtype=np.int64)
    return (i * length) // out_len, -((-(i + 1) * length) // out_len)


def _range_sums(a, axis, starts, ends):
    """Sums of ``a`` over the index ranges [starts[k], ends[k]) along ``axis``; every range is
    non-empty. The result has len(starts) entries on that axis.

    Loops over the offset t inside the ranges (at most the longest range): offset t of every
    range is one strided slice when the starts are evenly spaced, else one ``np.take``; ranges
    shorter than t + 1 are left out, so inf and NaN stay in their own windows.
    """
    if len(starts) == 1:
        return a[_along(a.ndim, axis, slice(starts[0], ends[0]))].sum(axis=axis, keepdims=True)
    lengths = ends - starts
    step = starts[1] - starts[0]
    evenly_spaced = step > 0 and (np.diff(starts) == step).all()

    def offset(t, which=None):
        if which is None and evenly_spaced:
            first = starts[0] + t
            return a[_along(a.ndim, axis, slice(first, first + (len(starts) - 1) * step + 1, step))]
        return np.take(a, starts + t if which is None else starts[which] + t, axis=axis)

    out = offset(0)
    if evenly_spaced:
        out = out.copy()  # a view of ``a``
    for t in range(1, int(lengths.max())):
        longer = np.flatnonzero(lengths > t)
        if len(longer) == len(starts):
            out += offset(t)
        else:  # each range at most once: += through the index is exact
            out[_along(a.ndim, axis, longer)] += offset(t, longer)
    return out


def _along(ndim, axis, index):
    """An index tuple applying ``index`` on ``axis`` and taking everything elsewhere."""
    full = [slice(None)] * ndim
    full[axis] = index
    return tuple(full)


def _adaptive_counts(input_hw, output_size, dtype):
    """(P, Q) cell counts of the adaptive windows, in ``dtype``."""
    (rs, re), (cs, ce) = (_adaptive_bounds(L, O) for L, O in zip(input_hw, output_size))
    return ((re - rs)[:, None] * (ce - cs)[None, :]).astype(dtype)


def adaptive_avg_pool2d_forward(x, output_size):
    """Window i along an axis of length L spans [floor(i*L/O), ceil((i+1)*L/O)); y is the mean
    of each (row window) x (column window) block.

    x (N, C, H, W) with H, W >= 1; output_size (P, Q) ints >= 0. Returns y (N, C, P, Q).
    """
    N, C, H, W = x.shape
    P, Q = output_size
    if P == 0 or Q == 0:
        return np.zeros((N, C, P, Q), dtype=x.dtype)
    (rs, re), (cs, ce) = _adaptive_bounds(H, P), _adaptive_bounds(W, Q)
    sums = _range_sums(_range_sums(x, 2, rs, re), 3, cs, ce)
    return sums / _adaptive_counts((H, W), (P, Q), x.dtype)


def _covering_windows(length, out_len):
    """For each input cell h, the outputs whose window contains it: a range [first, stop) of
    output indices, each (length,) int64 (non-empty, since the windows cover the axis)."""
    starts, ends = _adaptive_bounds(length, out_len)
    cells = np.arange(length, dtype=np.int64)
    return (np.searchsorted(ends, cells, side="right"),
            np.searchsorted(starts, cells, side="right"))


def adaptive_avg_pool2d_backward(grad_y, input_shape):
    """Gradient of adaptive_avg_pool2d_forward: grad_x[h, w] sums grad_y[p, q] / count[p, q]
    over the windows containing (h, w), which form a range of p times a range of q.

    grad_y (N, C, P, Q). Returns grad_x (N, C, H, W).
    """
    N, C, H, W = input_shape
    P, Q = grad_y.shape[2:]
    if P == 0 or Q == 0 or N * C == 0:
        return np.zeros(input_shape, dtype=grad_y.dtype)
    share = grad_y / _adaptive_counts((H, W), (P, Q), grad_y.dtype)
    (r_first, r_stop), (c_first, c_stop) = _covering_windows(H, P), _covering_windows(W, Q)
    return _range_sums(_range_sums(share, 2, r_first, r_stop), 3, c_first, c_stop)
