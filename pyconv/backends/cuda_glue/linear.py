"""Launch glue of linear layers on the tiled GEMM of kernels/gemm.cu.

``gemm`` is the one entry for every matrix product the glue needs (linear layers here, the gate
projections of cuda_glue/rnn.py): C (M, N) = alpha * op(A) @ op(B) + beta * C + bias, with
op(A) (M, K), op(B) (K, N). It picks the vec4 kernels (16-byte global loads and stores) when a,
b, out and bias start 16-byte aligned and their rows are multiples of 4 elements long, else the
scalar kernels; and 32-row tiles (128 threads) instead of 64-row tiles (256 threads) when C has
at most 32 rows. ``column_sum`` gives bias gradients (sums over the rows of an (M, N) matrix).
"""

from __future__ import annotations

from . import as_contiguous, ceil_div, elementwise_grid, i32, real, suffix
from .autotune import choose

__all__ = ["linear_backward_input", "linear_backward_weight", "linear_forward"]

# kernels/gemm.cu: tiles of TILE_M x 64 elements of C, 4 x 4 per thread. The row-tile choice
# (see _tile_rows): TILE_M rows and threads per block, and the entry-name infix.
TILE_N = 64
_TILES = {64: (256, ""), 32: (128, "m32_")}
# products with at most this many rows use 32-row tiles: half the block idles on 64-row tiles
SMALL_M = 32
COLUMN_SUM_THREADS = 256
# CUDA's limit on gridDim.y (row tiles)
_MAX_GRID_Y = 65535
_VECTOR_BYTES = 16


def _address(array) -> int:
    """The device (CuPy) or host (NumPy) address of the array's first element."""
    data = array.data
    return data.ptr if hasattr(data, "ptr") else array.ctypes.data


def _vectorizable(array) -> bool:
    """Can the kernel access this C-contiguous array 4 elements (16 or 32 bytes) at a time along
    its last dimension? The base must be 16-byte aligned and the last length a multiple of 4."""
    return array.shape[-1] % 4 == 0 and _address(array) % _VECTOR_BYTES == 0


def _matrix(dev, name, array, dtype):
    if array.ndim != 2:
        raise ValueError(f"gemm: {name} must be a matrix, got shape {tuple(array.shape)}")
    if array.dtype != dtype:
        raise TypeError(f"gemm: {name} has dtype {array.dtype}, expected {dtype}")
    return as_contiguous(dev, array)


def _tile_rows(m: int) -> int:
    """Rows of C per block: 32 for products with few rows (an RNN step with a small batch, the
    weight gradients of narrow layers), else 64."""
    return 32 if m <= SMALL_M else 64


def gemm(dev, a, b, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0, bias=None):
    """out = alpha * op(a) @ op(b) + beta * out + bias; returns out (M, N).

    a is (M, K), or (K, M) with trans_a; b is (K, N), or (N, K) with trans_b; bias (N,) or None.
    out, when given, must be a C-contiguous (M, N) array of a's dtype (read only if beta != 0);
    otherwise a new one is allocated (beta must then be 0).
    """
    kind = suffix(a.dtype)
    dtype = a.dtype
    a = _matrix(dev, "a", a, dtype)
    b = _matrix(dev, "b", b, dtype)
    m, k = a.shape[::-1] if trans_a else a.shape
    k_b, n = b.shape[::-1] if trans_b else b.shape
    if k != k_b:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is ({m}, {k}), op(b) ({k_b}, {n})")
    if out is None:
        if beta != 0:
            raise ValueError("gemm: beta != 0 needs an out array to accumulate into")
        out = dev.xp.empty((m, n), dtype=dtype)
    elif (out.dtype != dtype or tuple(out.shape) != (m, n) or not out.flags.c_contiguous):
        raise ValueError(f"gemm: out must be a C-contiguous ({m}, {n}) {dtype} array, got "
                         f"{out.dtype} {tuple(out.shape)}")
    if bias is not None:
        bias = as_contiguous(dev, bias)
        if bias.dtype != dtype or tuple(bias.shape) != (n,):
            raise ValueError(f"gemm: bias must be a ({n},) {dtype} array, got {bias.dtype} "
                             f"{tuple(bias.shape)}")
    if m == 0 or n == 0:
        return out
    tiles = [t for t in _TILES if ceil_div(m, t) <= _MAX_GRID_Y]
    if not tiles:
        raise ValueError(f"gemm: M={m} needs {ceil_div(m, 64)} row tiles, more than CUDA's "
                         f"{_MAX_GRID_Y}")
    vec4 = all(_vectorizable(x) for x in (a, b, out) + (() if bias is None else (bias,)))
    entry = "gemm_vec4_" if vec4 else "gemm_"

    def launch(tile_m, target=out):
        threads, infix = _TILES[tile_m]
        grid = (ceil_div(n, TILE_N), ceil_div(m, tile_m))
        dev.function("gemm", entry + infix + kind)(
            grid, (threads,),
            (target, a, b, target if bias is None else bias, i32(m, "M"), i32(n, "N"),
             i32(k, "K"), i32(bool(trans_a), "trans_a"), i32(bool(trans_b), "trans_b"),
             real(dtype, alpha), real(dtype, beta), i32(bias is not None, "has_bias")))
        return target

    default = _tile_rows(m) if _tile_rows(m) in tiles else tiles[0]
    if beta != 0 and getattr(dev, "autotuner", None) is not None:
        # out is read: time the variants on a copy, then run the choice on out itself
        scratch = out.copy()
        tile_m = choose(dev, "gemm", (kind, m, n, k, trans_a, trans_b, vec4), tiles,
                        default, lambda t: (launch(t, scratch), t)[1])
        return launch(tile_m)
    return choose(dev, "gemm", (kind, m, n, k, trans_a, trans_b, vec4), tiles, default,
                  launch)


def column_sum(dev, x):
    """Sums of the rows of a C-contiguous (M, N) matrix: (N,), added in row order."""
    m, n = x.shape
    out = dev.xp.empty((n,), dtype=x.dtype)
    if n:
        grid, block = elementwise_grid(dev, n, COLUMN_SUM_THREADS)
        dev.function("gemm", "bias_column_sum_" + suffix(x.dtype))(
            grid, block, (out, as_contiguous(dev, x), i32(m, "M"), i32(n, "N")))
    return out


def linear_forward(dev, x, weight, bias):
    """y (M, O) = x (M, I) @ weight (O, I).T + bias (O,)."""
    return gemm(dev, x, weight, trans_b=True, bias=bias)


def linear_backward_input(dev, grad_y, weight):
    """grad_x (M, I) = grad_y (M, O) @ weight (O, I)."""
    return gemm(dev, grad_y, weight)


def linear_backward_weight(dev, grad_y, x):
    """grad_weight (O, I) = grad_y (M, O).T @ x (M, I)."""
    return gemm(dev, grad_y, x, trans_a=True)
