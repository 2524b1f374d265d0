"""Launch glue for kernels/softmax.cu: softmax and log_softmax along any dim, forward and backward.

The array is viewed as (outer, L, inner), L = shape[dim]. With inner == 1 (dim is the last
non-trivial axis) rows are contiguous: rows of up to :data:`WARP_MAX_LENGTH` elements go one per
warp (``*_warp``), longer rows one per block of :data:`BLOCK_THREADS` (``*_block``). With
inner > 1 one thread handles each (outer, inner) pair (``*_column``).
"""

from __future__ import annotations

from . import as_contiguous, ceil_div, elementwise_grid, i32, i64, suffix

__all__ = ["log_softmax_backward", "log_softmax_forward", "softmax_backward", "softmax_forward"]

# Longest row handed to one warp: 32 elements per lane. Beyond it a row gets a whole block.
WARP_MAX_LENGTH = 1024
WARP_KERNEL_THREADS = 128  # 4 rows per block
BLOCK_THREADS = 512
COLUMN_THREADS = 256
# Row kernels stride over rows with at most one wave of resident threads (2048 per SM, sm_80+).
_THREADS_PER_SM = 2048


def _split(shape, dim):
    """(outer, L, inner) of ``shape`` around axis ``dim``."""
    outer = inner = 1
    for size in shape[:dim]:
        outer *= size
    for size in shape[dim + 1:]:
        inner *= size
    return outer, shape[dim], inner


def _check_dim(x, dim, op):
    if not 0 <= dim < x.ndim:
        raise ValueError(f"{op}: dim must be in [0, {x.ndim}) for an array of shape {x.shape}, "
                         f"got {dim}")


def _row_blocks(dev, rows, rows_per_block, threads):
    waves = dev.multiprocessors * (_THREADS_PER_SM // threads)
    return max(1, min(ceil_div(rows, rows_per_block), waves))


def _launch(dev, op, out, inputs, dim):
    """Run the ``op`` kernel that fits out's (outer, L, inner) layout; inputs match out."""
    if out.size == 0:
        return out
    outer, length, inner = _split(out.shape, dim)
    if inner == 1:
        if length <= WARP_MAX_LENGTH:
            kind, threads, rows_per_block = "warp", WARP_KERNEL_THREADS, WARP_KERNEL_THREADS // 32
        else:
            kind, threads, rows_per_block = "block", BLOCK_THREADS, 1
        grid, block = (_row_blocks(dev, outer, rows_per_block, threads),), (threads,)
        sizes = (i64(outer, "rows"), i32(length, "dim size"))
    else:
        kind = "column"
        grid, block = elementwise_grid(dev, outer * inner, COLUMN_THREADS)
        sizes = (i64(outer, "outer size"), i32(length, "dim size"), i64(inner, "inner size"))
    entry = f"{op}_{kind}_{suffix(out.dtype)}"
    dev.function("softmax", entry)(grid, block, (out, *inputs, *sizes))
    return out


def _forward(dev, op, x, dim):
    suffix(x.dtype)
    _check_dim(x, dim, op)
    x = as_contiguous(dev, x)
    return _launch(dev, op, dev.xp.empty(x.shape, dtype=x.dtype), (x,), dim)


def _backward(dev, op, grad_y, y, dim):
    suffix(y.dtype)
    if grad_y.dtype != y.dtype:
        raise TypeError(f"{op}: grad_y has dtype {grad_y.dtype} but y has dtype {y.dtype}")
    if grad_y.shape != y.shape:
        raise ValueError(f"{op}: grad_y has shape {grad_y.shape} but y has shape {y.shape}")
    _check_dim(y, dim, op)
    grad_y, y = as_contiguous(dev, grad_y), as_contiguous(dev, y)
    return _launch(dev, op, dev.xp.empty(y.shape, dtype=y.dtype), (grad_y, y), dim)


def softmax_forward(dev, x, dim):
    return _forward(dev, "softmax_forward", x, dim)


def softmax_backward(dev, grad_y, y, dim):
    return _backward(dev, "softmax_backward", grad_y, y, dim)


def log_softmax_forward(dev, x, dim):
    return _forward(dev, "log_softmax_forward", x, dim)


def log_softmax_backward(dev, grad_y, y, dim):
    return _backward(dev, "log_softmax_backward", grad_y, y, dim)
