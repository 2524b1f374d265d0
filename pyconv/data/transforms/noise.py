"""``GaussianNoise``: additive white noise, the corruption of denoising autoencoders."""

from __future__ import annotations

import numpy as np

from ._base import RandomTransform, format_number, is_number

__all__ = ["GaussianNoise"]


class GaussianNoise(RandomTransform):
    """``clip(x + std * N(0, 1))``: independent noise on every pixel, a fresh draw per call.

    x: (N, C, H, W) or (C, H, W) floating; returns a new array of the same shape and dtype.
    ``clip=(lo, hi)`` (default (0, 1), the range of ToFloat's images) bounds the result;
    ``clip=None`` leaves it unbounded.
    """

    def __init__(self, std: float, clip=(0.0, 1.0), seed=None):
        super().__init__(seed)
        if not is_number(std) or not np.isfinite(std) or std < 0:
            raise ValueError(f"GaussianNoise: std must be a finite number >= 0, got {std!r}")
        if clip is not None:
            if not (isinstance(clip, (tuple, list)) and len(clip) == 2
                    and all(is_number(v) for v in clip) and clip[0] <= clip[1]):
                raise ValueError(
                    f"GaussianNoise: clip must be None or a (lo, hi) pair with lo <= hi, got "
                    f"{clip!r}")
            clip = (float(clip[0]), float(clip[1]))
        self.std = float(std)
        self.clip = clip

    def _apply(self, batch: np.ndarray) -> np.ndarray:
        dtype = batch.dtype if batch.dtype in (np.float32, np.float64) else np.float64
        noise = self.generator.standard_normal(batch.shape, dtype=dtype)
        out = batch + (self.std * noise).astype(batch.dtype, copy=False)
        if self.clip is not None:
            np.clip(out, self.clip[0], self.clip[1], out=out)
        return out

    def __repr__(self):
        if self.clip == (0.0, 1.0):
            clip = ""
        elif self.clip is None:
            clip = ", clip=None"
        else:
            clip = f", clip=({format_number(self.clip[0])}, {format_number(self.clip[1])})"
        return f"GaussianNoise(std={format_number(self.std)}{clip}{self._repr_seed()})"
