"""Launch glue of kernels/conv2d.cu: conv2d forward, backward-input and backward-weight as
implicit GEMM, depthwise kernels, and conv_transpose2d composed from them (its forward is
conv2d's backward-input, its backward-input conv2d's forward, its backward-weight conv2d's
backward-weight with x and grad_y exchanged), as in the reference.

Shapes: x (N, C, H, W), weight (K, C/G, R, S), y (N, K, P, Q). Padding reaches the kernels as
(top, left); the output size (P, Q) is passed explicitly, which is how conv_transpose2d's
backward-input crops the rows that belong to no input pixel without a copy.

Launch configuration (:func:`choose_tile`): 64 x 64 tiles of 256 threads when the GEMM is large
enough to fill the device with them, else 32 x 32 tiles of 64 threads; the forward takes the
float4 weight path whenever it is allowed. With autotuning on (:mod:`.autotune`) every compiled
variant (both tiles; float4 and scalar weights) is timed once per shape and the fastest kept.
"""

from __future__ import annotations

from . import as_contiguous, ceil_div, elementwise_grid, i32, i64, suffix
from .autotune import choose

__all__ = [
    "conv2d_backward_input", "conv2d_backward_weight", "conv2d_forward",
    "conv_transpose2d_backward_input", "conv_transpose2d_backward_weight",
    "conv_transpose2d_forward",
]

# tile edge -> threads per block (each thread computes a 4 x 4 register tile)
TILES = {64: 256, 32: 64}
BK = 8  # depth slice of the tile engine (kernels/conv2d_tiles.cuh)
DEPTHWISE_THREADS = 256  # CONV_DW_THREADS in conv2d.cu
REDUCE_THREADS = 256
# backward-weight splits its N*P*Q reduction into chunks of at least this depth (a multiple of
# BK), more chunks only while the grid would not yet fill the device
MIN_CHUNK = 256
MAX_GRID_YZ = 65535


def choose_tile(dev, rows, cols, groups):
    """Tile edge (64 or 32) for a GEMM of rows x cols per group.

    The 64-tile reuses each loaded element 64 times (vs 32) but needs 4x the work per block: use
    it when it still gives at least two blocks per multiprocessor.
    """
    big_blocks = ceil_div(rows, 64) * ceil_div(cols, 64) * groups
    if rows > 32 and big_blocks >= 2 * dev.multiprocessors:
        return 64
    return 32


def _address(array):
    """Device address of an array's first element (CuPy or NumPy)."""
    interface = getattr(array, "__cuda_array_interface__", None) or array.__array_interface__
    return interface["data"][0]


def _is_depthwise(groups, channels, out_channels):
    return groups > 1 and groups == channels == out_channels


def _geometry(N, C, H, W, K, P, Q, R, S, stride, top_left, dilation, groups):
    """The 16 kernel ints of CONV_GEOMETRY_PARAMS, range-checked; the kernels decode GEMM
    columns and depth (pixels of one channel over the batch, taps of one filter) in 32 bits."""
    i32(N * H * W, "N*H*W")
    i32(N * P * Q, "N*P*Q")
    i32(K * R * S, "K*R*S")
    i32(C * R * S, "C*R*S")
    named = (("N", N), ("C", C), ("H", H), ("W", W), ("K", K), ("P", P), ("Q", Q), ("R", R),
             ("S", S), ("stride_height", stride[0]), ("stride_width", stride[1]),
             ("padding_top", top_left[0]), ("padding_left", top_left[1]),
             ("dilation_height", dilation[0]), ("dilation_width", dilation[1]),
             ("groups", groups))
    return tuple(i32(value, name) for name, value in named)


def _bias_args(dev, bias, channels, dtype):
    """(bias array, has_bias) kernel arguments; a 1-element dummy array when there is none."""
    if bias is None:
        return dev.xp.zeros((1,), dtype=dtype), i32(0, "has_bias")
    bias = as_contiguous(dev, bias)
    if bias.dtype != dtype or bias.shape != (channels,):
        raise ValueError(f"bias must be {dtype} of shape ({channels},), got {bias.dtype} "
                         f"{tuple(bias.shape)}")
    return bias, i32(1, "has_bias")


def _check_float(name, array, dtype):
    if array.dtype != dtype:
        raise TypeError(f"{name} has dtype {array.dtype}, expected {dtype}")


def _gemm_grid(tile, rows, cols, z):
    grid = (ceil_div(cols, tile), ceil_div(rows, tile), z)
    if grid[1] > MAX_GRID_YZ or grid[2] > MAX_GRID_YZ:
        raise ValueError(f"conv2d: grid {grid} exceeds the device's y/z limit of {MAX_GRID_YZ}")
    return grid, (TILES[tile],)


# ---------------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------------


def _forward(dev, x, weight, bias, out_size, stride, top_left, dilation, groups, vector=None):
    """y (N, K, P, Q) with P, Q = out_size; x and weight contiguous of one float dtype.

    ``vector`` forces (True/False) or leaves to the checks (None) the float4 weight path."""
    kind = suffix(x.dtype)
    N, C, H, W = x.shape
    K, Cg, R, S = weight.shape
    P, Q = out_size
    y = dev.xp.empty((N, K, P, Q), dtype=x.dtype)
    bias, has_bias = _bias_args(dev, bias, K, x.dtype)
    if y.size == 0:
        return y
    geometry = _geometry(N, C, H, W, K, P, Q, R, S, stride, top_left, dilation, groups)
    if _is_depthwise(groups, C, K):
        grid, block = elementwise_grid(dev, y.size, DEPTHWISE_THREADS)
        dev.function("conv2d", f"conv2d_depthwise_forward_{kind}")(
            grid, block, (y, x, weight, bias, has_bias, *geometry))
        return y
    rows, cols = K // groups, N * P * Q
    vector_ok = kind == "f32" and (Cg * R * S) % 4 == 0 and _address(weight) % 16 == 0
    if vector and not vector_ok:
        raise ValueError("conv2d_forward: the float4 weight path needs float32, C/G*R*S % 4 == 0 "
                         "and a 16-byte aligned weight")
    vectors = [vector] if vector is not None else ([True, False] if vector_ok else [False])

    def launch(config):
        tile, vectorized = config
        entry = "conv2d_forward_wvec" if vectorized else "conv2d_forward"
        grid, block = _gemm_grid(tile, rows, cols, groups)
        dev.function("conv2d", f"{entry}_t{tile}_{kind}")(
            grid, block, (y, x, weight, bias, has_bias, *geometry))
        return y

    default = (choose_tile(dev, rows, cols, groups), vectors[0])
    candidates = [(tile, v) for tile in TILES for v in vectors]
    return choose(dev, "conv2d_forward", (kind, geometry), candidates, default, launch)


def conv2d_forward(dev, x, weight, bias, stride, padding, dilation, groups):
    """x (N, C, H, W), weight (K, C/G, R, S), bias (K,) or None -> y (N, K, P, Q)."""
    _check_float("weight", weight, x.dtype)
    x, weight = as_contiguous(dev, x), as_contiguous(dev, weight)
    H, W = x.shape[2:]
    R, S = weight.shape[2:]
    top, bottom, left, right = padding
    P = (H + top + bottom - dilation[0] * (R - 1) - 1) // stride[0] + 1
    Q = (W + left + right - dilation[1] * (S - 1) - 1) // stride[1] + 1
    return _forward(dev, x, weight, bias, (P, Q), stride, (top, left), dilation, groups)


def _backward_input(dev, grad_y, weight, input_shape, stride, top_left, dilation, groups,
                    bias=None):
    """grad_x of input_shape (+ bias per channel, for conv_transpose2d_forward)."""
    _check_float("weight", weight, grad_y.dtype)
    kind = suffix(grad_y.dtype)
    grad_y, weight = as_contiguous(dev, grad_y), as_contiguous(dev, weight)
    N, C, H, W = (int(v) for v in input_shape)
    _, K, P, Q = grad_y.shape
    R, S = weight.shape[2:]
    bias, has_bias = _bias_args(dev, bias, C, grad_y.dtype)
    grad_x = dev.xp.empty((N, C, H, W), dtype=grad_y.dtype)
    if grad_x.size == 0:
        return grad_x
    geometry = _geometry(N, C, H, W, K, P, Q, R, S, stride, top_left, dilation, groups)
    args = (grad_x, grad_y, weight, bias, has_bias, *geometry)
    if _is_depthwise(groups, C, K):
        grid, block = elementwise_grid(dev, grad_x.size, DEPTHWISE_THREADS)
        dev.function("conv2d", f"conv2d_depthwise_backward_input_{kind}")(grid, block, args)
        return grad_x
    rows, cols = C // groups, N * H * W

    def launch(tile):
        grid, block = _gemm_grid(tile, rows, cols, groups)
        dev.function("conv2d", f"conv2d_backward_input_t{tile}_{kind}")(grid, block, args)
        return grad_x

    return choose(dev, "conv2d_backward_input", (kind, geometry), list(TILES),
                  choose_tile(dev, rows, cols, groups), launch)


def conv2d_backward_input(dev, grad_y, weight, input_shape, stride, padding, dilation, groups):
    """grad_y (N, K, P, Q), weight (K, C/G, R, S) -> grad_x (N, C, H, W) = input_shape."""
    return _backward_input(dev, grad_y, weight, input_shape, stride, (padding[0], padding[2]),
                           dilation, groups)


def _chunks(dev, depth, tiles_per_group):
    """(chunk, chunks): split the depth N*P*Q so that the grid has about two blocks per
    multiprocessor, each chunk a multiple of BK and at least MIN_CHUNK deep."""
    wanted = max(1, ceil_div(2 * dev.multiprocessors, tiles_per_group))
    chunk = max(MIN_CHUNK, ceil_div(ceil_div(depth, wanted), BK) * BK)
    return chunk, max(1, ceil_div(depth, chunk))


def _backward_weight(dev, grad_y, x, weight_shape, stride, top_left, dilation, groups,
                     chunk=None):
    """grad_W (K, C/G, R, S); ``chunk`` (a multiple of BK) overrides the reduction split."""
    _check_float("x", x, grad_y.dtype)
    kind = suffix(grad_y.dtype)
    grad_y, x = as_contiguous(dev, grad_y), as_contiguous(dev, x)
    N, C, H, W = x.shape
    _, K, P, Q = grad_y.shape
    K, Cg, R, S = (int(v) for v in weight_shape)
    depth = N * P * Q
    if depth == 0 or K * Cg * R * S == 0:
        return dev.xp.zeros((K, Cg, R, S), dtype=grad_y.dtype)
    geometry = _geometry(N, C, H, W, K, P, Q, R, S, stride, top_left, dilation, groups)
    if _is_depthwise(groups, C, K):
        grad_w = dev.xp.empty((K, Cg, R, S), dtype=grad_y.dtype)
        dev.function("conv2d", f"conv2d_depthwise_backward_weight_{kind}")(
            (K * R * S,), (DEPTHWISE_THREADS,), (grad_w, grad_y, x, *geometry))
        return grad_w
    rows, cols = K // groups, Cg * R * S
    if chunk is not None and chunk % BK:
        raise ValueError(f"chunk must be a multiple of {BK}, got {chunk}")

    def launch(tile):
        if chunk is None:
            size, chunks = _chunks(dev, depth, ceil_div(rows, tile) * ceil_div(cols, tile) * groups)
        else:
            size, chunks = chunk, ceil_div(depth, chunk)
        # with one chunk the partial product is the gradient itself
        partial = dev.xp.empty((chunks, K, Cg, R, S), dtype=grad_y.dtype)
        grid, block = _gemm_grid(tile, rows, cols, groups * chunks)
        dev.function("conv2d", f"conv2d_backward_weight_t{tile}_{kind}")(
            grid, block, (partial, grad_y, x, i64(size, "chunk"), i32(chunks, "chunks"), *geometry))
        if chunks == 1:
            return partial[0]
        grad_w = dev.xp.empty((K, Cg, R, S), dtype=grad_y.dtype)
        n = grad_w.size
        grid, block = elementwise_grid(dev, n, REDUCE_THREADS)
        dev.function("conv2d", f"conv2d_backward_weight_reduce_{kind}")(
            grid, block, (grad_w, partial, i64(n, "weight elements"), i32(chunks, "chunks")))
        return grad_w

    return choose(dev, "conv2d_backward_weight", (kind, geometry, chunk), list(TILES),
                  choose_tile(dev, rows, cols, groups), launch)


def conv2d_backward_weight(dev, grad_y, x, weight_shape, stride, padding, dilation, groups):
    """grad_y (N, K, P, Q), x (N, C, H, W) -> grad_W of weight_shape (K, C/G, R, S)."""
    return _backward_weight(dev, grad_y, x, weight_shape, stride, (padding[0], padding[2]),
                            dilation, groups)


# ---------------------------------------------------------------------------------------------
# conv_transpose2d: conv2d's adjoint, on the same kernels
# ---------------------------------------------------------------------------------------------


def conv_transpose2d_forward(dev, x, weight, bias, stride, padding, output_padding, dilation,
                             groups):
    """x (N, C, H, W), weight (C, K/G, R, S) -> y (N, K, P, Q) = conv2d's grad_x for the conv2d
    that maps y to x, plus bias (added in the kernel's epilogue)."""
    N, _, H, W = x.shape
    _, k_per_group, R, S = weight.shape
    P = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (R - 1) + output_padding[0] + 1
    Q = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (S - 1) + output_padding[1] + 1
    return _backward_input(dev, x, weight, (N, k_per_group * groups, P, Q), stride, padding,
                           dilation, groups, bias=bias)


def conv_transpose2d_backward_input(dev, grad_y, weight, input_shape, stride, padding, dilation,
                                    groups):
    """grad_y (N, K, P, Q), weight (C, K/G, R, S) -> grad_x (N, C, H, W): conv2d of grad_y,
    computing only the H x W outputs that belong to x."""
    _check_float("weight", weight, grad_y.dtype)
    grad_y, weight = as_contiguous(dev, grad_y), as_contiguous(dev, weight)
    return _forward(dev, grad_y, weight, None, tuple(input_shape[2:]), stride, padding, dilation,
                    groups)


def conv_transpose2d_backward_weight(dev, grad_y, x, weight_shape, stride, padding, dilation,
                                     groups):
    """grad_y (N, K, P, Q), x (N, C, H, W) -> grad_W (C, K/G, R, S)."""
    return _backward_weight(dev, x, grad_y, weight_shape, stride, padding, dilation, groups)
