"""``RandomCrop``: pad, then cut a window at a random offset per image (torchvision semantics)."""

from __future__ import annotations

import numbers

import numpy as np

from ._base import RandomTransform, format_number, is_number

__all__ = ["RandomCrop"]

_PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


def _pair_of_ints(value, op: str, name: str):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {name} must be an int or an (h, w) pair of ints, got {value!r}")


def _padding(value, op: str) -> tuple:
    """torchvision's padding: int (all sides), (left/right, top/bottom) or (left, top, right,
    bottom); returned as (top, bottom, left, right)."""
    ints = isinstance(value, (tuple, list)) and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pad = (int(value),) * 4
    elif ints and len(value) == 2:
        pad = (int(value[1]), int(value[1]), int(value[0]), int(value[0]))
    elif ints and len(value) == 4:
        pad = (int(value[1]), int(value[3]), int(value[0]), int(value[2]))
    else:
        raise TypeError(f"{op}: padding must be an int, (left/right, top/bottom) or (left, top, "
                        f"right, bottom) ints, got {value!r}")
    if min(pad) < 0:
        raise ValueError(f"{op}: padding must be >= 0, got {value!r}")
    return pad


class RandomCrop(RandomTransform):
    """Zero-pad each image by ``padding``, then crop an (h, w) window at an offset drawn
    uniformly per image: torchvision's ``RandomCrop(size, padding, pad_if_needed, fill,
    padding_mode)``.

    x: (N, C, H, W) or (C, H, W), any dtype -> (N, C, h, w) or (C, h, w), x's dtype.
    ``size``: int or (h, w); ``None`` keeps the input's size (the usual "pad 4 and crop back"
    of CIFAR training, the CLI's ``crop=4``). ``padding``: int, (left/right, top/bottom) or
    (left, top, right, bottom). ``pad_if_needed`` pads an image smaller than the window on both
    sides of that axis. ``padding_mode``: "constant" (``fill``), "edge", "reflect" (no edge
    repeat), "symmetric" (edge repeated), as ``numpy.pad``.
    The top-left offset is uniform in [0, H_padded - h] x [0, W_padded - w].
    """

    floating = False

    def __init__(self, size=None, padding=0, pad_if_needed: bool = False, fill=0,
                 padding_mode: str = "constant", seed=None):
        super().__init__(seed)
        self.size = None if size is None else _pair_of_ints(size, "RandomCrop", "size")
        if self.size is not None and min(self.size) < 1:
            raise ValueError(f"RandomCrop: size must be >= 1, got {size!r}")
        self._padding_arg = padding
        self.padding = _padding(padding, "RandomCrop")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {', '.join(_PADDING_MODES)};"
                             f" got {padding_mode!r}")
        if not is_number(fill):
            raise TypeError(f"RandomCrop: fill must be a number, got {fill!r}")
        self.pad_if_needed = bool(pad_if_needed)
        self.fill = fill
        self.padding_mode = padding_mode

    def _pad(self, batch: np.ndarray) -> np.ndarray:
        top, bottom, left, right = self.padding
        h, w = batch.shape[-2] + top + bottom, batch.shape[-1] + left + right
        if self.size is not None and self.pad_if_needed:
            extra_h, extra_w = max(self.size[0] - h, 0), max(self.size[1] - w, 0)
            top, bottom = top + extra_h, bottom + extra_h
            left, right = left + extra_w, right + extra_w
        widths = ((0, 0), (0, 0), (top, bottom), (left, right))
        if widths == ((0, 0),) * 4:
            return batch
        if self.padding_mode == "constant":
            return np.pad(batch, widths, constant_values=np.asarray(self.fill, batch.dtype))
        return np.pad(batch, widths, mode=self.padding_mode)

    def draw(self, n: int, padded_size: tuple, crop_size: tuple) -> tuple:
        """Top-left offsets (top (n,), left (n,)) of (h, w) windows in (H, W) padded images."""
        (ph, pw), (h, w) = padded_size, crop_size
        if h > ph or w > pw:
            raise ValueError(
                f"RandomCrop: crop size {(h, w)} is larger than the padded image {(ph, pw)}; "
                f"pass pad_if_needed=True or more padding")
        g = self.generator
        return g.integers(0, ph - h + 1, size=n), g.integers(0, pw - w + 1, size=n)

    def _apply(self, batch: np.ndarray) -> np.ndarray:
        h, w = self.size if self.size is not None else batch.shape[-2:]
        padded = self._pad(batch)
        n, c, ph, pw = padded.shape
        top, left = self.draw(n, (ph, pw), (h, w))
        rows = (top[:, None] + np.arange(h))[:, None, :, None]  # (N, 1, h, 1)
        cols = (left[:, None] + np.arange(w))[:, None, None, :]  # (N, 1, 1, w)
        return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                      rows, cols]

    def __repr__(self):
        parts = []
        if self.size is not None:
            parts.append(f"size={self.size[0] if self.size[0] == self.size[1] else self.size}")
        if any(self.padding):
            parts.append(f"padding={self._padding_arg!r}")
        if self.pad_if_needed:
            parts.append("pad_if_needed=True")
        if self.fill != 0:
            parts.append(f"fill={format_number(self.fill)}")
        if self.padding_mode != "constant":
            parts.append(f"padding_mode={self.padding_mode!r}")
        return f"RandomCrop({', '.join(parts)}{self._repr_seed()})"
