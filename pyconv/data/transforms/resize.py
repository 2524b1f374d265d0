"""``Resize``: bilinear (or nearest) resampling to a new height and width, deterministic."""

from __future__ import annotations

import numbers

import numpy as np

from ._base import as_batch

__all__ = ["Resize"]


def _bilinear_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) interpolation matrix of ``F.interpolate(mode="bilinear",
    align_corners=False)`` along one axis: output i samples input (i + 0.5) * in/out - 0.5,
    clamped at 0 below, between its two neighbours (the last one repeated at the far edge)."""
    scale = size_in / size_out
    src = np.maximum((np.arange(size_out) + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    hi = np.minimum(lo + 1, size_in - 1)
    frac = src - lo
    weights = np.zeros((size_out, size_in))
    rows = np.arange(size_out)
    np.add.at(weights, (rows, lo), 1.0 - frac)
    np.add.at(weights, (rows, hi), frac)
    return weights


def _nearest_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) selection matrix of ``F.interpolate(mode="nearest")``: output i takes
    input floor(i * in/out)."""
    src = np.minimum(np.floor(np.arange(size_out) * (size_in / size_out)).astype(np.int64),
                     size_in - 1)
    weights = np.zeros((size_out, size_in))
    weights[np.arange(size_out), src] = 1.0
    return weights


class Resize:
    """Resample images to ``size``: an (h, w) pair, or an int that the shorter side becomes
    (the longer one keeps the aspect ratio, ``int(size * long / short)``, as torchvision's
    ``Resize``).

    x: (N, C, H, W) or (C, H, W) floating -> (N, C, h, w) or (C, h, w), x's dtype. ``mode``
    "bilinear" (default) matches ``torch.nn.functional.interpolate(x, size, mode="bilinear",
    align_corners=False)`` (no antialiasing when shrinking), "nearest" matches mode="nearest".
    Separable: two small matrix products per batch, no loop over images.
    """

    def __init__(self, size, mode: str = "bilinear"):
        if isinstance(size, numbers.Integral) and not isinstance(size, bool):
            sizes = (int(size),)
        elif (isinstance(size, (tuple, list)) and len(size) == 2
              and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size)):
            sizes = tuple(int(s) for s in size)
        else:
            raise TypeError(f"Resize: size must be an int or an (h, w) pair of ints, got {size!r}")
        if min(sizes) < 1:
            raise ValueError(f"Resize: size must be >= 1, got {size!r}")
        if mode not in ("bilinear", "nearest"):
            raise ValueError(f"Resize: mode must be 'bilinear' or 'nearest', got {mode!r}")
        self.size = sizes[0] if len(sizes) == 1 else sizes
        self.mode = mode
        self._cache = {}

    def output_size(self, height: int, width: int) -> tuple:
        """The (h, w) an image of (height, width) is resized to."""
        if isinstance(self.size, tuple):
            return self.size
        if height <= width:
            return self.size, int(self.size * width / height)
        return int(self.size * height / width), self.size

    def _weights(self, size_in: int, size_out: int, dtype) -> np.ndarray:
        key = (size_in, size_out, np.dtype(dtype).str)
        if key not in self._cache:
            build = _bilinear_weights if self.mode == "bilinear" else _nearest_weights
            self._cache[key] = build(size_in, size_out).astype(dtype)
        return self._cache[key]

    def __call__(self, x):
        batch, restore = as_batch(x, "Resize", floating=True)
        h, w = batch.shape[-2:]
        out_h, out_w = self.output_size(h, w)
        rows = self._weights(h, out_h, batch.dtype)  # (out_h, h)
        cols = self._weights(w, out_w, batch.dtype)  # (out_w, w)
        return restore(np.matmul(np.matmul(rows, batch), cols.T))

    def __repr__(self):
        mode = "" if self.mode == "bilinear" else f", mode={self.mode!r}"
        return f"Resize({self.size!r}{mode})"
