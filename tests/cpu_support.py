"""Shared by the tests of the cpu backend's C++ kernels (tests/test_cpu_*.py)."""

import numpy as np


def assert_close_to_reference(got, want, dtype, tolerance, what=""):
    """``got`` (an output of a kernel in ``dtype``) has want's shape, the dtype, and a largest
    error relative to want's scale (its largest magnitude, at least 1) of at most ``tolerance``;
    ``want`` is the float64 reference."""
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    err = float(np.abs(got.astype(np.float64) - want).max(initial=0.0)) / scale
    assert err <= tolerance, f"{what}: relative error {err:.3g} > {tolerance}"
