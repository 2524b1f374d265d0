"""kernels/softmax.cu on the SIMT emulator against the NumPy reference: every traversal (warp per
row, block per row, column), every dim, stability edges (+-1e4, -inf, +inf, NaN), empty arrays,
bitwise reproducibility across schedules, and the autograd ops on the simt backend."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
import pyconv.simt
from pyconv import backends
from simt_support import assert_same_array, ref, require_simt, schedule, simt  # noqa: F401 - ref, schedule, simt are fixtures

pytestmark = require_simt()

DTYPES = [np.float64, np.float32]
TOLERANCES = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=1e-5, atol=1e-6)}
FORWARD = ["softmax_forward", "log_softmax_forward"]
BACKWARD = ["softmax_backward", "log_softmax_backward"]


def _assert_matches(actual, expected, dtype):
    assert_same_array(actual, expected, TOLERANCES[np.dtype(dtype).type])


def _check_op_pair(simt, ref, x, dim, dtype, seed=0):
    """Forward and backward of softmax and log_softmax on the simt backend equal the reference's."""
    x = x.astype(dtype)
    grad_y = np.random.default_rng(seed).standard_normal(x.shape).astype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        for forward, backward in zip(FORWARD, BACKWARD):
            y = getattr(ref, forward)(x, dim)
            _assert_matches(getattr(simt, forward)(x, dim), y, dtype)
            _assert_matches(getattr(simt, backward)(grad_y, y, dim),
                            getattr(ref, backward)(grad_y, y, dim), dtype)


def _launched(simt, fn):
    before = simt.device.launches.copy()
    fn()
    return set(simt.device.launches - before)


# shape, dim, the traversal the glue must pick
LAYOUTS = [
    ((5,), 0, "warp"),
    ((3, 4), 1, "warp"),
    ((7, 33), 1, "warp"),
    ((2, 1024), 1, "warp"),  # the longest warp row: 32 values per lane
    ((2, 1025), 1, "block"),  # the shortest block row
    ((3, 2000), -1, "block"),
    ((3, 4), 0, "column"),
    ((2, 3, 4, 5), 1, "column"),
    ((2, 1500, 3), 1, "column"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, dim, kind", LAYOUTS)
def test_each_traversal_matches_the_reference(simt, ref, shape, dim, kind, dtype, schedule):
    x = np.random.default_rng(1).standard_normal(shape) * 3
    dim %= len(shape)
    launched = _launched(simt, lambda: _check_op_pair(simt, ref, x, dim, dtype))
    suffix = "f64" if dtype == np.float64 else "f32"
    assert launched == {f"{op}_{kind}_{suffix}" for op in FORWARD + BACKWARD}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", range(4))
def test_every_dim_of_4d(simt, ref, dim, dtype, schedule):
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5)) * 3
    _check_op_pair(simt, ref, x, dim, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_random_shapes(simt, ref, seed, dtype, schedule):
    rng = np.random.default_rng(100 + seed)
    ndim = int(rng.integers(1, 5))
    shape = tuple(int(s) for s in rng.integers(1, 6, size=ndim))
    dim = int(rng.integers(0, ndim))
    _check_op_pair(simt, ref, rng.standard_normal(shape) * rng.uniform(0.1, 20), dim, dtype, seed)


HUGE = np.array([[-1e4, 1e4, 0.0], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4], [5e3, -5e3, 1e4]])
HUGE_LOG_SOFTMAX = np.array([[-2e4, 0, -1e4], [-np.log(2), -np.log(2), -2e4 - np.log(2)],
                             [-np.log(3)] * 3, [-5e3, -1.5e4, 0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["warp", "block", "column"])
def test_huge_inputs_are_finite_and_exact(simt, ref, layout, dtype, schedule):
    # the block layout repeats each row's values to 1026 entries; the column one transposes
    x, expected, dim = HUGE, HUGE_LOG_SOFTMAX, 1
    if layout == "block":
        x, dim = np.repeat(HUGE, 342, axis=1), 1
        expected = np.repeat(HUGE_LOG_SOFTMAX, 342, axis=1) - np.log(342)
    elif layout == "column":
        x, expected, dim = HUGE.T, HUGE_LOG_SOFTMAX.T, 0
    x = x.astype(dtype)
    log_y = simt.log_softmax_forward(x, dim)
    y = simt.softmax_forward(x, dim)
    assert np.all(np.isfinite(log_y)) and np.all(np.isfinite(y))
    np.testing.assert_allclose(log_y, expected, rtol=1e-6, atol=0)
    np.testing.assert_allclose(y, np.exp(expected), rtol=1e-6, atol=0)
    _check_op_pair(simt, ref, x, dim, dtype)


# rows with -inf entries (finite elsewhere), only -inf (NaN), +inf (NaN), NaN (NaN), all equal
SPECIAL_ROWS = np.array([
    [-np.inf, 1.0, 2.0, -np.inf, 0.5],
    [3.0, -np.inf, -np.inf, -np.inf, -np.inf],
    [-np.inf] * 5,
    [np.inf, 1.0, 2.0, 3.0, 4.0],
    [1.0, np.nan, 2.0, 3.0, 4.0],
    [2.5] * 5,
])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["warp", "block", "column"])
def test_infinite_and_nan_entries_follow_the_reference(simt, ref, layout, dtype, schedule):
    x, dim = SPECIAL_ROWS, 1
    if layout == "block":  # -inf padding keeps each row's finite values and its NaN outcome
        x = np.concatenate([SPECIAL_ROWS, np.full((6, 1100), -np.inf)], axis=1)
    elif layout == "column":
        x, dim = SPECIAL_ROWS.T.copy(), 0
    _check_op_pair(simt, ref, x, dim, dtype)
    y = simt.softmax_forward(x.astype(dtype), dim)
    rows = y if dim == 1 else y.T
    assert np.all(np.isnan(rows[2:5])) and not np.any(np.isnan(rows[[0, 1, 5]]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, dim", [((3, 0), 1), ((0, 4), 1), ((0, 4), 0), ((2, 0, 3), 1)])
def test_empty_arrays_launch_nothing(simt, ref, shape, dim, dtype):
    launched = _launched(simt, lambda: _check_op_pair(simt, ref, np.zeros(shape), dim, dtype))
    assert launched == set()


def test_grids_smaller_than_the_work_stride_over_it(simt, ref, monkeypatch, schedule):
    # one "multiprocessor": 16 warp-kernel blocks, 4 block-kernel blocks, 8 column blocks
    monkeypatch.setattr(simt.device, "multiprocessors", 1)
    rng = np.random.default_rng(3)
    for shape, dim in [((100, 3), 1), ((6, 1100), 1), ((3, 2, 1000), 1)]:
        _check_op_pair(simt, ref, rng.standard_normal(shape), dim, np.float64)


@pytest.mark.parametrize("shape, dim", [((9, 1500), 1), ((40, 37), 1)])
def test_results_are_bitwise_identical_across_schedules(simt, shape, dim):
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    runs = []
    for kind, seed in [("inorder", 0), ("reverse", 0), ("random", 1), ("random", 7)]:
        with pyconv.simt.schedule(kind, seed=seed):
            y = simt.softmax_forward(x, dim)
            runs.append((y, simt.softmax_backward(x, y, dim)))
    for y, g in runs[1:]:
        np.testing.assert_array_equal(y, runs[0][0])
        np.testing.assert_array_equal(g, runs[0][1])


def test_glue_rejects_what_would_corrupt_memory(simt):
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match="float32 or float64"):
        simt.softmax_forward(x.astype(np.int64), 1)
    with pytest.raises(ValueError, match=r"dim must be in \[0, 2\).*got 2"):
        simt.log_softmax_forward(x, 2)
    with pytest.raises(ValueError, match=r"grad_y has shape \(2, 2\) but y has shape \(2, 3\)"):
        simt.softmax_backward(np.zeros((2, 2)), x, 1)
    with pytest.raises(TypeError, match="grad_y has dtype float32 but y has dtype float64"):
        simt.log_softmax_backward(x.astype(np.float32), x, 1)


def test_non_contiguous_inputs_are_copied(simt, ref):
    x = np.random.default_rng(5).standard_normal((6, 8))[:, ::2]
    np.testing.assert_allclose(simt.softmax_forward(x, 1), ref.softmax_forward(x, 1), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_autograd_ops_on_the_simt_backend(simt, name, dtype, schedule):
    rng = np.random.default_rng(6)
    data = rng.standard_normal((3, 4, 5)).astype(dtype)
    weights = pyconv.tensor(rng.standard_normal((3, 4, 5)).astype(dtype))

    def forward_backward(backend):
        x = pyconv.tensor(data, requires_grad=True)
        with backends.use(backend):
            y = getattr(F, name)(x, 1)
            (y * weights).sum().backward()
        return y.detach().numpy(), x.grad.numpy()

    expected = forward_backward("numpy")
    results = []
    launched = _launched(simt, lambda: results.extend(forward_backward("simt")))
    for ours, theirs in zip(results, expected):
        _assert_matches(ours, theirs, dtype)
    suffix = "f64" if dtype == np.float64 else "f32"
    assert {f"{name}_forward_column_{suffix}", f"{name}_backward_column_{suffix}"} <= launched
