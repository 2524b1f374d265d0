"""The cpu backend's C++ activations (csrc/cpu/activation.cpp) and dropout (csrc/cpu/dropout.cpp)
against the NumPy reference: every op forward and backward in float64 (tight) and float32 (against
float64, plus ulp bounds for the AVX2 exp/tanh/erfc), special values (+-inf, NaN, huge), empty and
0-d arrays, at 1 and 2 threads with sizes on both sides of the threading threshold and ragged
vector tails; dropout masks bit-identical to the reference for several seeds, sizes and p;
non-contiguous and misaligned inputs through the backend module; errors at the native boundary;
the ops' autograd on the cpu backend equal to the numpy backend."""

import numpy as np
import pytest
import scipy.special as scipy_special

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends import numpy_ref
from pyconv.backends.numpy_ref.dropout import keep_mask

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None or not hasattr(_C, "gelu_forward"),
                                reason="pyconv._C with the activation kernels is not built")

# name -> (kernel, forward args after x, backward saves "x" or "y", functional op for autograd)
OPS = {
    "relu": ("relu", (), "y", F.relu),
    "leaky_relu": ("leaky_relu", (0.2,), "x", lambda t: F.leaky_relu(t, 0.2)),
    "sigmoid": ("sigmoid", (), "y", F.sigmoid),
    "tanh": ("tanh", (), "y", F.tanh),
    "gelu": ("gelu", ("none",), "x", F.gelu),
    "gelu_tanh": ("gelu", ("tanh",), "x", lambda t: F.gelu(t, approximate="tanh")),
}
DTYPES = [np.float64, np.float32]
# the reference tests' shapes; ragged vector tails (not a multiple of 8); sizes past the
# threading thresholds (2^13 for transcendental ops, 2^16 for the cheap ones)
SHAPES = [(7,), (2, 3, 5), (2, 1, 4, 4), (1000,), (3, 339), (9001,), (3, 23457)]
# float64 atol: the reference's own 1 + tanh cancellation in gelu_tanh's gradient (values are O(1))
TOLERANCE = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=1e-5, atol=1e-6)}


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = pyconv.get_num_threads()
    pyconv.set_num_threads(request.param)
    yield request.param
    pyconv.set_num_threads(before)


@pytest.fixture(scope="module")
def cpu():
    from pyconv.backends import cpu as module

    module.check_available()
    return module


def misaligned(a):
    """A copy of a whose data pointer is not aligned to its element size."""
    raw = np.empty(a.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % a.dtype.itemsize != 0
    return out


def _away_from_kinks(shape, seed, dtype):
    x = np.asarray(np.random.default_rng(seed).standard_normal(shape) * 3)
    x[np.abs(x) < 1e-3] += 0.01
    return x.astype(dtype)


def _run(kernels, name, direction, grad_y, x):
    """``name``'s forward (on x) or backward (on grad_y and the saved array) on ``kernels``; the
    saved y comes from the float64 reference, rounded to x's dtype."""
    kernel, extra, saves, _ = OPS[name]
    if direction == "forward":
        return getattr(kernels, f"{kernel}_forward")(x, *extra)
    if saves == "x":
        saved = x
    else:
        saved = getattr(numpy_ref, f"{kernel}_forward")(x.astype(np.float64), *extra).astype(x.dtype)
    return getattr(kernels, f"{kernel}_backward")(grad_y, saved, *extra)


def _reference64(name, direction, grad_y, x):
    """The reference in float64 on the same (possibly float32) values."""
    kernel, extra, saves, _ = OPS[name]
    x64 = x.astype(np.float64)
    if direction == "forward":
        return getattr(numpy_ref, f"{kernel}_forward")(x64, *extra)
    if saves == "x":
        saved = x64
    else:  # the saved y as the kernel receives it: rounded to the input dtype
        saved = getattr(numpy_ref, f"{kernel}_forward")(x64, *extra).astype(
            x.dtype).astype(np.float64)
    return getattr(numpy_ref, f"{kernel}_backward")(grad_y.astype(np.float64), saved, *extra)


def _check(cpu, name, direction, x, grad_y):
    got = _run(cpu, name, direction, grad_y, x)
    want = _reference64(name, direction, grad_y, x)
    assert got.dtype == x.dtype and got.shape == x.shape, f"{name} {direction}"
    np.testing.assert_allclose(got, want, **TOLERANCE[x.dtype.type], err_msg=f"{name} {direction}")
    return got


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_matches_reference(cpu, threads, direction, name, dtype, shape):
    x = _away_from_kinks(shape, sum(shape), dtype)
    grad_y = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    _check(cpu, name, direction, x, grad_y)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's inf * 0
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_special_values(cpu, name, dtype):
    """Signed zeros, infinities, NaN and huge inputs give what the reference gives (in every lane
    position: the values are repeated at offsets 0..7 of the vector)."""
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 100.0, -100.0, 30.0, -30.0, 88.0,
              -88.0, 1e-30, -1e-30, 3e38 if dtype == np.float32 else 1e300]
    x = np.concatenate([np.roll(values, k) for k in range(8)]).astype(dtype)
    grad_y = np.linspace(-2.0, 3.0, x.size).astype(dtype)
    for direction in ("forward", "backward"):
        _check(cpu, name, direction, x, grad_y)


def _ulp_error(got, want64):
    """|got - want| in units of the float32 spacing at want, for normal results (NaN/inf must
    agree exactly; results below FLT_MIN * 8 are checked to 1e-40 absolute instead)."""
    want32 = want64.astype(np.float32)
    finite = np.isfinite(want32)
    np.testing.assert_array_equal(got[~finite], want32[~finite])
    normal = finite & (np.abs(want64) >= 8 * np.finfo(np.float32).tiny)
    tiny = finite & ~normal
    assert np.abs(got[tiny].astype(np.float64) - want64[tiny]).max(initial=0.0) <= 1e-40
    spacing = np.spacing(np.abs(want32[normal])).astype(np.float64)
    err = np.full(got.shape, 0.0)
    err[normal] = np.abs(got[normal].astype(np.float64) - want64[normal]) / spacing
    return err


def _accurate64(name, x):
    """The forward in float64 without the reference's cancellation for negative x (gelu's
    1 + erf and 1 + tanh), so float32 results can be judged to the ulp."""
    x = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "gelu":
            return 0.5 * x * scipy_special.erfc(-x / np.sqrt(2.0))
        if name == "gelu_tanh":
            u = np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)
            return x / (1.0 + np.exp(-2.0 * u))  # 0.5 x (1 + tanh(u))
    return _reference64(name, "forward", None, x)


# (name, x range, ulp bound) on a dense grid; measured maxima: see docs/cpu/elementwise.md
ULP_CASES = [("sigmoid", (-100.0, 40.0), 4), ("tanh", (-12.0, 12.0), 4),
             ("gelu", (-14.0, 12.0), 8), ("gelu_tanh", (-20.0, 12.0), 6)]


@pytest.mark.parametrize("name,bounds,ulps", ULP_CASES, ids=[c[0] for c in ULP_CASES])
def test_float32_forward_is_accurate_to_a_few_ulp(cpu, name, bounds, ulps):
    """The AVX2 exp / tanh / erfc against float64 over wide ranges, in float32 ulps."""
    x = np.concatenate([np.linspace(*bounds, 400_001), np.geomspace(1e-8, 1.0, 2001),
                        -np.geomspace(1e-8, 1.0, 2001)]).astype(np.float32)
    got = _run(cpu, name, "forward", None, x)
    err = _ulp_error(got, _accurate64(name, x))
    assert err.max() <= ulps, f"{name}: {err.max():.2f} ulp at x={x[err.argmax()]}"


def test_sigmoid_does_not_overflow_in_float32(cpu):
    x = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=np.float32)
    y = cpu.sigmoid_forward(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_zeroes_infinite_gradients_where_inactive(cpu, dtype):
    y = np.maximum(np.array([-1.0, 0.0, 2.0, -3.0] * 3), 0).astype(dtype)
    g = np.array([np.inf, -np.inf, np.inf, np.nan] * 3, dtype=dtype)
    np.testing.assert_array_equal(cpu.relu_backward(g, y), [0.0, 0.0, np.inf, 0.0] * 3)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape", [(0,), (), (3, 0, 2)], ids=str)
def test_empty_and_zero_dim(cpu, name, shape):
    x = _away_from_kinks(shape, 0, np.float64)
    for direction in ("forward", "backward"):
        got = _run(cpu, name, direction, np.ones(shape), x)
        want = _run(numpy_ref, name, direction, np.ones(shape), x)
        assert got.shape == want.shape == shape
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(OPS))
def test_results_do_not_depend_on_the_thread_count(cpu, name):
    x = _away_from_kinks((300_001,), 1, np.float32)
    g = np.ones_like(x)
    before = pyconv.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            pyconv.set_num_threads(n)
            results.append([_run(cpu, name, d, g, x) for d in ("forward", "backward")])
    finally:
        pyconv.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_non_contiguous_and_misaligned_inputs_through_the_backend(cpu, name, dtype):
    base = _away_from_kinks((6, 40), 7, dtype)
    grad = np.random.default_rng(8).standard_normal((6, 40)).astype(dtype)
    for x, g in ((base[:, ::2], grad[:, 1::2]), (base.T, grad.T), (misaligned(base), misaligned(grad))):
        for direction in ("forward", "backward"):
            got = _run(cpu, name, direction, g, x)
            np.testing.assert_allclose(got, _reference64(name, direction, g, x),
                                       **TOLERANCE[dtype])


def test_bad_arguments_raise_errors_that_name_them(cpu):
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match="x must be float32 or float64, got int64"):
        _C.relu_forward(x.astype(np.int64))
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        cpu.sigmoid_forward(x.astype(np.float16))
    with pytest.raises(ValueError, match=r"y must have shape \(4, 3\), got \(3, 4\)"):
        cpu.relu_backward(x, x.T.copy())
    with pytest.raises(TypeError, match="y must be float32 like the other arrays, got float64"):
        cpu.tanh_backward(x, x.astype(np.float64))
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        _C.tanh_forward(x.T)
    with pytest.raises(ValueError, match="x must be aligned"):
        _C.tanh_forward(misaligned(x))
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'fast'"):
        cpu.gelu_forward(x, "fast")
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        cpu.gelu_backward(x, x, "exact")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_autograd_on_cpu_matches_numpy(cpu, name, dtype):
    op = OPS[name][3]
    x = _away_from_kinks((3, 5), 11, dtype)
    grad = np.random.default_rng(12).standard_normal(x.shape).astype(dtype)
    results = {}
    for backend in ("numpy", "cpu"):
        with backends.use(backend):
            t = pyconv.tensor(x, requires_grad=True)
            y = op(t)
            y.backward(pyconv.tensor(grad))
            results[backend] = (y.detach().numpy(), t.grad.numpy())
    for got, want in zip(results["cpu"], results["numpy"]):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **TOLERANCE[dtype])


# ---------------------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------------------

SEEDS = [0, 1, 12345, 2**63 - 2, 2**64 - 1, -5]
# ragged sizes, one past the threading threshold (2^14)
DROPOUT_SHAPES = [(1,), (257,), (3, 333), (5, 7, 11), (3, 7001)]


@pytest.mark.parametrize("shape", DROPOUT_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_matches_reference_exactly(cpu, threads, dtype, shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    for seed in SEEDS:
        for p in (0.1, 0.5, 0.9, 0.0):
            y, mask = cpu.dropout_forward(x, p, seed)
            want_y, want_mask = numpy_ref.dropout_forward(x, p, seed)
            assert mask.dtype == bool and y.dtype == dtype and mask.shape == y.shape == shape
            np.testing.assert_array_equal(mask, want_mask)
            np.testing.assert_array_equal(y, want_y)
            np.testing.assert_array_equal(cpu.dropout_backward(grad_y, mask, p),
                                          numpy_ref.dropout_backward(grad_y, mask, p))


def test_dropout_keeps_exactly_at_the_threshold(cpu):
    """p equal to an element's u keeps it; the next double above p drops it."""
    seed = 1234567
    k0 = 6457827717110365317 >> 40  # element 0's top 24 bits (splitmix64's published output)
    x = np.ones(3)
    assert cpu.dropout_forward(x, k0 / 2**24, seed)[1][0]
    assert not cpu.dropout_forward(x, np.nextafter(k0 / 2**24, 1.0), seed)[1][0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's inf * 0
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_special_values_match_reference(cpu, dtype):
    x = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 1e30, -2.5] * 5, dtype=dtype)
    y, mask = cpu.dropout_forward(x, 0.5, 77)
    want_y, want_mask = numpy_ref.dropout_forward(x, 0.5, 77)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(y, want_y)  # a dropped inf is NaN in both, as in PyTorch


@pytest.mark.parametrize("shape", [(0,), (), (2, 0)], ids=str)
def test_dropout_empty_and_zero_dim(cpu, shape):
    x = np.full(shape, 3.0)
    y, mask = cpu.dropout_forward(x, 0.5, 5)
    want_y, want_mask = numpy_ref.dropout_forward(x, 0.5, 5)
    assert y.shape == mask.shape == shape
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(cpu.dropout_backward(x, mask, 0.5),
                                  numpy_ref.dropout_backward(x, mask, 0.5))


def test_dropout_non_contiguous_and_misaligned(cpu):
    x = np.arange(48.0).reshape(6, 8)
    for view in (x[:, ::3], x.T, misaligned(x)):
        y, mask = cpu.dropout_forward(view, 0.3, 8)
        np.testing.assert_array_equal(mask, keep_mask(view.shape, 0.3, 8))
        np.testing.assert_array_equal(y, numpy_ref.dropout_forward(view, 0.3, 8)[0])
        np.testing.assert_array_equal(cpu.dropout_backward(view, mask.T.copy().T, 0.3),
                                      numpy_ref.dropout_backward(view, mask, 0.3))


def test_dropout_argument_errors(cpu):
    with pytest.raises(TypeError, match="float32 or float64"):
        cpu.dropout_forward(np.zeros(4, dtype=np.int32), 0.5, 1)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        cpu.dropout_forward(np.zeros(4), 1.0, 1)
    with pytest.raises(TypeError, match="mask must be a bool array"):
        cpu.dropout_backward(np.zeros(4), np.ones(4, dtype=np.uint8), 0.5)
    with pytest.raises(ValueError, match="mask shape"):
        cpu.dropout_backward(np.zeros(4), np.ones(5, dtype=bool), 0.5)
    with pytest.raises(ValueError, match=r"mask must have shape \(4,\), got \(5,\)"):
        _C.dropout_backward(np.zeros(4), np.ones(5, dtype=bool), 2.0)
    with pytest.raises(ValueError, match="threshold must be at most"):
        _C.dropout_forward(np.zeros(4), 2**24 + 1, 0, 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_autograd_on_cpu_matches_numpy(cpu, dtype):
    x = np.random.default_rng(6).standard_normal((7, 9)).astype(dtype)
    grad = np.random.default_rng(7).standard_normal(x.shape).astype(dtype)
    results = {}
    for backend in ("numpy", "cpu"):
        with backends.use(backend):
            pyconv.manual_seed(3)
            t = pyconv.tensor(x, requires_grad=True)
            y = F.dropout(t, p=0.3)
            y.backward(pyconv.tensor(grad))
            results[backend] = (y.detach().numpy(), t.grad.numpy())
    for got, want in zip(results["cpu"], results["numpy"]):
        np.testing.assert_array_equal(got, want)
