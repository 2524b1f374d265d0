"""``from_spec``: the CLI's ``--augment`` text ("flip,rotate=15,shift=0.1") to a transform."""

from __future__ import annotations

import re

import numpy as np

from .affine import RandomAffine, RandomRotation, RandomShift, RandomZoom
from .basic import Compose
from .crop import RandomCrop
from .flip import RandomHorizontalFlip
from .noise import GaussianNoise

__all__ = ["SPEC_KEYS", "from_spec"]

#: key -> what its value means (for --help texts and error messages)
SPEC_KEYS = {
    "flip": "flip or flip=P: horizontal flip with probability P (default 0.5)",
    "rotate": "rotate=DEGREES: rotation angle uniform in [-DEGREES, DEGREES]",
    "shift": "shift=S: shift uniform in [-S, S) times the width and height (S < 1), or "
             "in pixels (S >= 1)",
    "zoom": "zoom=Z: zoom factors uniform in [1-Z, 1+Z], 0 <= Z < 1",
    "crop": "crop=PADDING: zero-pad by PADDING pixels, crop back to the input size",
    "noise": "noise=STD: additive Gaussian noise, result clipped to [0, 1]",
}
_ACCEPTED = "flip, flip=P, rotate=DEGREES, shift=S, zoom=Z, crop=PADDING, noise=STD"
_INT = re.compile(r"[+-]?\d+")


def _number(item: str, text: str, what: str):
    """The value of ``key=text`` as an int (whole-number literals) or a float."""
    try:
        value = int(text) if _INT.fullmatch(text.strip()) else float(text)
    except ValueError:
        raise ValueError(f"augment item {item!r}: expected {what}, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"augment item {item!r}: expected {what}, got {text!r}")
    return value


def from_spec(text: str, seed=None) -> Compose:
    """Parse comma-separated augmentation items into a :class:`Compose`.

    Items (each at most once): ``flip`` or ``flip=P``, ``rotate=DEGREES``, ``shift=S``,
    ``zoom=Z``, ``crop=PADDING``, ``noise=STD`` (see ``SPEC_KEYS``); an empty text gives an
    empty Compose (the identity). Whatever the order in the text, the pipeline is: one
    :class:`RandomAffine` for rotate/shift/zoom (one resampling, as Keras'
    ``ImageDataGenerator``), then the flip (Keras flips after the affine map), the crop, and
    the noise last (so it is not rotated or padded). ``seed=None`` draws from pyconv's global
    generator; an int seeds every random transform with its own stream derived from it.
    Unknown keys or bad values raise ValueError naming the item and what is accepted.
    """
    if not isinstance(text, str):
        raise TypeError(f"from_spec: text must be a str such as 'flip,rotate=15', got {text!r}")
    values = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = (part.strip() for part in item.partition("="))
        if key not in SPEC_KEYS:
            raise ValueError(f"augment item {item!r}: unknown key {key!r}; accepted: {_ACCEPTED}")
        if key in values:
            raise ValueError(f"augment item {item!r}: {key!r} is given twice")
        if key == "flip":
            values[key] = _number(item, value, "a probability in [0, 1]") if sep else 0.5
            if values[key] > 1:
                raise ValueError(f"augment item {item!r}: expected a probability in [0, 1]")
            continue
        if not sep or not value:
            raise ValueError(f"augment item {item!r}: {key} needs a value ({SPEC_KEYS[key]})")
        what = {"rotate": "a number of degrees >= 0",
                "shift": "a fraction in [0, 1) or a number of pixels >= 1",
                "zoom": "a fraction in [0, 1)",
                "crop": "a whole number of pixels >= 0",
                "noise": "a standard deviation >= 0"}[key]
        values[key] = _number(item, value, what)
        if key == "zoom" and values[key] >= 1:
            raise ValueError(f"augment item {item!r}: expected {what}, got {value!r}")
        if key == "crop" and not isinstance(values[key], int):
            raise ValueError(f"augment item {item!r}: expected {what}, got {value!r}")

    geometric = {k: values[k] for k in ("rotate", "shift", "zoom") if k in values}
    streams = [None] * 4 if seed is None else [
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    transforms = []
    if list(geometric) == ["rotate"]:
        transforms.append(RandomRotation(geometric["rotate"], seed=streams[0]))
    elif list(geometric) == ["shift"]:
        transforms.append(RandomShift(geometric["shift"], seed=streams[0]))
    elif list(geometric) == ["zoom"]:
        transforms.append(RandomZoom(geometric["zoom"], seed=streams[0]))
    elif geometric:
        transforms.append(RandomAffine(degrees=geometric.get("rotate", 0),
                                       width_shift=geometric.get("shift", 0),
                                       zoom=geometric.get("zoom", 0), seed=streams[0]))
    if "flip" in values:
        transforms.append(RandomHorizontalFlip(values["flip"], seed=streams[1]))
    if "crop" in values:
        transforms.append(RandomCrop(padding=values["crop"], seed=streams[2]))
    if "noise" in values:
        transforms.append(GaussianNoise(values["noise"], seed=streams[3]))
    return Compose(transforms)
