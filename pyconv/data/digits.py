"""The bundled digits: 1797 8x8 images (UCI optdigits test set, see DIGITS_LICENSE.txt),
images (N, 1, 8, 8), labels int64 (N,) in 0..9, split by :func:`~pyconv.data.stratified_split`."""

from __future__ import annotations

import os

import numpy as np

from .datasets import ImageDataset
from .split import stratified_split

__all__ = ["DIGIT_CLASSES", "DigitsDataset", "load_digits", "load_digits_split"]

DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")
DIGIT_CLASSES = [str(d) for d in range(10)]


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    with np.load(DIGITS_PATH) as f:
        return f["images"], f["labels"]


def load_digits(normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All 1797 bundled 8x8 digits.

    Returns ``(images, labels)``: images (1797, 1, 8, 8), float32 in [0, 1] when ``normalize``
    (pixel counts / 16) else uint8 0..16; labels int64 (1797,) in 0..9. Fresh arrays each call.
    """
    images, labels = _digits_arrays()
    images = images[:, None]
    if normalize:
        images = images.astype(np.float32) / np.float32(16.0)
    return images, labels


class DigitsDataset(ImageDataset):
    """One side of the seeded stratified train/test split of the bundled digits.

    ``DigitsDataset(train=True, seed=0, test_fraction=0.2)``: images (n, 1, 8, 8) and labels
    int64 (n,); n = 1438 (train) or 359 (test) with the default fraction. Both sides of one
    (seed, test_fraction) are disjoint and together cover all 1797; ``indices`` are their
    positions in :func:`load_digits` order. ``classes`` are "0" .. "9".
    """

    def __init__(self, train: bool = True, seed: int = 0, test_fraction: float = 0.2,
                 normalize: bool = True, transform=None):
        images, labels = load_digits(normalize)
        train_idx, test_idx = stratified_split(labels, test_fraction, seed, op="DigitsDataset")
        idx = train_idx if train else test_idx
        super().__init__(images[idx], labels[idx], DIGIT_CLASSES, transform=transform)
        self.train = train
        self.seed = seed
        self.test_fraction = test_fraction
        self.indices = idx


def load_digits_split(seed: int = 0, test_fraction: float = 0.2, normalize: bool = True):
    """The seeded stratified split of the bundled digits as arrays:
    ``(train_images, train_labels), (test_images, test_labels)``, images (n, 1, 8, 8) and
    labels int64 (n,) as :func:`load_digits` gives them; the same samples, in the same order,
    as ``DigitsDataset(train=True/False, seed, test_fraction)``."""
    images, labels = load_digits(normalize)
    train, test = stratified_split(labels, test_fraction, seed, op="load_digits_split")
    return (images[train], labels[train]), (images[test], labels[test])
