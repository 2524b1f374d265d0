"""Regenerate ``digits.npz`` from scikit-learn's copy of the UCI optdigits test set.

Run once, by hand, in an environment that has scikit-learn (pyconv itself never imports this
file and does not depend on scikit-learn)::

    python pyconv/data/_make_digits.py

Writes ``pyconv/data/digits.npz`` with two arrays:

* ``images``: uint8 (1797, 8, 8), pixel counts 0..16;
* ``labels``: int64 (1797,), digits 0..9.

The arrays are stored in scikit-learn's order, unshuffled. See DIGITS_LICENSE.txt.
"""

from __future__ import annotations

import os

import numpy as np


def main() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images
    if not np.array_equal(images, np.round(images)) or images.min() < 0 or images.max() > 16:
        raise SystemExit("unexpected pixel values: expected integers in 0..16")
    images = images.astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    if images.shape != (1797, 8, 8) or labels.shape != (1797,):
        raise SystemExit(f"unexpected shapes {images.shape}, {labels.shape}")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")
    np.savez_compressed(out, images=images, labels=labels)
    print(f"wrote {out}: images {images.shape} {images.dtype}, "
          f"labels {labels.shape} {labels.dtype}")


if __name__ == "__main__":
    main()
