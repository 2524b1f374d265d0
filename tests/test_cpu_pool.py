"""The cpu backend's C++ pooling kernels (csrc/cpu/pool.cpp) against the NumPy reference:
max_pool2d, avg_pool2d and adaptive_avg_pool2d forward and backward on the random and named edge
cases of test_pool.py (ceil_mode windows past the padding, dilation, ties, NaN, -inf, windows
without input cells, empty batches), float64 (1e-12) and float32 (1e-5), 1 and 2 threads; the
AVX2 2x2 path on shapes with vector tails; non-contiguous and misaligned inputs; errors at the
native boundary; the op layer on the cpu backend equal to the numpy backend."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends import numpy_ref
from test_pool import POOL_EDGES, _fits, _random_pool_case

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None or not hasattr(_C, "max_pool2d_forward"),
                                reason="pyconv._C with the pool kernels is not built")

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = pyconv.get_num_threads()
    pyconv.set_num_threads(request.param)
    yield request.param
    pyconv.set_num_threads(before)


@pytest.fixture(scope="module")
def cpu():
    from pyconv.backends import cpu as module
    from pyconv.backends.cpu_kernels import pool

    assert all(not getattr(module, k).runs_on_reference for k in pool.__all__)
    return module


def assert_close(got, want, dtype, what=""):
    """Same shape and dtype; NaN and inf where the reference has them; finite values within the
    dtype's tolerance relative to the output's scale."""
    want, got = np.asarray(want), np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype} != {dtype}"
    w, g = want.astype(np.float64), got.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{what}: NaN positions")
    inf = np.isinf(w)
    np.testing.assert_array_equal(g[inf], w[inf], err_msg=f"{what}: infinities")
    finite = np.isfinite(w)
    scale = max(1.0, float(np.abs(w[finite]).max(initial=0.0)))
    err = float(np.abs(g[finite] - w[finite]).max(initial=0.0)) / scale
    assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g} > {TOLERANCE[dtype]}"


def _geometry(shape, kwargs):
    """Contract arguments (pairs, stride defaulting to the kernel) of a test_pool kwargs dict."""
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    k = pair(kwargs["kernel_size"])
    s = k if kwargs.get("stride") is None else pair(kwargs["stride"])
    return dict(kernel_size=k, stride=s, padding=pair(kwargs.get("padding", 0)),
                dilation=pair(kwargs.get("dilation", 1)), ceil_mode=bool(kwargs.get("ceil_mode", False)))


def check_max(cpu, x, geometry, dtype, what=""):
    x = x.astype(dtype)
    y, idx = cpu.max_pool2d_forward(x, **geometry)
    ry, ridx = numpy_ref.max_pool2d_forward(x, **geometry)
    # no arithmetic: values (with the sign of zeros) and indices equal the reference exactly
    np.testing.assert_array_equal(y, ry, err_msg=what)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ry), err_msg=what)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, ridx, err_msg=what)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    back = {k: v for k, v in geometry.items() if k != "ceil_mode"}
    gx = cpu.max_pool2d_backward(g, idx, x.shape, **back)
    assert_close(gx, numpy_ref.max_pool2d_backward(g.astype(np.float64), ridx, x.shape, **back),
                 dtype, what + " backward")


def check_avg(cpu, x, geometry, dtype, count_include_pad, divisor_override, what=""):
    geometry = {k: v for k, v in geometry.items() if k != "dilation"}
    args = dict(geometry, count_include_pad=count_include_pad, divisor_override=divisor_override)
    x = x.astype(dtype)
    y = cpu.avg_pool2d_forward(x, **args)
    assert_close(y, numpy_ref.avg_pool2d_forward(x.astype(np.float64), **args), dtype, what)
    g = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    assert_close(cpu.avg_pool2d_backward(g, x.shape, **args),
                 numpy_ref.avg_pool2d_backward(g.astype(np.float64), x.shape, **args), dtype,
                 what + " backward")


def check_adaptive(cpu, x, output_size, dtype, what=""):
    x = x.astype(dtype)
    y = cpu.adaptive_avg_pool2d_forward(x, output_size)
    assert_close(y, numpy_ref.adaptive_avg_pool2d_forward(x.astype(np.float64), output_size), dtype, what)
    g = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    assert_close(cpu.adaptive_avg_pool2d_backward(g, x.shape),
                 numpy_ref.adaptive_avg_pool2d_backward(g.astype(np.float64), x.shape), dtype,
                 what + " backward")


# ----- the reference's random and named cases ---------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(40))
def test_max_pool2d_random_configs(cpu, seed, dtype, threads):
    shape, kwargs = _random_pool_case(seed, with_dilation=True)
    x = np.random.default_rng(1000 + seed).standard_normal(shape)
    check_max(cpu, x, _geometry(shape, kwargs), dtype, f"{shape} {kwargs}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(40))
def test_avg_pool2d_random_configs(cpu, seed, dtype, threads):
    shape, kwargs = _random_pool_case(seed, with_dilation=False)
    rng = np.random.default_rng(2000 + seed)
    count_include_pad = bool(rng.random() < 0.5)
    divisor = int(rng.choice([-3, 1, 2, 7])) if rng.random() < 0.3 else None
    check_avg(cpu, rng.standard_normal(shape), _geometry(shape, kwargs), dtype, count_include_pad,
              divisor, f"{shape} {kwargs}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(20))
def test_adaptive_avg_pool2d_random_sizes(cpu, seed, dtype, threads):
    rng = np.random.default_rng(3000 + seed)
    shape = (2, 3) + tuple(int(v) for v in rng.integers(1, 13, 2))
    output_size = tuple(int(v) for v in rng.integers(1, 16, 2))
    check_adaptive(cpu, rng.standard_normal(shape), output_size, dtype, f"{shape} -> {output_size}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(POOL_EDGES))
def test_pool_edges(cpu, case, dtype, threads):
    shape, kwargs = POOL_EDGES[case]
    x = np.random.default_rng(4).standard_normal(shape)
    check_max(cpu, x, _geometry(shape, kwargs), dtype, case)
    dilated = dict(kwargs, dilation=(2, 1))
    if _fits(shape[2:], **dilated):
        check_max(cpu, x, _geometry(shape, dilated), dtype, case + " dilated")
    for count_include_pad in (True, False):
        check_avg(cpu, x, _geometry(shape, kwargs), dtype, count_include_pad, None, case)
    check_avg(cpu, x, _geometry(shape, kwargs), dtype, True, 3, case + " divisor")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", ["integers", "all_equal", "nan", "minus_inf", "signed_zero"])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                    dict(kernel_size=(3, 2), stride=2, padding=1, dilation=(1, 2),
                                         ceil_mode=True)])
def test_max_pool2d_ties_nan_inf_zeros(cpu, kwargs, values, dtype):
    """Ties to the first maximum, NaN (last NaN of a window) wins, -inf windows report their
    first cell, -0.0 vs +0.0 keeps the first; also on the AVX2 2x2 path (width 37: a vector
    of 8 outputs and a tail of 2)."""
    rng = np.random.default_rng(5)
    for shape in [(2, 3, 7, 6), (1, 2, 6, 37)]:
        if values == "integers":
            x = rng.integers(0, 3, shape).astype(np.float64)
        elif values == "all_equal":
            x = np.full(shape, 1.5)
        elif values == "nan":
            x = rng.standard_normal(shape)
            x[rng.random(shape) < 0.1] = np.nan
        elif values == "minus_inf":
            x = np.where(rng.random(shape) < 0.7, -np.inf, rng.standard_normal(shape))
        else:
            x = np.where(rng.random(shape) < 0.5, -0.0, 0.0)
        check_max(cpu, x, _geometry(shape, kwargs), dtype, f"{values} {kwargs}")


def test_max_pool2d_window_without_input_cells(cpu):
    x = np.arange(32.0).reshape(1, 2, 4, 4)
    check_max(cpu, x, _geometry(x.shape, dict(kernel_size=2, padding=1, dilation=5)), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", [(26, 26), (27, 33), (2, 2), (9, 17), (4, 128)])
def test_max_pool2d_2x2_vector_path(cpu, hw, dtype, threads):
    """2x2/stride 2 on widths with full vectors, tails and odd sizes (the last row/column is
    then unused); float32 runs the AVX2 path, float64 the scalar one."""
    x = np.random.default_rng(6).standard_normal((3, 5) + hw)
    for ceil_mode in (False, True):
        check_max(cpu, x, _geometry(x.shape, dict(kernel_size=2, ceil_mode=ceil_mode)), dtype, str(hw))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_and_channels(cpu, dtype):
    for shape in [(0, 3, 7, 6), (2, 0, 5, 5)]:
        x = np.zeros(shape)
        check_max(cpu, x, _geometry(shape, dict(kernel_size=3, stride=2, padding=1)), dtype)
        check_avg(cpu, x, _geometry(shape, dict(kernel_size=(2, 3), padding=(1, 0), ceil_mode=True)),
                  dtype, False, None)
        check_adaptive(cpu, x, (4, 3), dtype)


@pytest.mark.parametrize("in_hw,output_size", [((8, 8), (4, 4)), ((7, 9), (3, 4)), ((3, 4), (5, 7)),
                                               ((5, 6), (1, 1)), ((5, 6), (0, 3))])
def test_adaptive_edges(cpu, in_hw, output_size):
    x = np.random.default_rng(9).standard_normal((2, 3) + in_hw)
    x[0, 0, 0, 0], x[1, 2, -1, -1] = np.inf, np.nan  # stay in their own windows
    for dtype in DTYPES:
        check_adaptive(cpu, x, output_size, dtype, str(in_hw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,output_size", [((2, 3, 56, 56), (1, 1)), ((2, 3, 9, 37), (1, 1)),
                                               ((1, 2, 5, 70), (2, 1)), ((1, 2, 41, 33), (3, 2)),
                                               ((2, 1, 3, 21), (1, 1))])
def test_adaptive_wide_windows(cpu, shape, output_size, dtype, threads):
    """Windows of 16+ columns keep 16 partial sums, windows of whole rows (global pooling) as one
    run, with a scalar tail: the reference still agrees."""
    x = np.random.default_rng(11).standard_normal(shape) + 3.0
    check_adaptive(cpu, x, output_size, dtype, f"{shape} -> {output_size}")


def test_large_planes_many_threads(cpu, threads):
    """Shapes big enough to be split over threads, equal to the reference at any count."""
    x = np.random.default_rng(10).standard_normal((8, 16, 30, 31)).astype(np.float32)
    check_max(cpu, x, _geometry(x.shape, dict(kernel_size=2)), np.float32)
    check_max(cpu, x, _geometry(x.shape, dict(kernel_size=3, stride=2, padding=1)), np.float32)
    check_avg(cpu, x, _geometry(x.shape, dict(kernel_size=3, stride=2, padding=1)), np.float32, True, None)
    check_adaptive(cpu, x, (7, 7), np.float32)


# ----- layout, errors, op layer -------------------------------------------------------------------


def test_non_contiguous_and_misaligned_inputs(cpu):
    rng = np.random.default_rng(11)
    base = rng.standard_normal((2, 3, 12, 20)).astype(np.float32)
    strided = base[:, :, :, ::2]
    buf = np.empty(base.nbytes + 8, np.uint8)
    start = 1 if buf.ctypes.data % 4 == 0 else 0  # an address that is not a multiple of 4
    misaligned = buf[start:start + base.nbytes].view(np.float32).reshape(base.shape)
    misaligned[...] = base
    assert not misaligned.flags.aligned
    geometry = _geometry(base.shape, dict(kernel_size=2))
    for x in (strided, misaligned, base.transpose(0, 1, 3, 2)):
        check_max(cpu, x, geometry, np.float32)
        check_avg(cpu, x, geometry, np.float32, True, None)
        check_adaptive(cpu, x, (3, 5), np.float32)


def test_errors_at_the_native_boundary():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(TypeError, match="max_pool2d_forward: x must be float32 or float64"):
        _C.max_pool2d_forward(x.astype(np.int32), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        _C.max_pool2d_forward(x[0], (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.avg_pool2d_forward(x[..., ::2], (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match="stride and dilation must be >= 1"):
        _C.max_pool2d_forward(x, (2, 2), (0, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="does not fit"):
        _C.max_pool2d_forward(x, (5, 5), (1, 1), (0, 0), (1, 1), False)
    y, idx = _C.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="indices must have shape"):
        _C.max_pool2d_backward(y, idx[:, :, :1].copy(), [1, 1, 4, 4], (2, 2), (2, 2), (0, 0), (1, 1))
    with pytest.raises(TypeError, match="indices must be int64"):
        _C.max_pool2d_backward(y, idx.astype(np.int32), [1, 1, 4, 4], (2, 2), (2, 2), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="grad_y must have shape"):
        _C.avg_pool2d_backward(y, [1, 1, 8, 8], (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match="input_shape must be non-negative"):
        _C.adaptive_avg_pool2d_backward(y, [1, 1, -4, 4])
    # indices outside the plane are skipped, never written
    bad = np.full_like(idx, 10**12)
    assert not _C.max_pool2d_backward(y + 1, bad, [1, 1, 4, 4], (2, 2), (2, 2), (0, 0), (1, 1)).any()


@pytest.mark.parametrize("op", ["max", "avg", "adaptive"])
def test_op_layer_on_cpu_matches_numpy(op):
    rng = np.random.default_rng(12)
    values = rng.standard_normal((2, 3, 9, 8))
    fn = {"max": lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True),
          "avg": lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
          "adaptive": lambda t: F.adaptive_avg_pool2d(t, (4, 3))}[op]
    results = {}
    for name in ("numpy", "cpu"):
        with backends.use(name):
            x = pyconv.tensor(values, requires_grad=True)
            y = fn(x)
            (y * pyconv.tensor(np.arange(int(np.prod(y.shape)), dtype=np.float64).reshape(y.shape))).sum().backward()
            results[name] = (y.detach().numpy(), x.grad.numpy())
    for a, b in zip(results["cpu"], results["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
