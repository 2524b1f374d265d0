"""Tensor factories with PyTorch's names and defaults (float32 unless told otherwise)."""

from __future__ import annotations

import numpy as np

from . import random as _random
from .tensor import Tensor, _sizes, as_array, resolve_dtype

__all__ = [
    "arange",
    "empty",
    "eye",
    "from_numpy",
    "full",
    "full_like",
    "linspace",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "tensor",
    "zeros",
    "zeros_like",
]


def _float_dtype(dtype):
    return resolve_dtype(dtype) or np.dtype(np.float32)


def _make(array, requires_grad):
    t = Tensor._wrap(array)
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data, dtype=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (list, scalar, NumPy array or tensor)."""
    return _make(as_array(data, dtype, copy=True), requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (writes through, as ``torch.from_numpy``)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(array).__name__})")
    return Tensor._wrap(array)


def zeros(*size, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.zeros(_sizes(size), dtype=_float_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.ones(_sizes(size), dtype=_float_dtype(dtype)), requires_grad)


empty = zeros


def full(size, fill_value, dtype=None, requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = np.int64 if isinstance(fill_value, (int, np.integer)) and not isinstance(
            fill_value, bool) else (np.bool_ if isinstance(fill_value, bool) else np.float32)
    return _make(np.full(_sizes((size,)), fill_value, dtype=resolve_dtype(dtype)), requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.zeros(t.shape, dtype=resolve_dtype(dtype) or t.dtype), requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.ones(t.shape, dtype=resolve_dtype(dtype) or t.dtype), requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.full(t.shape, fill_value, dtype=resolve_dtype(dtype) or t.dtype), requires_grad)


def randn(*size, dtype=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the global generator (see :func:`pyconv.manual_seed`)."""
    dtype = _float_dtype(dtype)
    return _make(_random.generator().standard_normal(_sizes(size)).astype(dtype), requires_grad)


def rand(*size, dtype=None, requires_grad=False) -> Tensor:
    """Uniform samples on [0, 1)."""
    dtype = _float_dtype(dtype)
    return _make(_random.generator().random(_sizes(size)).astype(dtype), requires_grad)


def randn_like(t: Tensor, dtype=None) -> Tensor:
    return randn(*t.shape, dtype=dtype or t.dtype)


def rand_like(t: Tensor, dtype=None) -> Tensor:
    return rand(*t.shape, dtype=dtype or t.dtype)


def randint(low, high=None, size=(), dtype=None) -> Tensor:
    """Integers in [low, high) (``randint(high, size)`` also accepted, as PyTorch)."""
    if high is None:
        low, high = 0, low
    data = _random.generator().integers(low, high, size=_sizes((size,)))
    return Tensor._wrap(data.astype(resolve_dtype(dtype) or np.int64))


def randperm(n: int, dtype=None) -> Tensor:
    return Tensor._wrap(_random.generator().permutation(n).astype(resolve_dtype(dtype) or np.int64))


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    """``arange(end)`` or ``arange(start, end, step)``; int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else np.float32
    return _make(np.arange(start, end, step).astype(resolve_dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.linspace(start, end, steps).astype(_float_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False) -> Tensor:
    return _make(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)
