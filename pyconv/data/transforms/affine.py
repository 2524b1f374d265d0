"""Random rotations, shifts and zooms with Keras' ``ImageDataGenerator`` semantics.

One affine map per image, drawn as Keras draws ``rotation_range``, ``height_shift_range``,
``width_shift_range`` and ``zoom_range``, built as Keras builds it, and applied to the whole
batch at once by :func:`~pyconv.data.transforms.sampling.warp_affine` (bilinear, Keras'
``interpolation_order=1``).

The map sends an output pixel p = (row, col) to the input point
``centre + R(theta) (Z p' + t)`` with ``p' = p - centre``, ``centre = ((H-1)/2, (W-1)/2)``,
``R(theta) = [[cos, -sin], [sin, cos]]``, ``Z = diag(zoom_rows, zoom_cols)`` and
``t = (shift_rows, shift_cols)``: Keras' ``offset @ rotation @ shift @ zoom @ reset``
matrix, given to ``scipy.ndimage.affine_transform``. Consequences, as in Keras: a positive
angle turns the content clockwise as displayed (row 0 at the top; torchvision's positive
angles turn it counter-clockwise); a shift t moves the content by -t; a zoom factor above 1
shows more of the image (the content shrinks), below 1 enlarges it. The angle and shift
draws are symmetric, so their directions do not matter for augmentation.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._base import RandomTransform, check_fill, format_number, format_range, is_number, number_range
from .sampling import warp_affine

__all__ = ["RandomAffine", "RandomRotation", "RandomShift", "RandomZoom"]


def _shift_range(value, op: str, name: str):
    """Keras' ``*_shift_range``: an int n >= 1 is whole pixels, a float < 1 a fraction of the
    side, a float >= 1 pixels; 0 (or None) disables the shift."""
    if value is None or (is_number(value) and value == 0):
        return 0
    if not is_number(value) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{op}: {name} must be a number >= 0 (a fraction of the side if < 1, "
                         f"pixels if >= 1), got {value!r}")
    return value


def _draw_shift(value, size: int, n: int, generator: np.random.Generator) -> np.ndarray:
    if value == 0:
        return np.zeros(n)
    if isinstance(value, numbers.Integral):
        # Keras: choice(range(n)) times a random sign, so 0 is twice as likely as each +-k
        magnitude = generator.integers(0, int(value), size=n)
        return magnitude * generator.choice(np.array([-1.0, 1.0]), size=n)
    drawn = generator.uniform(-float(value), float(value), size=n)
    return drawn * size if value < 1 else drawn


class RandomAffine(RandomTransform):
    """Rotation, shift and zoom in one resampling, as one ``ImageDataGenerator`` call does.

    x: (N, C, H, W) or (C, H, W) floating; returns a new array of the same shape and dtype.

    - ``degrees`` (``rotation_range``): a number d draws the angle uniformly in [-d, d] degrees,
      a pair (lo, hi) in [lo, hi]; rotation about the image centre.
    - ``width_shift`` / ``height_shift`` (``width_shift_range`` / ``height_shift_range``): a
      float s < 1 draws a shift uniformly in [-s, s) times W (or H); a float >= 1 draws pixels
      in [-s, s); an int n >= 1 draws whole pixels as Keras does: a magnitude uniform in
      {0, ..., n-1} with a random sign. ``height_shift=None`` means the same as ``width_shift``.
    - ``zoom`` (``zoom_range``): a float z draws factors in [1-z, 1+z], a pair (lo, hi) in
      [lo, hi]; the row and column factors are drawn independently (as Keras does).
    - ``fill_mode``: "nearest" (default, Keras' too), "constant" (``cval``), "reflect", "wrap".

    :meth:`draw` gives the per-image parameters of a call and :meth:`apply` applies given
    ones; ``t(x)`` is ``t.apply(x, t.draw(N, H, W))``.
    """

    def __init__(self, degrees=0, width_shift=0, height_shift=None, zoom=0, fill_mode="nearest",
                 cval=0.0, seed=None):
        super().__init__(seed)
        op = type(self).__name__
        self.degrees = number_range(degrees, op, "degrees")
        self.width_shift = _shift_range(width_shift, op, "width_shift")
        self.height_shift = (self.width_shift if height_shift is None
                             else _shift_range(height_shift, op, "height_shift"))
        if is_number(zoom) and not 0 <= zoom < 1:
            raise ValueError(f"{op}: zoom must be in [0, 1) (factors in [1-zoom, 1+zoom]) or a "
                             f"(lo, hi) pair with 0 < lo, got {zoom!r}")
        self.zoom = number_range(zoom, op, "zoom", minimum=0.0, symmetric_about=1.0)
        self.fill_mode, self.cval = check_fill(op, fill_mode, cval)

    def draw(self, n: int, height: int, width: int) -> dict:
        """One set of parameters per image, each an array (n,): ``angle`` (degrees),
        ``shift_rows``, ``shift_cols`` (pixels), ``zoom_rows``, ``zoom_cols``."""
        g = self.generator
        params = {"angle": np.zeros(n), "shift_rows": np.zeros(n), "shift_cols": np.zeros(n),
                  "zoom_rows": np.ones(n), "zoom_cols": np.ones(n)}
        if self.degrees != (0.0, 0.0):
            params["angle"] = g.uniform(*self.degrees, size=n)
        params["shift_rows"] = _draw_shift(self.height_shift, height, n, g)
        params["shift_cols"] = _draw_shift(self.width_shift, width, n, g)
        if self.zoom != (1.0, 1.0):
            factors = g.uniform(*self.zoom, size=(n, 2))
            params["zoom_rows"], params["zoom_cols"] = factors[:, 0], factors[:, 1]
        return params

    @staticmethod
    def matrices(params: dict, height: int, width: int) -> np.ndarray:
        """(n, 2, 3) maps from output (row, col) to input (row, col), one per image."""
        theta = np.deg2rad(params["angle"])
        cos, sin = np.cos(theta), np.sin(theta)
        zr, zc = params["zoom_rows"], params["zoom_cols"]
        centre_r, centre_c = (height - 1) / 2, (width - 1) / 2
        # linear part R Z; offset centre + R (t - Z centre)
        tr = params["shift_rows"] - zr * centre_r
        tc = params["shift_cols"] - zc * centre_c
        out = np.empty((len(theta), 2, 3))
        out[:, 0, 0], out[:, 0, 1] = cos * zr, -sin * zc
        out[:, 1, 0], out[:, 1, 1] = sin * zr, cos * zc
        out[:, 0, 2] = centre_r + cos * tr - sin * tc
        out[:, 1, 2] = centre_c + sin * tr + cos * tc
        return out

    def apply(self, x, params: dict):
        """Apply given parameters (from :meth:`draw`) to x (N, C, H, W); returns a new array."""
        x = np.asarray(x)
        return warp_affine(x, self.matrices(params, x.shape[-2], x.shape[-1]), self.fill_mode,
                           self.cval)

    def _apply(self, batch: np.ndarray) -> np.ndarray:
        n, _, h, w = batch.shape
        return self.apply(batch, self.draw(n, h, w))

    def _repr_fill(self) -> str:
        text = "" if self.fill_mode == "nearest" else f", fill_mode={self.fill_mode!r}"
        if self.fill_mode == "constant" and self.cval != 0:
            text += f", cval={format_number(self.cval)}"
        return text + self._repr_seed()

    def _repr_parts(self) -> list:
        parts = []
        if self.degrees != (0.0, 0.0):
            parts.append(f"degrees={format_range(*self.degrees)}")
        if self.width_shift:
            parts.append(f"width_shift={self.width_shift!r}")
        if self.height_shift or self.width_shift:  # an omitted height_shift would copy width
            parts.append(f"height_shift={self.height_shift!r}")
        if self.zoom != (1.0, 1.0):
            parts.append(f"zoom={format_range(*self.zoom, symmetric_about=1.0)}")
        return parts

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(self._repr_parts())}{self._repr_fill()})"


class RandomRotation(RandomAffine):
    """Rotate each image by an angle drawn uniformly in [-degrees, degrees] (or [lo, hi] for a
    pair) about its centre: Keras' ``rotation_range`` (torchvision's ``RandomRotation`` draws
    the same range). x: (N, C, H, W) or (C, H, W); see :class:`RandomAffine` for the rest."""

    def __init__(self, degrees, fill_mode="nearest", cval=0.0, seed=None):
        super().__init__(degrees=degrees, fill_mode=fill_mode, cval=cval, seed=seed)

    def __repr__(self):
        return f"RandomRotation({format_range(*self.degrees)}{self._repr_fill()})"


class RandomShift(RandomAffine):
    """Translate each image: Keras' ``width_shift_range`` / ``height_shift_range``.

    ``width``/``height``: a float < 1 is a fraction of W/H (shift drawn in [-s, s) times the
    side), a float >= 1 pixels, an int >= 1 whole pixels (Keras' integer draw, see
    :class:`RandomAffine`); ``height=None`` uses ``width``. x: (N, C, H, W) or (C, H, W).
    """

    def __init__(self, width, height=None, fill_mode="nearest", cval=0.0, seed=None):
        super().__init__(width_shift=width, height_shift=height, fill_mode=fill_mode, cval=cval,
                         seed=seed)

    def __repr__(self):
        return (f"RandomShift(width={self.width_shift!r}, height={self.height_shift!r}"
                f"{self._repr_fill()})")


class RandomZoom(RandomAffine):
    """Zoom each image about its centre: Keras' ``zoom_range``.

    ``zoom``: a float z gives factors in [1-z, 1+z], a pair (lo, hi) factors in [lo, hi]; the
    row and column factors are drawn independently. As in Keras, a factor above 1 zooms out.
    x: (N, C, H, W) or (C, H, W).
    """

    def __init__(self, zoom, fill_mode="nearest", cval=0.0, seed=None):
        super().__init__(zoom=zoom, fill_mode=fill_mode, cval=cval, seed=seed)

    def __repr__(self):
        return f"RandomZoom({format_range(*self.zoom, symmetric_about=1.0)}{self._repr_fill()})"
