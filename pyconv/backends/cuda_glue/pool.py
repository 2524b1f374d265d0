"""Launch glue for kernels/pool.cu: max_pool2d, avg_pool2d, adaptive_avg_pool2d (forward and
backward).

Arrays are (N, C, H, W) -> (N, C, P, Q). Forward kernels and the average-pooling backward
kernels run one thread per element of their output in a grid-stride loop; max_pool2d_backward
runs one thread per (n, c) plane (its contract has no window geometry to gather with).
"""

from __future__ import annotations

from ...shapes import pool_output_size
from . import as_contiguous, elementwise_grid, i32, i64, suffix

__all__ = [
    "adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_forward",
    "avg_pool2d_backward", "avg_pool2d_forward",
    "max_pool2d_backward", "max_pool2d_forward",
]

# every entry point of pool.cu is compiled with __launch_bounds__(256)
THREADS = 256


def _launch(dev, entry, kind, n, args):
    """Run ``<entry>_<kind>`` over ``n`` elements (no launch when there are none)."""
    if n == 0:
        return
    grid, block = elementwise_grid(dev, n, THREADS)
    dev.function("pool", f"{entry}_{kind}")(grid, block, args)


def _output_size(input_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """(P, Q) for an (N, C, H, W) input, by pyconv.shapes as the reference."""
    return tuple(
        pool_output_size(length, k, s, p, d, ceil_mode)
        for length, k, s, p, d in zip(input_shape[2:], kernel_size, stride, padding, dilation)
    )


def _sizes(*named):
    """Kernel ``int`` arguments from ``(name, value)`` pairs, range-checked."""
    return tuple(i32(value, name) for name, value in named)


def _geometry(kernel_size, stride, padding):
    return _sizes(("kernel_height", kernel_size[0]), ("kernel_width", kernel_size[1]),
                  ("stride_height", stride[0]), ("stride_width", stride[1]),
                  ("padding_height", padding[0]), ("padding_width", padding[1]))


def _check_grad(grad_y, input_shape, op):
    """grad_y must be 4-D with the batch and channels of input_shape (it is read as such)."""
    if grad_y.ndim != 4 or tuple(grad_y.shape[:2]) != tuple(input_shape[:2]):
        raise ValueError(f"{op}: grad_y must have shape (N, C, P, Q) with (N, C) = "
                         f"{tuple(input_shape[:2])}, got {tuple(grad_y.shape)}")


def _avg_flags(count_include_pad, divisor_override):
    """count_include_pad as 0/1 and divisor_override as an int, 0 meaning none (the op layer
    rejects 0 as an override)."""
    override = 0 if divisor_override is None else divisor_override
    return _sizes(("count_include_pad", bool(count_include_pad)),
                  ("divisor_override", override))


# ---------------------------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------------------------


def max_pool2d_forward(dev, x, kernel_size, stride, padding, dilation, ceil_mode):
    """x (N, C, H, W) -> (y (N, C, P, Q), indices int64 (N, C, P, Q)): one thread per output."""
    kind = suffix(x.dtype)
    x = as_contiguous(dev, x)
    N, C, H, W = x.shape
    P, Q = _output_size(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    y = dev.xp.empty((N, C, P, Q), dtype=x.dtype)
    indices = dev.xp.empty((N, C, P, Q), dtype=dev.xp.int64)
    n = N * C * P * Q
    _launch(dev, "max_pool2d_forward", kind, n,
            (y, indices, x, i64(n, "output elements"),
             *_sizes(("H", H), ("W", W), ("P", P), ("Q", Q)),
             *_geometry(kernel_size, stride, padding),
             *_sizes(("dilation_height", dilation[0]), ("dilation_width", dilation[1]))))
    return y, indices


def _every_window_holds_a_cell(length, out_len, kernel, stride, pad, dilation):
    """Whether each of the out_len windows along an axis has a tap inside [0, length)."""
    for p in range(out_len):
        start = p * stride - pad
        if not any(0 <= start + a * dilation < length for a in range(kernel)):
            return False
    return True


def max_pool2d_backward(dev, grad_y, indices, input_shape, kernel_size, stride, padding,
                        dilation):
    """grad_y (N, C, P, Q) summed at the plane positions ``indices`` (N, C, P, Q) into grad_x of
    input_shape: one thread per input cell gathering from the windows that contain it; when some
    window holds no input cell (dilation + padding), one thread per (n, c) plane scattering."""
    kind = suffix(grad_y.dtype)
    _check_grad(grad_y, input_shape, "max_pool2d_backward")
    if indices.dtype != dev.xp.int64 or indices.shape != grad_y.shape:
        raise ValueError(f"max_pool2d_backward: indices must be int64 with grad_y's shape "
                         f"{tuple(grad_y.shape)}, got {indices.dtype} {tuple(indices.shape)}")
    grad_y, indices = as_contiguous(dev, grad_y), as_contiguous(dev, indices)
    N, C, H, W = input_shape
    P, Q = grad_y.shape[2:]
    gather = all(
        _every_window_holds_a_cell(length, out_len, k, s, p, d)
        for length, out_len, k, s, p, d in zip((H, W), (P, Q), kernel_size, stride, padding,
                                              dilation))
    if gather:
        i32(P * Q, "P*Q")  # the gather kernel indexes a plane of grad_y with 32-bit ints
        grad_x = dev.xp.empty(tuple(input_shape), dtype=grad_y.dtype)
        n = N * C * H * W if P * Q else 0
        if P * Q == 0:
            grad_x[...] = 0
        _launch(dev, "max_pool2d_backward_gather", kind, n,
                (grad_x, grad_y, indices, i64(n, "input elements"),
                 *_sizes(("H", H), ("W", W), ("P", P), ("Q", Q)),
                 *_geometry(kernel_size, stride, padding),
                 *_sizes(("dilation_height", dilation[0]), ("dilation_width", dilation[1]))))
        return grad_x
    grad_x = dev.xp.zeros(tuple(input_shape), dtype=grad_y.dtype)
    planes = N * C if H * W and P * Q else 0
    _launch(dev, "max_pool2d_backward_scatter", kind, planes,
            (grad_x, grad_y, indices, i64(planes, "planes"), i64(H * W, "H*W"), i64(P * Q, "P*Q")))
    return grad_x


# ---------------------------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------------------------


def avg_pool2d_forward(dev, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override):
    """x (N, C, H, W) -> y (N, C, P, Q): window sums over the divisor; one thread per output."""
    kind = suffix(x.dtype)
    x = as_contiguous(dev, x)
    N, C, H, W = x.shape
    P, Q = _output_size(x.shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    y = dev.xp.empty((N, C, P, Q), dtype=x.dtype)
    n = N * C * P * Q
    _launch(dev, "avg_pool2d_forward", kind, n,
            (y, x, i64(n, "output elements"), *_sizes(("H", H), ("W", W), ("P", P), ("Q", Q)),
             *_geometry(kernel_size, stride, padding),
             *_avg_flags(count_include_pad, divisor_override)))
    return y


def avg_pool2d_backward(dev, grad_y, input_shape, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
    """grad_y (N, C, P, Q) -> grad_x of input_shape in two launches: each window's share
    grad_y / divisor (one thread per output), then each input cell sums the shares of the windows
    containing it (one thread per input cell)."""
    kind = suffix(grad_y.dtype)
    _check_grad(grad_y, input_shape, "avg_pool2d_backward")
    grad_y = as_contiguous(dev, grad_y)
    N, C, H, W = input_shape
    P, Q = grad_y.shape[2:]
    sizes = _sizes(("H", H), ("W", W), ("P", P), ("Q", Q))
    geometry = _geometry(kernel_size, stride, padding)
    share = dev.xp.empty_like(grad_y)
    n_out = grad_y.size
    _launch(dev, "avg_pool2d_backward_share", kind, n_out,
            (share, grad_y, i64(n_out, "output elements"), *sizes, *geometry,
             *_avg_flags(count_include_pad, divisor_override)))
    grad_x = dev.xp.empty(tuple(input_shape), dtype=grad_y.dtype)
    n = N * C * H * W
    _launch(dev, "avg_pool2d_backward", kind, n,
            (grad_x, share, i64(n, "input elements"), *sizes, *geometry))
    return grad_x


# ---------------------------------------------------------------------------------------------
# adaptive average pooling
# ---------------------------------------------------------------------------------------------


def _adaptive_sizes(H, W, P, Q):
    """H, W, P, Q as kernel ints; the window bounds are computed in 32 bits, which holds when
    (L + 1) * (O + 1) fits for each axis."""
    i32((H + 1) * (P + 1), "(H + 1) * (P + 1)")
    i32((W + 1) * (Q + 1), "(W + 1) * (Q + 1)")
    return _sizes(("H", H), ("W", W), ("P", P), ("Q", Q))


def adaptive_avg_pool2d_forward(dev, x, output_size):
    """x (N, C, H, W) -> y (N, C, P, Q) with (P, Q) = output_size: window means; one thread per
    output."""
    kind = suffix(x.dtype)
    x = as_contiguous(dev, x)
    N, C, H, W = x.shape
    P, Q = output_size
    y = dev.xp.empty((N, C, P, Q), dtype=x.dtype)
    n = N * C * P * Q
    _launch(dev, "adaptive_avg_pool2d_forward", kind, n,
            (y, x, i64(n, "output elements"), *_adaptive_sizes(H, W, P, Q)))
    return y


def adaptive_avg_pool2d_backward(dev, grad_y, input_shape):
    """grad_y (N, C, P, Q) -> grad_x of input_shape: each input cell gathers grad_y / count of
    the windows containing it; one thread per input cell."""
    kind = suffix(grad_y.dtype)
    _check_grad(grad_y, input_shape, "adaptive_avg_pool2d_backward")
    grad_y = as_contiguous(dev, grad_y)
    N, C, H, W = input_shape
    P, Q = grad_y.shape[2:]
    if P * Q == 0:  # no window: nothing flows back
        return dev.xp.zeros(tuple(input_shape), dtype=grad_y.dtype)
    grad_x = dev.xp.empty(tuple(input_shape), dtype=grad_y.dtype)
    n = N * C * H * W
    _launch(dev, "adaptive_avg_pool2d_backward", kind, n,
            (grad_x, grad_y, i64(n, "input elements"), *_adaptive_sizes(H, W, P, Q)))
    return grad_x
