"""Shape and indexing operations as autograd Functions: reshape, permute, expand, indexing,
concatenation. Reshape-like ops return NumPy views where NumPy can make one."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..tensor import _array_module


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(np.argsort(ctx.dims))


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return _array_module(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        from .math import unbroadcast

        return unbroadcast(g, ctx.in_shape)


def _is_basic_index(index) -> bool:
    """True when ``x[index]`` is a view (no integer arrays or masks), so that its gradient can be
    written with a plain assignment instead of ``np.add.at``."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) for i in items)


class GetItem(Function):
    """``x[index]``; repeated integer indices receive the sum of their gradients."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.meta = (x.shape, x.dtype, index)
        return x[index]

    @staticmethod
    def backward(ctx, g):
        shape, dtype, index = ctx.meta
        xp = _array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        if _is_basic_index(index):
            out[index] = g
        else:
            xp.add.at(out, index, g)
        return out


class Split(Function):
    """x -> consecutive pieces along ``dim`` ending at ``bounds``; views forward, one
    concatenation backward (cheaper than one indexing node per piece)."""

    @staticmethod
    def forward(ctx, x, bounds, dim):
        ctx.dim = dim
        return tuple(_array_module(x).split(x, bounds, axis=dim))

    @staticmethod
    def backward(ctx, *grads):
        return _array_module(*grads).concatenate(grads, axis=ctx.dim)


class Unbind(Function):
    """x -> the x.shape[dim] slices along ``dim`` (views); backward stacks them once."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        lead = (slice(None),) * dim
        return tuple(x[lead + (i,)] for i in range(x.shape[dim]))

    @staticmethod
    def backward(ctx, *grads):
        return _array_module(*grads).stack(grads, axis=ctx.dim)


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
        ctx.meta = (dim, [a.shape[dim] for a in arrays])
        return _array_module(*arrays).concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        dim, sizes = ctx.meta
        bounds = np.cumsum(sizes)[:-1]
        xp = _array_module(g)
        return tuple(xp.split(g, bounds, axis=dim))


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
        ctx.meta = (dim, len(arrays))
        return _array_module(*arrays).stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        dim, n = ctx.meta
        xp = _array_module(g)
        return tuple(xp.squeeze(p, axis=dim) for p in xp.split(g, n, axis=dim))


def _check_tensors(tensors, op):
    from ..tensor import Tensor

    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: tensors[{i}] must be a Tensor, got {type(t).__name__}")
    return tensors


def cat(tensors, dim: int = 0):
    """Concatenate along an existing dimension; all other sizes must match."""
    from ..shapes import normalize_dim

    tensors = _check_tensors(tensors, "cat")
    ref = tensors[0]
    dim = normalize_dim(dim, ref.ndim, "cat")
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != ref.ndim or any(a != b for j, (a, b) in enumerate(zip(t.shape, ref.shape)) if j != dim):
            raise ValueError(
                f"cat: sizes of tensors must match except in dimension {dim}: tensors[0] has shape "
                f"{ref.shape}, tensors[{i}] has shape {t.shape}"
            )
    return Cat.apply(*tensors, dim=dim)


def stack(tensors, dim: int = 0):
    """Join along a new dimension; all shapes must be equal."""
    from ..shapes import normalize_dim

    tensors = _check_tensors(tensors, "stack")
    dim = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"stack: expects each tensor to be equal size, but got {tensors[0].shape} at "
                f"entry 0 and {t.shape} at entry {i}"
            )
    return Stack.apply(*tensors, dim=dim)


def unbind(input, dim: int = 0) -> tuple:
    """The slices of ``input`` along ``dim`` as a tuple (``input[0], ..., input[L-1]`` for dim 0)."""
    from ..shapes import normalize_dim

    dim = normalize_dim(dim, input.ndim, "unbind")
    return Unbind.apply(input, dim)


def split(input, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or pieces of the listed
    sizes, which must add up to the dimension's length."""
    from ..shapes import normalize_dim

    dim = normalize_dim(dim, input.ndim, "split")
    n = input.shape[dim]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        bounds = list(range(size, n, size))
    else:
        sizes = [int(v) for v in split_size_or_sections]
        if sum(sizes) != n or min(sizes, default=0) < 0:
            raise ValueError(f"split: sections {sizes} must be non-negative and sum to the size "
                             f"of dimension {dim} ({n})")
        bounds = list(np.cumsum(sizes)[:-1])
    return Split.apply(input, bounds, dim)
