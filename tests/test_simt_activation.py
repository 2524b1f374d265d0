"""kernels/activation.cu on the SIMT emulator against the NumPy reference: every op forward and
backward, float64 and float32, the scalar and the float4 entry points, and the ops' autograd."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends.cuda_glue.activation import can_vectorize
from simt_support import require_simt, schedule  # noqa: F401 - schedule is a fixture

pytestmark = require_simt()

# name -> (forward args after x, backward saves "x" or "y", functional op for autograd)
OPS = {
    "relu": ((), "y", F.relu),
    "leaky_relu": ((0.2,), "x", lambda t: F.leaky_relu(t, 0.2)),
    "sigmoid": ((), "y", F.sigmoid),
    "tanh": ((), "y", F.tanh),
    "gelu": (("none",), "x", F.gelu),
    "gelu_tanh": (("tanh",), "x", lambda t: F.gelu(t, approximate="tanh")),
}
DTYPES = [np.float64, np.float32]
# the reference tests' shapes, then sizes that take several blocks: a multiple of 4 (float4
# entry for float32) and one that is not (scalar entry)
SHAPES = [(7,), (2, 3, 5), (2, 1, 4, 4), (1000,), (3, 339)]


def _kernel_name(name):
    return "gelu" if name.startswith("gelu") else name


def _tolerances(dtype):
    # gelu's 1 + erf(x / sqrt 2) and 1 + tanh(...) cancel for negative x: one ulp of erf or tanh
    # is then far more than one ulp of the result, hence the absolute terms
    return dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)


def _away_from_kinks(shape, seed, dtype):
    x = np.asarray(np.random.default_rng(seed).standard_normal(shape) * 2)
    x[np.abs(x) < 1e-3] += 0.01
    return x.astype(dtype)


def _aligned(values, dtype=np.float32, offset_elements=0):
    """A copy of ``values`` whose data starts ``offset_elements`` past a 16-byte boundary."""
    values = np.asarray(values, dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    buffer = np.empty(values.size + 16 // itemsize + offset_elements, dtype=dtype)
    skip = (-buffer.ctypes.data % 16) // itemsize + offset_elements
    out = buffer[skip:skip + values.size].reshape(values.shape)
    out[...] = values
    return out


def _run(backend, name, direction, grad_y, x):
    """Run ``name``'s forward (on x) or backward (on grad_y and the saved tensor) on ``backend``."""
    extra, saves, _ = OPS[name]
    kernel = _kernel_name(name)
    if direction == "forward":
        return getattr(backend, f"{kernel}_forward")(x, *extra)
    saved = x if saves == "x" else getattr(numpy_backend(), f"{kernel}_forward")(x, *extra)
    return getattr(backend, f"{kernel}_backward")(grad_y, saved, *extra)


def numpy_backend():
    return backends.get("numpy")


def simt_backend():
    return backends.get("simt")


def _check(name, direction, x, grad_y=None):
    dtype = x.dtype.type
    got = _run(simt_backend(), name, direction, grad_y, x)
    want = _run(numpy_backend(), name, direction, grad_y, x)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, **_tolerances(dtype), err_msg=f"{name} {direction}")
    return got


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_matches_reference(schedule, direction, name, dtype, shape):
    rng = np.random.default_rng(len(shape))
    x = _away_from_kinks(shape, sum(shape), dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    _check(name, direction, x, grad_y)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's inf * 0
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_special_values(schedule, name, dtype):
    """Signed zeros, infinities, NaN and huge inputs give what the reference gives."""
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 100.0, -100.0, 30.0, -30.0],
                 dtype=dtype)
    grad_y = np.linspace(-2.0, 3.0, x.size).astype(dtype)
    for direction in ("forward", "backward"):
        got = _run(simt_backend(), name, direction, grad_y, x)
        want = _run(numpy_backend(), name, direction, grad_y, x)
        np.testing.assert_allclose(got, want, **_tolerances(dtype), err_msg=f"{name} {direction}")


def test_sigmoid_does_not_overflow_in_float32(schedule):
    x = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=np.float32)
    y = simt_backend().sigmoid_forward(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)


def test_relu_backward_zeroes_infinite_gradients_where_inactive(schedule):
    y = np.maximum(np.array([-1.0, 0.0, 2.0, -3.0]), 0)
    g = np.array([np.inf, -np.inf, np.inf, np.nan])
    np.testing.assert_array_equal(simt_backend().relu_backward(g, y), [0.0, 0.0, np.inf, 0.0])


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape", [(0,), (), (3, 0, 2)], ids=str)
def test_empty_and_zero_dim(schedule, name, shape):
    x = _away_from_kinks(shape, 0, np.float64)
    for direction in ("forward", "backward"):
        got = _run(simt_backend(), name, direction, np.ones(shape), x)
        want = _run(numpy_backend(), name, direction, np.ones(shape), x)
        assert got.shape == want.shape == shape
        np.testing.assert_allclose(got, want, rtol=1e-12)


def _launches(entry):
    return simt_backend().device.launches[entry]


@pytest.mark.parametrize("name", sorted(OPS))
def test_float4_entry_runs_on_aligned_float32(schedule, name):
    kernel = _kernel_name(name)
    entry = {"gelu": "gelu_erf", "gelu_tanh": "gelu_tanh"}.get(name, kernel)
    x = _aligned(_away_from_kinks((4, 257), 3, np.float32))  # 1028 elements: several blocks
    grad_y = _aligned(np.random.default_rng(4).standard_normal(x.shape))
    for direction in ("forward", "backward"):
        vec, scalar = _launches(f"{entry}_{direction}_vec4_f32"), _launches(f"{entry}_{direction}_f32")
        _check(name, direction, x, grad_y)
        assert _launches(f"{entry}_{direction}_vec4_f32") == vec + 1
        assert _launches(f"{entry}_{direction}_f32") == scalar


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu"])
def test_scalar_entry_runs_on_misaligned_or_ragged_float32(schedule, name):
    values = _away_from_kinks((1029,), 5, np.float32)
    ones = np.ones(1029)
    misaligned = [_aligned(values)[1:], _aligned(ones)[1:]]  # 1028 elements, 4 bytes past 16
    ragged = [_aligned(values[:1026]), _aligned(ones[:1026])]
    for x, grad_y in (misaligned, ragged):
        for direction in ("forward", "backward"):
            vec, scalar = _launches(f"{name}_{direction}_vec4_f32"), _launches(f"{name}_{direction}_f32")
            _check(name, direction, x, grad_y)
            assert _launches(f"{name}_{direction}_vec4_f32") == vec
            assert _launches(f"{name}_{direction}_f32") == scalar + 1


def test_can_vectorize_needs_float32_alignment_and_multiple_of_four():
    dev = simt_backend().device
    a = _aligned(np.zeros(8))
    assert can_vectorize(dev, a, _aligned(np.ones(8)))
    assert not can_vectorize(dev, a, _aligned(np.ones(9))[1:])  # one misaligned pointer
    assert not can_vectorize(dev, _aligned(np.zeros(6)))
    assert not can_vectorize(dev, _aligned(np.zeros(8), dtype=np.float64))


def test_argument_errors():
    simt = simt_backend()
    with pytest.raises(TypeError, match="float32 or float64"):
        simt.relu_forward(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="shapes"):
        simt.relu_backward(np.zeros(4), np.zeros(5))
    with pytest.raises(TypeError, match="dtypes"):
        simt.tanh_backward(np.zeros(4), np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        simt.gelu_forward(np.zeros(4), "fast")


def test_non_contiguous_input(schedule):
    x = _away_from_kinks((6, 8), 7, np.float64)[:, ::2]
    np.testing.assert_allclose(simt_backend().gelu_forward(x, "tanh"),
                               numpy_backend().gelu_forward(x, "tanh"), **_tolerances(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_autograd_on_simt_matches_numpy(schedule, name, dtype):
    _, _, op = OPS[name]
    x = _away_from_kinks((3, 5), 11, dtype)
    grad = np.random.default_rng(12).standard_normal(x.shape).astype(dtype)
    results = {}
    for backend in ("numpy", "simt"):
        with backends.use(backend):
            t = pyconv.tensor(x, requires_grad=True)
            y = op(t)
            y.backward(pyconv.tensor(grad))
            results[backend] = (y.detach().numpy(), t.grad.numpy())
    for got, want in zip(results["simt"], results["numpy"]):
        np.testing.assert_allclose(got, want, **_tolerances(dtype))
    kernel = {"gelu": "gelu_erf", "gelu_tanh": "gelu_tanh"}.get(name, name)
    suffix = "f64" if dtype == np.float64 else "f32"
    launched = simt_backend().device.launches
    assert launched[f"{kernel}_forward_{suffix}"] and launched[f"{kernel}_backward_{suffix}"]


@pytest.mark.parametrize("size", [8400, 8401], ids=["float4", "scalar"])
def test_grid_stride_loop_covers_more_elements_than_threads(schedule, monkeypatch, size):
    # one multiprocessor caps the grid at 8 blocks of 256 threads: 2048 threads, so each
    # thread handles several elements (8400 / 4 float4 groups or 8401 scalars)
    monkeypatch.setattr(simt_backend().device, "multiprocessors", 1)
    x = _aligned(_away_from_kinks((size,), 13, np.float32))
    _check("sigmoid", "forward", x)
    _check("relu", "backward", x, _aligned(np.linspace(-1, 1, size)))
