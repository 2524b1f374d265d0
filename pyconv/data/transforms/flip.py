"""``RandomHorizontalFlip``: mirror each image left-right with probability p."""

from __future__ import annotations

import numpy as np

from ._base import RandomTransform, format_number, is_number

__all__ = ["RandomHorizontalFlip"]


class RandomHorizontalFlip(RandomTransform):
    """Reverse the width axis of each image with probability ``p`` (one draw per image per call):
    Keras' ``horizontal_flip=True`` is p=0.5, as torchvision's default.

    x: (N, C, H, W) or (C, H, W), any dtype; returns a new array of the same shape and dtype,
    flipped images exactly ``x[n, :, :, ::-1]``.
    """

    floating = False

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__(seed)
        if not is_number(p) or not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def draw(self, n: int) -> np.ndarray:
        """Which of n images to flip: bool (n,)."""
        return self.generator.random(n) < self.p

    def _apply(self, batch: np.ndarray) -> np.ndarray:
        flip = self.draw(batch.shape[0])
        out = batch.copy()
        out[flip] = batch[flip, ..., ::-1]
        return out

    def __repr__(self):
        return f"RandomHorizontalFlip(p={format_number(self.p)}{self._repr_seed()})"
