"""The cpu backend's output pool (csrc/cpu/output_pool.cpp, pyconv.memory)."""

import numpy as np
import pytest

import pyconv
from pyconv import backends
from pyconv._native import _C

pytestmark = pytest.mark.skipif(_C is None, reason="pyconv._C (the native extension) is not built")

BIG = (64, 32, 26, 26)  # 5.5 MB of float32: pooled


def _address(a):
    return a.__array_interface__["data"][0]


@pytest.fixture
def cpu():
    pyconv.memory.set_cache_limit(1 << 30)
    yield backends.get("cpu")
    pyconv.memory.set_cache_limit(1 << 30)


def test_a_released_output_block_serves_the_next_output_of_its_size(cpu):
    x = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)
    y = cpu.relu_forward(x)
    address = _address(y)
    del y
    before = pyconv.memory.stats()
    y = cpu.relu_forward(x)
    after = pyconv.memory.stats()
    assert _address(y) == address
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_a_block_stays_with_its_array_while_a_view_lives(cpu):
    x = np.ones(BIG, np.float32)
    view = cpu.relu_forward(x)[1:3]
    address = _address(view)
    z = cpu.relu_forward(-x)  # must not reuse the block the view still uses
    assert not (_address(z) <= address < _address(z) + z.nbytes)
    np.testing.assert_array_equal(view, 1.0)
    np.testing.assert_array_equal(z, 0.0)


def test_kernels_overwrite_every_element_of_a_recycled_block(cpu):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 32, 13, 13)).astype(np.float32)
    grad = rng.standard_normal((64, 32, 6, 6)).astype(np.float32)
    y, idx = cpu.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    ref = backends.get("numpy")
    expected = ref.max_pool2d_backward(grad, idx, x.shape, (2, 2), (2, 2), (0, 0), (1, 1))
    for _ in range(2):  # the second result lands in the block the first one gave back, dirty
        got = cpu.max_pool2d_backward(grad, idx, x.shape, (2, 2), (2, 2), (0, 0), (1, 1))
        np.testing.assert_array_equal(got, expected)
        got[...] = np.nan
        del got


def test_the_limit_bounds_idle_bytes_and_zero_turns_caching_off(cpu):
    x = np.ones(BIG, np.float32)
    pyconv.memory.set_cache_limit(0)
    assert pyconv.memory.stats()["cached_bytes"] == 0
    y = cpu.relu_forward(x)
    del y
    assert pyconv.memory.stats()["cached_bytes"] == 0
    pyconv.memory.set_cache_limit(x.nbytes * 2)
    outputs = [cpu.relu_forward(x) for _ in range(4)]
    del outputs
    stats = pyconv.memory.stats()
    assert 0 < stats["cached_bytes"] <= x.nbytes * 2 == stats["limit_bytes"]
    pyconv.memory.empty_cache()
    assert pyconv.memory.stats()["cached_bytes"] == 0


def test_small_outputs_do_not_use_the_pool(cpu):
    before = pyconv.memory.stats()
    cpu.relu_forward(np.ones((8, 8), np.float32))
    after = pyconv.memory.stats()
    assert (after["hits"], after["misses"]) == (before["hits"], before["misses"])


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_set_cache_limit_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="nbytes"):
        pyconv.memory.set_cache_limit(bad)
