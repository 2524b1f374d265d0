"""kernels/pool.cu on the SIMT emulator against the NumPy reference: max, average and adaptive
average pooling, forward and backward, float64 and float32, on random geometries and on the edge
cases of tests/test_pool.py (ceil_mode windows, dilation, ties, NaN, -inf, windows without input
cells, empty batches), plus each op's autograd on the simt backend.

Max pooling selects values, so its outputs and indices must equal the reference exactly; sums
are compared with per-dtype tolerances.
"""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.shapes import pair
from simt_support import require_simt, schedule  # noqa: F401 - schedule is a fixture
from test_pool import POOL_EDGES, _fits, _random_pool_case

pytestmark = require_simt()

DTYPES = [np.float64, np.float32]


def simt_backend():
    return backends.get("simt")


def numpy_backend():
    return backends.get("numpy")


def _tolerances(dtype):
    return dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)


def _assert_close(ours, want, dtype, what):
    assert ours.shape == want.shape and ours.dtype == want.dtype, (what, ours.shape, want.shape)
    np.testing.assert_allclose(ours, want, err_msg=what, **_tolerances(dtype))


def _assert_same(ours, want, what):
    assert ours.shape == want.shape and ours.dtype == want.dtype, (what, ours.shape, want.shape)
    np.testing.assert_array_equal(ours, want, err_msg=what)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(want), err_msg=f"{what} (sign)")


def _grad_like(y, seed=0):
    return np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)


def _geometry(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Functional-style pooling arguments as the contract's (kernel, stride, padding, dilation,
    ceil_mode) pairs; stride defaults to the kernel, as in PyTorch."""
    kernel = pair(kernel_size, "kernel_size", "test")
    stride = kernel if stride is None else pair(stride, "stride", "test")
    return (kernel, stride, pair(padding, "padding", "test"), pair(dilation, "dilation", "test"),
            ceil_mode)


def _check_max(x, kernel, stride, padding, dilation, ceil_mode):
    simt, ref = simt_backend(), numpy_backend()
    what = f"max_pool2d{x.shape} k={kernel} s={stride} p={padding} d={dilation} ceil={ceil_mode}"
    y, idx = simt.max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
    want_y, want_idx = ref.max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
    _assert_same(y, want_y, what)
    _assert_same(idx, want_idx, f"{what} indices")
    g = _grad_like(want_y)
    geometry = (kernel, stride, padding, dilation)
    _assert_same(simt.max_pool2d_backward(g, want_idx, x.shape, *geometry),
                 ref.max_pool2d_backward(g, want_idx, x.shape, *geometry), f"{what} backward")


def _check_avg(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    simt, ref = simt_backend(), numpy_backend()
    args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    what = f"avg_pool2d{x.shape} {args}"
    want = ref.avg_pool2d_forward(x, *args)
    _assert_close(simt.avg_pool2d_forward(x, *args), want, x.dtype, what)
    g = _grad_like(want)
    _assert_close(simt.avg_pool2d_backward(g, x.shape, *args),
                  ref.avg_pool2d_backward(g, x.shape, *args), x.dtype, f"{what} backward")


def _check_adaptive(x, output_size):
    simt, ref = simt_backend(), numpy_backend()
    what = f"adaptive_avg_pool2d{x.shape} -> {output_size}"
    want = ref.adaptive_avg_pool2d_forward(x, output_size)
    _assert_close(simt.adaptive_avg_pool2d_forward(x, output_size), want, x.dtype, what)
    g = _grad_like(want)
    _assert_close(simt.adaptive_avg_pool2d_backward(g, x.shape),
                  ref.adaptive_avg_pool2d_backward(g, x.shape), x.dtype, f"{what} backward")


# ---------------------------------------------------------------------------------------------
# random configurations (the generator of tests/test_pool.py)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_max_pool2d_random_configs(schedule, seed, dtype):
    shape, kwargs = _random_pool_case(seed, with_dilation=True)
    x = np.random.default_rng(1000 + seed).standard_normal(shape).astype(dtype)
    _check_max(x, *_geometry(**kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_avg_pool2d_random_configs(schedule, seed, dtype):
    shape, kwargs = _random_pool_case(seed, with_dilation=False)
    rng = np.random.default_rng(2000 + seed)
    kernel, stride, padding, _, ceil_mode = _geometry(**kwargs)
    count_include_pad = bool(rng.random() < 0.5)
    divisor_override = int(rng.choice([-3, 1, 2, 7])) if rng.random() < 0.3 else None
    _check_avg(rng.standard_normal(shape).astype(dtype), kernel, stride, padding, ceil_mode,
               count_include_pad, divisor_override)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_adaptive_avg_pool2d_random_sizes(schedule, seed, dtype):
    rng = np.random.default_rng(3000 + seed)
    shape = (2, 3) + tuple(int(v) for v in rng.integers(1, 13, 2))
    output_size = tuple(int(v) for v in rng.integers(1, 16, 2))
    _check_adaptive(rng.standard_normal(shape).astype(dtype), output_size)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grid_stride_loops_cover_more_elements_than_threads(schedule, dtype):
    """More elements than the capped grid has threads: every thread loops several times."""
    device = simt_backend().device
    threads = device.multiprocessors * 8 * 256
    x = np.random.default_rng(15).standard_normal((2, 3, 40, 3 * threads // 40 + 1)).astype(dtype)
    assert x.size > 3 * threads
    _check_max(x, *_geometry(3, stride=1, padding=1))
    _check_avg(x, (3, 2), (1, 1), (1, 1), True, False, None)
    _check_adaptive(x, (37, 41))


# ---------------------------------------------------------------------------------------------
# the named edge cases of tests/test_pool.py
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(POOL_EDGES))
def test_pool_edges(schedule, case, dtype):
    shape, kwargs = POOL_EDGES[case]
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    _check_max(x, *_geometry(**kwargs))
    dilated = dict(kwargs, dilation=(2, 1))
    if _fits(shape[2:], **dilated):
        _check_max(x, *_geometry(**dilated))
    kernel, stride, padding, _, ceil_mode = _geometry(**kwargs)
    for count_include_pad in (True, False):
        _check_avg(x, kernel, stride, padding, ceil_mode, count_include_pad, None)
    _check_avg(x, kernel, stride, padding, ceil_mode, True, 3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", ["integers", "all_equal"])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                    dict(kernel_size=(3, 2), stride=2, padding=1, dilation=(1, 2),
                                         ceil_mode=True)])
def test_max_pool2d_ties_go_to_the_first_maximum(schedule, kwargs, values, dtype):
    """Overlapping windows sharing a maximum also exercise the backward's ordered sums."""
    shape = (2, 3, 7, 6)
    if values == "integers":
        x = np.random.default_rng(5).integers(0, 3, shape).astype(dtype)
    else:
        x = np.full(shape, 1.5, dtype=dtype)
    _check_max(x, *_geometry(**kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_nan_is_the_maximum(schedule, dtype):
    x = np.random.default_rng(6).standard_normal((2, 2, 6, 6)).astype(dtype)
    x[0, 0, 0, 0] = np.nan                 # one NaN in a window
    x[0, 1, 2, 2:4] = np.nan               # two NaNs in one window: the last one wins
    x[1, 0, 4, 5] = x[1, 0, 5, 4] = np.nan
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)):
        _check_max(x, *_geometry(**kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_all_minus_inf_and_signed_zero(schedule, dtype):
    """A window of -inf values reports its first cell inside the input; between -0.0 and +0.0
    the first one wins, sign included (_check_max compares sign bits)."""
    x = np.full((1, 2, 4, 5), -np.inf, dtype=dtype)
    x[0, 1] = np.where(np.random.default_rng(7).random((4, 5)) < 0.5, -0.0, 0.0)
    for kwargs in (dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2, ceil_mode=True)):
        _check_max(x, *_geometry(**kwargs))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", [(4, 4), (10, 10), (20, 4)])
def test_max_pool2d_windows_without_input_cells(schedule, hw, dtype):
    """Dilation steps some windows over the whole input along an axis: -inf with the first tap
    position as index, which may lie outside the plane (no gradient) or, when only the columns
    miss, wrap to a later row (the reference, like PyTorch, sends that row its gradient)."""
    x = np.arange(2 * hw[0] * hw[1], dtype=dtype).reshape((1, 2) + hw)
    _check_max(x, *_geometry(2, padding=1, dilation=5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_launches_nothing(schedule, dtype):
    simt, ref = simt_backend(), numpy_backend()
    x = np.zeros((0, 3, 7, 6), dtype=dtype)
    before = simt.device.launches.copy()
    _check_max(x, *_geometry(3, stride=2, padding=1))
    _check_avg(x, (2, 3), (2, 3), (1, 0), True, False, None)
    _check_adaptive(x, (4, 6))
    assert simt.device.launches == before
    assert simt.adaptive_avg_pool2d_forward(x, (4, 6)).shape == \
        ref.adaptive_avg_pool2d_forward(x, (4, 6)).shape


# ---------------------------------------------------------------------------------------------
# adaptive average pooling edges
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("in_hw,output_size", [
    ((8, 8), (4, 4)), ((8, 6), (2, 3)),        # sizes divide the input
    ((7, 9), (3, 4)), ((13, 5), (4, 3)),       # they do not: overlapping windows
    ((3, 4), (5, 7)), ((2, 2), (6, 3)),        # output larger than input
    ((5, 6), (1, 1)), ((5, 6), (5, 6)),        # global pooling, identity
    ((5, 6), (5, 4)), ((5, 6), (2, 6)),        # one axis kept
])
def test_adaptive_avg_pool2d_edges(schedule, in_hw, output_size, dtype):
    x = np.random.default_rng(9).standard_normal((2, 3) + in_hw).astype(dtype)
    _check_adaptive(x, output_size)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_avg_pool2d_empty_output_has_zero_gradient(schedule, dtype):
    x = np.random.default_rng(9).standard_normal((2, 3, 5, 6)).astype(dtype)
    _check_adaptive(x, (0, 3))
    grad_x = simt_backend().adaptive_avg_pool2d_backward(np.zeros((2, 3, 0, 3), dtype), x.shape)
    assert grad_x.shape == x.shape and not grad_x.any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_avg_pool2d_keeps_inf_and_nan_in_their_windows(schedule, dtype):
    x = np.random.default_rng(10).standard_normal((1, 2, 7, 9)).astype(dtype)
    x[0, 0, 3, 4], x[0, 1, 0, 0] = np.inf, np.nan
    ours = simt_backend().adaptive_avg_pool2d_forward(x, (3, 4))
    want = numpy_backend().adaptive_avg_pool2d_forward(x, (3, 4))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(want))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(ours[finite], want[finite], **_tolerances(dtype))


# ---------------------------------------------------------------------------------------------
# the glue: layouts and what protects memory
# ---------------------------------------------------------------------------------------------


def test_non_contiguous_arrays_are_accepted(schedule):
    base = np.random.default_rng(11).standard_normal((2, 3, 6, 5))
    x = np.asfortranarray(base)
    _check_max(x, *_geometry(3, stride=2, padding=1, ceil_mode=True))
    _check_avg(x, (3, 3), (2, 2), (1, 1), True, False, None)
    _check_adaptive(x, (4, 3))
    simt, ref = simt_backend(), numpy_backend()
    y, idx = ref.max_pool2d_forward(base, (2, 2), (2, 2), (0, 0), (1, 1), False)
    g = np.asfortranarray(_grad_like(y))
    geometry = ((2, 2), (2, 2), (0, 0), (1, 1))
    _assert_same(simt.max_pool2d_backward(g, np.asfortranarray(idx), base.shape, *geometry),
                 ref.max_pool2d_backward(g, idx, base.shape, *geometry),
                 "max_pool2d_backward strided")


def test_glue_rejects_what_would_corrupt_memory():
    simt = simt_backend()
    with pytest.raises(TypeError, match="float32 or float64"):
        simt.max_pool2d_forward(np.zeros((1, 1, 4, 4), np.int64), (2, 2), (2, 2), (0, 0), (1, 1),
                                False)
    g = np.zeros((1, 1, 2, 2))
    with pytest.raises(ValueError, match="indices must be int64"):
        simt.max_pool2d_backward(g, np.zeros((1, 1, 2, 2), np.int32), (1, 1, 4, 4), (2, 2),
                                 (2, 2), (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"grad_y must have shape \(N, C, P, Q\)"):
        simt.avg_pool2d_backward(g, (1, 2, 4, 4), (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match=r"\(H \+ 1\) \* \(P \+ 1\)=.* does not fit"):
        simt.adaptive_avg_pool2d_forward(np.zeros((1, 1, 50000, 1), np.float32), (50000, 1))


# ---------------------------------------------------------------------------------------------
# autograd on the simt backend
# ---------------------------------------------------------------------------------------------

OPS = {
    "max_pool2d": (lambda t: F.max_pool2d(t, (3, 2), stride=2, padding=1, dilation=(1, 2),
                                          ceil_mode=True), "max_pool2d"),
    "avg_pool2d": (lambda t: F.avg_pool2d(t, 3, stride=2, padding=1, ceil_mode=True,
                                          count_include_pad=False), "avg_pool2d"),
    "adaptive_avg_pool2d": (lambda t: F.adaptive_avg_pool2d(t, (4, 3)), "adaptive_avg_pool2d"),
    "unbatched_max_pool2d": (lambda t: F.max_pool2d(t[0], 2), "max_pool2d"),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_autograd_on_simt_matches_numpy(schedule, name, dtype):
    op, kernel = OPS[name]
    x = np.random.default_rng(12).standard_normal((2, 3, 7, 6)).astype(dtype)
    results = {}
    for backend in ("numpy", "simt"):
        with backends.use(backend):
            t = pyconv.tensor(x, requires_grad=True)
            y = op(t)
            y.backward(pyconv.tensor(_grad_like(y.detach().numpy(), seed=13)))
            results[backend] = (y.detach().numpy(), t.grad.numpy())
    for got, want in zip(results["simt"], results["numpy"]):
        _assert_close(got, want, dtype, name)
    suffix = "f64" if dtype == np.float64 else "f32"
    launched = simt_backend().device.launches
    assert launched[f"{kernel}_forward_{suffix}"]
    assert any(entry.startswith(f"{kernel}_backward") and entry.endswith(suffix)
               for entry in launched), f"no {kernel} backward kernel ran"


def test_max_pool2d_backward_gathers_unless_a_window_misses_the_input(schedule):
    """The gather kernel serves geometries whose windows all hold an input cell; the plane
    scatter serves the rest (dilation stepping over a 1-wide input), with the same results."""
    simt, ref = simt_backend(), numpy_backend()
    cases = {
        "max_pool2d_backward_gather_f64": ((2, 3, 7, 6), ((3, 3), (2, 2), (1, 1), (1, 1))),
        "max_pool2d_backward_scatter_f64": ((1, 2, 1, 5), ((2, 2), (1, 1), (1, 1), (2, 1))),
    }
    for entry, (shape, geometry) in cases.items():
        x = np.random.default_rng(3).standard_normal(shape)
        y, idx = ref.max_pool2d_forward(x, *geometry, False)
        g = _grad_like(y)
        before = simt.device.launches[entry]
        _assert_same(simt.max_pool2d_backward(g, idx, x.shape, *geometry),
                     ref.max_pool2d_backward(g, idx, x.shape, *geometry), entry)
        assert simt.device.launches[entry] == before + 1, f"{entry} did not run"
