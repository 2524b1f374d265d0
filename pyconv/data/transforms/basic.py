"""Deterministic transforms: ``Compose``, ``Normalize``, ``ToFloat``.

``Normalize`` and ``Compose`` work the same on one sample (C, H, W) and on a batch
(N, C, H, W), because :class:`~pyconv.data.DataLoader` applies transforms to whole batches:
per-channel parameters therefore broadcast against axis -3.
"""

from __future__ import annotations

import numbers

import numpy as np

from ...tensor import Tensor
from ._base import as_batch

__all__ = ["Compose", "Normalize", "ToFloat"]


def _channel_values(values, op: str, name: str) -> np.ndarray:
    """A scalar or a sequence of per-channel numbers as float64 (C,)."""
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        return np.array([float(values)])
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{op}: {name} must be a number or a sequence of numbers, got {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{op}: {name} must be a number or a 1-D sequence of numbers, got {values!r}")
    return arr


class Normalize:
    """``(x - mean[c]) / std[c]`` for each channel c (axis -3); scalars apply to every channel.

    x: array or tensor (..., C, H, W); floating inputs keep their dtype, integer inputs (raw
    uint8 images) become float32. Returns the same kind (array or tensor) and shape as x.
    """

    def __init__(self, mean, std):
        self.mean = _channel_values(mean, "Normalize", "mean")
        self.std = _channel_values(std, "Normalize", "std")
        if self.mean.size != self.std.size and 1 not in (self.mean.size, self.std.size):
            raise ValueError(
                f"Normalize: mean has {self.mean.size} values but std has {self.std.size}; give "
                f"one per channel (or a scalar)"
            )
        if np.any(self.std == 0) or not np.all(np.isfinite(self.std)):
            raise ValueError(f"Normalize: std must be finite and non-zero, got {self.std.tolist()}")

    def _parameters(self, x_shape: tuple, dtype):
        channels = max(self.mean.size, self.std.size)
        if channels > 1 and (len(x_shape) < 3 or x_shape[-3] != channels):
            found = f"{x_shape[-3]} channels" if len(x_shape) >= 3 else f"{len(x_shape)} dimensions"
            raise ValueError(
                f"Normalize: input has {found} (shape {tuple(x_shape)}) but mean/std have "
                f"{channels} values; expected (..., {channels}, H, W)"
            )
        shape = (-1, 1, 1) if channels > 1 else (1,)
        return self.mean.astype(dtype).reshape(shape), self.std.astype(dtype).reshape(shape)

    def __call__(self, x):
        if isinstance(x, Tensor):
            if x.dtype.kind != "f":
                x = x.float()
            mean, std = self._parameters(x.shape, x.dtype)
            return (x - Tensor._wrap(mean)) / Tensor._wrap(std)
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        mean, std = self._parameters(x.shape, x.dtype)
        return (x - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Compose:
    """Apply ``transforms`` in order: ``Compose([Normalize(0.5, 0.5), other])``."""

    def __init__(self, transforms):
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{i}] is not callable ({type(t).__name__})")
        self.transforms = transforms

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        body = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({body}\n)"


class ToFloat:
    """Integer images to floats in [0, 1]; floating images pass through unchanged (not copied).

    x: (N, C, H, W) or (C, H, W). uint8 is divided by 255, any other integer type by its largest
    value (as torchvision's ``convert_image_dtype``), bool becomes 0/1. ``dtype`` is the result's
    float type for integer inputs (float32 by default).
    """

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"ToFloat: dtype must be a floating type, got {self.dtype}")

    def __call__(self, x):
        batch, restore = as_batch(x, "ToFloat", floating=False)
        if batch.dtype.kind == "f":
            return x
        if batch.dtype.kind == "b":
            return restore(batch.astype(self.dtype))
        if batch.dtype.kind not in "ui":
            raise TypeError(f"ToFloat: expected an integer or floating array, got {batch.dtype}")
        scale = np.iinfo(batch.dtype).max
        return restore((batch.astype(np.float64) / scale).astype(self.dtype))

    def __repr__(self):
        return "ToFloat()" if self.dtype == np.float32 else f"ToFloat(dtype={self.dtype.name})"
