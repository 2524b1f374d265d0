"""The seeded stratified train/test split used for datasets that ship without one (the bundled
digits, a single class-per-folder image directory)."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_split"]


def stratified_split(labels, test_fraction: float, seed: int, op: str = "stratified_split"):
    """Seeded stratified split: in each class, ``round(count * test_fraction)`` randomly chosen
    samples go to the test side, so both sides keep the class proportions.

    labels: int array (N,). Returns ``(train_indices, test_indices)``, int64, each sorted.
    The same (labels, test_fraction, seed) always gives the same split.
    """
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not 0 < test_fraction < 1):
        raise ValueError(f"{op}: test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{op}: seed must be an int, got {type(seed).__name__}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(int(seed))
    test_parts = []
    for cls in np.unique(labels):  # one draw per class (10 for digits), not per sample
        members = np.flatnonzero(labels == cls)
        n_test = int(round(members.size * test_fraction))
        test_parts.append(rng.permutation(members)[:n_test])
    test = np.sort(np.concatenate(test_parts)).astype(np.int64)
    is_test = np.zeros(labels.shape[0], dtype=bool)
    is_test[test] = True
    train = np.flatnonzero(~is_test).astype(np.int64)
    if train.size == 0 or test.size == 0:
        raise ValueError(
            f"{op}: test_fraction={test_fraction} leaves {train.size} training and {test.size} "
            f"test samples out of {labels.shape[0]}; both must be non-empty"
        )
    return train, test
