"""Shared test helpers for the SIMT emulator and the compile gates.

On a user's machine without a C++20 compiler the emulator tests skip with a reason; CI sets
PYCONV_REQUIRE_SIMT=1, which turns that skip into a failure (the kernels must run there).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

# Every kernel test runs in order and under a seeded random schedule: a missing barrier is nearly
# invisible in order and obvious under a random interleaving.
schedules = ["inorder", "random:1"]


def simt_unavailable_reason() -> str | None:
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        return f"the SIMT emulator needs a C++20 compiler ({compiler} not found)"
    return None


def require_simt():
    """A pytest mark that skips (or, under PYCONV_REQUIRE_SIMT=1, fails) without the emulator."""
    reason = simt_unavailable_reason()
    if reason and os.environ.get("PYCONV_REQUIRE_SIMT") == "1":
        pytest.fail(f"PYCONV_REQUIRE_SIMT=1 but {reason}", pytrace=False)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(params=schedules)
def schedule(request):
    """Run the test body under each schedule of ``schedules``."""
    import pyconv.simt

    kind, _, seed = request.param.partition(":")
    with pyconv.simt.schedule(kind, seed=int(seed or 0)):
        yield request.param


@pytest.fixture(scope="module")
def simt():
    """The simt backend module (CUDA kernels on the emulator)."""
    from pyconv import backends

    return backends.get("simt")


@pytest.fixture(scope="module")
def ref():
    """The NumPy reference backend module, the oracle of the simt tests."""
    from pyconv import backends

    return backends.get("numpy")


def assert_same_array(actual, expected, tolerance: dict, what: str = ""):
    """Same dtype and shape, values within ``tolerance`` (``assert_allclose`` keywords)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, (
        f"{what}: got {actual.dtype} {actual.shape}, expected {expected.dtype} {expected.shape}")
    np.testing.assert_allclose(actual, expected, err_msg=what, **tolerance)
