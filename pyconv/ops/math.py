"""Tensor arithmetic, unary math and reductions as autograd Functions.

These are array-API operations (NumPy broadcasting semantics) rather than NN kernels, so they
run through the array module of their operands (``xp`` = numpy or cupy) instead of the backend
contract. Binary ops accept a Python/NumPy scalar for either operand; gradients of broadcast
operands are summed back to the operand's shape (:func:`unbroadcast`).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..tensor import _array_module


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _shape(a):
    return np.shape(a) if not hasattr(a, "shape") else a.shape


def _meta(a):
    """(shape, dtype) of an operand; dtype is None for Python scalars."""
    return _shape(a), getattr(a, "dtype", None)


def _reduce_to(g, meta):
    shape, dtype = meta
    g = unbroadcast(g, shape)
    return g if dtype is None or g.dtype == dtype else g.astype(dtype)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.metas = (_meta(a), _meta(b))
        return a + b

    @staticmethod
    def backward(ctx, g):
        ma, mb = ctx.metas
        ga = _reduce_to(g, ma) if ctx.needs_input_grad[0] else None
        gb = _reduce_to(g, mb) if ctx.needs_input_grad[1] else None
        return ga, gb


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.metas = (_meta(a), _meta(b))
        return a - b

    @staticmethod
    def backward(ctx, g):
        ma, mb = ctx.metas
        ga = _reduce_to(g, ma) if ctx.needs_input_grad[0] else None
        gb = _reduce_to(-g, mb) if ctx.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        ga = _reduce_to(g * b, _meta(a)) if ctx.needs_input_grad[0] else None
        gb = _reduce_to(g * a, _meta(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = _reduce_to(g / b, _meta(a))
        if ctx.needs_input_grad[1]:
            gb = _reduce_to(-g * a / (b * b), _meta(b))
        return ga, gb


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        xp = _array_module(a, b)
        y = xp.power(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved_arrays
        xp = _array_module(a, b)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            # b * a**(b-1), written so that a == 0 with b >= 1 stays finite
            ga = _reduce_to(g * b * xp.power(a, b - 1), _meta(a))
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = xp.where(a > 0, xp.log(xp.where(a > 0, a, 1)), 0)
            gb = _reduce_to(g * y * log_a, _meta(b))
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands are promoted and the added axis removed."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_arrays
        xp = _array_module(a, b)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = g.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(g2 @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = unbroadcast(xp.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = _array_module(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_arrays
        return g * y


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _array_module(x).log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        y = _array_module(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_arrays
        return g / (2 * y)


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _array_module(x).abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g * _array_module(x).sign(x).astype(g.dtype)


class Clamp(Function):
    """Gradient passes where ``min <= x <= max`` (inclusive, as PyTorch)."""

    @staticmethod
    def forward(ctx, x, min=None, max=None):
        ctx.save_for_backward(x)
        ctx.bounds = (min, max)
        return _array_module(x).clip(x, min, max)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        lo, hi = ctx.bounds
        keep = _array_module(x).ones(x.shape, dtype=bool)
        if lo is not None:
            keep &= x >= lo
        if hi is not None:
            keep &= x <= hi
        return g * keep


def _normalize_dims(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        d = int(d)
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-max(ndim, 1)}, "
                f"{max(ndim, 1) - 1}], but got {d})"
            )
        out.append(d % max(ndim, 1))
    return tuple(sorted(set(out))) if ndim else ()


def _expand_reduced(g, shape, dims, keepdim):
    """Reshape the gradient of a reduction so that it broadcasts against the input."""
    if not keepdim:
        g = g.reshape([1 if i in dims else n for i, n in enumerate(shape)])
    return g


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        dims = _normalize_dims(dim, x.ndim)
        ctx.meta = (x.shape, dims, keepdim)
        return x.sum(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        shape, dims, keepdim = ctx.meta
        xp = _array_module(g)
        return xp.broadcast_to(_expand_reduced(g, shape, dims, keepdim), shape).copy()


class Mean(Function):
    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        dims = _normalize_dims(dim, x.ndim)
        ctx.meta = (x.shape, dims, keepdim)
        return x.mean(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        shape, dims, keepdim = ctx.meta
        count = int(np.prod([shape[d] for d in dims])) if dims else 1
        xp = _array_module(g)
        return xp.broadcast_to(_expand_reduced(g, shape, dims, keepdim) / count, shape).copy()


class Var(Function):
    """Variance with ``correction`` (1 = unbiased, PyTorch's default)."""

    @staticmethod
    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        dims = _normalize_dims(dim, x.ndim)
        count = int(np.prod([x.shape[d] for d in dims])) if dims else 1
        mean = x.mean(axis=dims, keepdims=True)
        centered = x - mean
        ctx.save_for_backward(centered)
        ctx.meta = (x.shape, dims, keepdim, count - correction)
        denom = max(count - correction, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (centered * centered).sum(axis=dims, keepdims=keepdim) / x.dtype.type(denom)

    @staticmethod
    def backward(ctx, g):
        (centered,) = ctx.saved_arrays
        shape, dims, keepdim, denom = ctx.meta
        return _expand_reduced(g, shape, dims, keepdim) * centered * (2.0 / denom)


class MaxMin(Function):
    """``max``/``min`` over all elements (gradient shared evenly among ties, as PyTorch) or
    along one dimension (gradient to the returned index, the first extreme)."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False, mode="max"):
        xp = _array_module(x)
        if x.size == 0:
            raise RuntimeError(f"{mode}(): expected a non-empty tensor")
        if dim is None:
            y = x.max() if mode == "max" else x.min()
            ctx.save_for_backward(x, y)
            ctx.meta = None
            return y
        (d,) = _normalize_dims(dim, x.ndim) or (0,)
        idx = xp.argmax(x, axis=d) if mode == "max" else xp.argmin(x, axis=d)
        idx = xp.expand_dims(idx, d) if x.ndim else idx
        values = xp.take_along_axis(x, idx, axis=d) if x.ndim else x
        ctx.save_for_backward(idx)
        ctx.meta = (x.shape, d, keepdim)
        ctx.mark_non_differentiable(1)
        if not keepdim and x.ndim:
            values, idx = values.squeeze(d), idx.squeeze(d)
        return values, idx.astype(np.int64)

    @staticmethod
    def backward(ctx, g, g_idx=None):
        if ctx.meta is None:
            x, y = ctx.saved_arrays
            mask = x == y
            return g * mask / mask.sum()
        (idx,) = ctx.saved_arrays
        shape, d, keepdim = ctx.meta
        xp = _array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        if not shape:
            return g
        gk = g if keepdim else xp.expand_dims(g, d)
        xp.put_along_axis(out, idx, gk, axis=d)
        return out


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        ctx.metas = (_meta(a), _meta(b))
        return _array_module(a, b).where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_arrays
        ma, mb = ctx.metas
        ga = _reduce_to(g * cond, ma) if ctx.needs_input_grad[1] else None
        gb = _reduce_to(g * ~cond, mb) if ctx.needs_input_grad[2] else None
        return None, ga, gb


def where(condition, input, other):
    """Elementwise ``input if condition else other``; gradients flow to both branches' chosen
    elements."""
    from ..tensor import Tensor

    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    a = input if isinstance(input, Tensor) else Tensor(input)
    b = other if isinstance(other, Tensor) else Tensor(other)
    return Where.apply(cond.astype(bool), a, b)
