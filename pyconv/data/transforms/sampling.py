"""Bilinear resampling of a batch through one affine map per image (the core of every
geometric augmentation), with Keras' fill modes.

``warp_affine(x, matrices)`` computes, for each image n and output pixel p = (row, col),
``out[n, :, p] = x[n, :, A_n p + b_n]`` where ``matrices[n] = [A_n | b_n]`` (2, 3) maps output
pixel coordinates to input ones, as ``scipy.ndimage.affine_transform(order=1)`` does for one
image. All images are sampled at once: four gathers of the whole batch, no loop over images.
"""

from __future__ import annotations

import numpy as np

__all__ = ["warp_affine", "FILL_MODES"]

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


def _fold(index: np.ndarray, size: int, fill_mode: str) -> np.ndarray:
    """Map integer coordinates (any value) to valid indices in [0, size) for ``fill_mode``."""
    if fill_mode == "reflect":  # dcba|abcd|dcba: period 2*size, mirrored about the edges
        index = np.mod(index, 2 * size)
        return np.where(index >= size, 2 * size - 1 - index, index)
    if fill_mode == "wrap":  # abcd|abcd|abcd
        return np.mod(index, size)
    # nearest: aaaa|abcd|dddd; constant: clamped too, the outside points are masked afterwards
    return np.clip(index, 0, size - 1)


def warp_affine(x: np.ndarray, matrices: np.ndarray, fill_mode: str = "nearest",
                cval: float = 0.0) -> np.ndarray:
    """Resample ``x`` (N, C, H, W) through ``matrices`` (N, 2, 3); returns (N, C, H, W), x's dtype.

    Coordinates are (row, col) pixel indices. Points that fall outside the image take their
    value from ``fill_mode``: "nearest" (the edge pixel), "reflect" (half-sample mirror,
    ``dcba|abcd|dcba``), "wrap" (periodic, ``abcd|abcd|abcd``) or "constant" (``cval`` for every
    point outside [0, H-1] x [0, W-1], as scipy's mode="constant" which Keras uses).
    """
    if fill_mode not in FILL_MODES:
        raise ValueError(f"warp_affine: fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    n, c, h, w = x.shape
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.shape != (n, 2, 3):
        raise ValueError(f"warp_affine: matrices must have shape ({n}, 2, 3), got {matrices.shape}")
    rows = np.arange(h, dtype=np.float64)[:, None]
    cols = np.arange(w, dtype=np.float64)[None, :]
    a = matrices[:, :, :, None, None]  # (N, 2, 3, 1, 1) against the (H, W) grid
    src_r = a[:, 0, 0] * rows + a[:, 0, 1] * cols + a[:, 0, 2]  # (N, H, W)
    src_c = a[:, 1, 0] * rows + a[:, 1, 1] * cols + a[:, 1, 2]
    r0 = np.floor(src_r)
    c0 = np.floor(src_c)
    fr = (src_r - r0).astype(x.dtype)[:, None]  # (N, 1, H, W), broadcast over channels
    fc = (src_c - c0).astype(x.dtype)[:, None]
    r0 = r0.astype(np.int64)
    c0 = c0.astype(np.int64)
    row_offsets = [_fold(r0 + d, h, fill_mode) * w for d in (0, 1)]
    col_indices = [_fold(c0 + d, w, fill_mode) for d in (0, 1)]
    # the four neighbours of every output pixel, gathered from the whole batch in one call
    # through flat indices (much faster than take_along_axis' broadcast fancy indexing)
    image_starts = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1, 1)
    index = np.stack([row_offsets[dr] + col_indices[dc] for dr in (0, 1) for dc in (0, 1)])
    corners = np.take(x.reshape(-1), image_starts + index.transpose(1, 0, 2, 3)[:, None])
    tl, tr, bl, br = corners.transpose(2, 0, 1, 3, 4)  # each (N, C, H, W)
    top = tl + (tr - tl) * fc
    out = top + (bl + (br - bl) * fc - top) * fr
    if fill_mode == "constant":
        outside = (src_r < 0) | (src_r > h - 1) | (src_c < 0) | (src_c > w - 1)
        out = np.where(outside[:, None], np.asarray(cval, dtype=x.dtype), out)
    return out.astype(x.dtype, copy=False)
