"""``softmax`` and ``log_softmax`` along one dimension of a tensor of any shape."""

from __future__ import annotations

import warnings

from ..autograd import Function
from ..shapes import normalize_dim
from ..tensor import resolve_dtype
from .validate import check_float, check_tensor


def _at_least_1d(array):
    """Kernels reduce along a real axis: a 0-d array becomes (1,) (callers reshape back)."""
    return array.reshape(1) if array.ndim == 0 else array


class _AlongDim(Function):
    """A normalisation along one dim whose backward needs only its output: subclasses name the
    kernel pair ``forward_kernel(x, dim)`` / ``backward_kernel(grad_y, y, dim)``."""

    forward_kernel = backward_kernel = ""

    @classmethod
    def forward(cls, ctx, x, dim):
        y = getattr(ctx.backend, cls.forward_kernel)(_at_least_1d(x), dim)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y.reshape(x.shape)

    @classmethod
    def backward(cls, ctx, grad_y):
        (y,) = ctx.saved_arrays
        grad_x = getattr(ctx.backend, cls.backward_kernel)(_at_least_1d(grad_y), y, ctx.dim)
        return grad_x.reshape(grad_y.shape), None


class Softmax(_AlongDim):
    forward_kernel, backward_kernel = "softmax_forward", "softmax_backward"


class LogSoftmax(_AlongDim):
    forward_kernel, backward_kernel = "log_softmax_forward", "log_softmax_backward"


def _implicit_dim(op: str, ndim: int) -> int:
    """PyTorch's legacy choice when dim is None (0 for 0-, 1- and 3-d inputs, else 1), with its
    deprecation warning."""
    warnings.warn(
        f"Implicit dimension choice for {op} has been deprecated. Change the call to include "
        f"dim=X as an argument.",
        UserWarning,
        stacklevel=4,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _prepare(input, dim, dtype, op: str):
    """Validate; cast to ``dtype`` first when given (as PyTorch does); resolve dim to [0, ndim)."""
    check_tensor(input, op, "input")
    if dtype is not None:
        target = resolve_dtype(dtype)
        if target.kind != "f":
            raise TypeError(f"{op}: dtype must be a floating-point dtype (float32 or float64), "
                            f"got {target}")
        input = input.to(target)
    check_float(input, op, "input")
    if dim is None:
        dim = _implicit_dim(op, input.ndim)
    return input, normalize_dim(dim, input.ndim, op)


def softmax(input, dim=None, dtype=None):
    """exp(input) / sum(exp(input)) along ``dim`` (any ndim, negative dims count from the end),
    computed after subtracting the maximum. Same shape as input (dtype ``dtype`` if given)."""
    input, dim = _prepare(input, dim, dtype, "softmax")
    return Softmax.apply(input, dim)


def log_softmax(input, dim=None, dtype=None):
    """log(softmax(input, dim)) computed as input - max - log(sum(exp(input - max))), so it is
    finite wherever the input is. Same shape as input (dtype ``dtype`` if given)."""
    input, dim = _prepare(input, dim, dtype, "log_softmax")
    return LogSoftmax.apply(input, dim)
