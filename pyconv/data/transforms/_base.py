"""What every transform shares: batch handling, dtype checks, the random generator, ranges.

A transform takes a NumPy array (N, C, H, W) or one image (C, H, W) and returns a new array
of the same rank; :class:`RandomTransform` subclasses implement ``_apply`` on (N, C, H, W)
only, so one code path (vectorised over N) serves both.
"""

from __future__ import annotations

import numbers

import numpy as np

from ... import random as _random
from ...tensor import Tensor
from .sampling import FILL_MODES


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def format_number(value) -> str:
    """``15`` for 15.0, ``0.1`` for 0.1: the way a user writes it in a spec."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def as_batch(x, op: str, *, floating: bool):
    """``(batch (N, C, H, W), restore)`` where ``restore(out)`` gives the caller's layout back.

    Accepts an array or a :class:`~pyconv.Tensor` of rank 3 (one image) or 4 (a batch);
    ``floating=True`` rejects integer images (interpolating them would silently round).
    """
    is_tensor = isinstance(x, Tensor)
    array = x.numpy() if is_tensor else np.asarray(x)
    if array.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected an image (C, H, W) or a batch (N, C, H, W), got shape "
            f"{tuple(array.shape)}")
    if floating and array.dtype.kind != "f":
        raise TypeError(
            f"{op}: expected a floating-point array, got dtype {array.dtype} (convert uint8 "
            f"images with ToFloat() first)")
    single = array.ndim == 3
    batch = array[None] if single else array

    def restore(out: np.ndarray):
        out = out[0] if single else out
        return Tensor._wrap(np.ascontiguousarray(out)) if is_tensor else out

    return batch, restore


def check_fill(op: str, fill_mode: str, cval) -> tuple[str, float]:
    if fill_mode not in FILL_MODES:
        raise ValueError(
            f"{op}: fill_mode must be one of {', '.join(FILL_MODES)}; got {fill_mode!r}")
    if not is_number(cval):
        raise TypeError(f"{op}: cval must be a number, got {cval!r}")
    return fill_mode, float(cval)


def number_range(value, op: str, name: str, *, minimum: float | None = None,
                 symmetric_about: float = 0.0) -> tuple[float, float]:
    """A scalar d as ``(symmetric_about - d, symmetric_about + d)`` (d >= 0), or a (lo, hi) pair
    with lo <= hi; ``minimum`` bounds lo from below (exclusive)."""
    if is_number(value):
        if value < 0:
            raise ValueError(f"{op}: {name} must be >= 0 (or a (lo, hi) pair), got {value!r}")
        lo, hi = symmetric_about - float(value), symmetric_about + float(value)
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(is_number(v) for v in value)):
        lo, hi = float(value[0]), float(value[1])
        if lo > hi:
            raise ValueError(f"{op}: {name} must be (lo, hi) with lo <= hi, got {tuple(value)}")
    else:
        raise TypeError(f"{op}: {name} must be a number or a (lo, hi) pair, got {value!r}")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{op}: {name} must be finite, got {value!r}")
    if minimum is not None and lo <= minimum:
        raise ValueError(f"{op}: {name} must stay above {format_number(minimum)}, giving the "
                         f"range [{lo:g}, {hi:g}] from {value!r}")
    return lo, hi


def format_range(lo: float, hi: float, symmetric_about: float = 0.0) -> str:
    """``15`` for (-15, 15), ``(0.8, 1.2)`` otherwise: the shortest argument that rebuilds it."""
    if np.isclose(hi - symmetric_about, symmetric_about - lo, rtol=0, atol=1e-12):
        return format_number(round(hi - symmetric_about, 12))
    return f"({format_number(lo)}, {format_number(hi)})"


class RandomTransform:
    """Base of the random transforms: the generator and the call protocol.

    ``seed=None`` draws from pyconv's global generator at each call (so ``pyconv.manual_seed``
    reproduces a run); an int (or a ``numpy.random.Generator``) gives the transform its own
    generator, created once here, so two transforms built with one seed make the same draws.
    Every call draws one set of parameters per image of the batch.
    """

    floating = True  # interpolating transforms need float input; exact ones accept any dtype

    def __init__(self, seed=None):
        if seed is None or isinstance(seed, np.random.Generator):
            self._generator = seed
        elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
            self._generator = np.random.default_rng(int(seed))
        else:
            raise TypeError(
                f"{type(self).__name__}: seed must be None, an int or a numpy Generator, got "
                f"{seed!r}")
        self.seed = seed

    @property
    def generator(self) -> np.random.Generator:
        # looked up per call: manual_seed replaces the global generator object
        return self._generator if self._generator is not None else _random.generator()

    def __call__(self, x):
        batch, restore = as_batch(x, type(self).__name__, floating=self.floating)
        return restore(self._apply(batch))

    def _apply(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _repr_seed(self) -> str:
        return f", seed={self.seed}" if isinstance(self.seed, numbers.Integral) else ""
