"""softmax and log_softmax: gradcheck, PyTorch comparison, stability edges and argument errors."""

import warnings

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv.backends import numpy_ref
from pyconv.testing import gradcheck
from torch_compare import compare_with_torch, require_torch

OPS = {
    "softmax": (F.softmax, "softmax"),
    "log_softmax": (F.log_softmax, "log_softmax"),
}
DTYPES = [np.float64, np.float32]


def _torch_fn(name):
    torch = require_torch()
    return getattr(torch.nn.functional, OPS[name][1])


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape, dim", [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -2)])
def test_gradcheck(name, shape, dim):
    fn = OPS[name][0]
    x = pyconv.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda t: fn(t, dim), [x])


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck_with_dtype_cast(name):
    fn = OPS[name][0]
    x = pyconv.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda t: fn(t, 1, dtype=np.float64), [x])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [-4, -3, -2, -1, 0, 1, 2, 3])
@pytest.mark.parametrize("name", sorted(OPS))
def test_every_dim_of_4d_matches_torch(name, dim, dtype):
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5)) * 3
    tfn = _torch_fn(name)
    compare_with_torch(lambda t: OPS[name][0](t, dim), lambda t: tfn(t, dim), [x], dtype=dtype,
                       name=f"{name} dim={dim}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", sorted(OPS))
def test_random_shapes_match_torch(name, seed, dtype):
    rng = np.random.default_rng(100 + seed)
    ndim = int(rng.integers(1, 5))
    shape = tuple(int(s) for s in rng.integers(1, 6, size=ndim))
    dim = int(rng.integers(-ndim, ndim))
    x = rng.standard_normal(shape) * rng.uniform(0.1, 20)
    tfn = _torch_fn(name)
    compare_with_torch(lambda t: OPS[name][0](t, dim), lambda t: tfn(t, dim), [x], dtype=dtype,
                       seed=seed, name=f"{name} {shape} dim={dim}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_huge_inputs_are_finite_and_match_torch(name, dtype):
    x = np.array([[-1e4, 1e4, 0.0], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4], [5e3, -5e3, 1e4]])
    tfn = _torch_fn(name)
    (out,), _ = compare_with_torch(lambda t: OPS[name][0](t, 1), lambda t: tfn(t, 1), [x],
                                   dtype=dtype, name=name)
    values = out.detach().numpy()
    assert np.all(np.isfinite(values))
    expected_log = np.array([[-2e4, 0, -1e4], [-np.log(2), -np.log(2), -2e4 - np.log(2)],
                             [-np.log(3)] * 3, [-5e3, -1.5e4, 0]])
    expected = expected_log if name == "log_softmax" else np.exp(expected_log)
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_all_equal_row_matches_torch(name, dtype):
    x = np.array([[2.5] * 7, [-3.0] * 7])
    tfn = _torch_fn(name)
    (out,), _ = compare_with_torch(lambda t: OPS[name][0](t, -1), lambda t: tfn(t, -1), [x],
                                   dtype=dtype, name=name)
    expected = -np.log(7) if name == "log_softmax" else 1 / 7
    np.testing.assert_allclose(out.detach().numpy(), np.full((2, 7), expected), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 3, 2, 2)])
def test_implicit_dim_follows_torch_and_warns(name, shape):
    tfn = _torch_fn(name)
    x = np.random.default_rng(3).standard_normal(shape)

    def ours(t):
        with pytest.warns(UserWarning, match=r"Implicit dimension choice for " + name):
            return OPS[name][0](t)

    def theirs(t):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return tfn(t)

    compare_with_torch(ours, theirs, [x], name=f"{name} implicit dim {shape}")


@pytest.mark.parametrize("name", sorted(OPS))
def test_dtype_argument_casts_first(name):
    torch = require_torch()
    tfn = _torch_fn(name)
    x = np.random.default_rng(4).standard_normal((3, 5)).astype(np.float32)
    ours_x = pyconv.tensor(x, requires_grad=True)
    theirs_x = torch.tensor(x, requires_grad=True)
    ours = OPS[name][0](ours_x, 1, dtype=np.float64)
    theirs = tfn(theirs_x, 1, dtype=torch.float64)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    w = np.random.default_rng(5).standard_normal((3, 5))
    (ours * pyconv.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    assert ours_x.grad.dtype == np.float32
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-5, atol=1e-6)
    ints = pyconv.tensor([[1, 2, 3]])
    np.testing.assert_allclose(OPS[name][0](ints, 1, dtype=np.float32).numpy(),
                               tfn(torch.tensor([[1, 2, 3]]), 1, dtype=torch.float32).numpy(),
                               rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_zero_dim_and_empty_inputs_match_torch(name, dtype):
    tfn = _torch_fn(name)
    compare_with_torch(lambda t: OPS[name][0](t, 0), lambda t: tfn(t, 0), [np.array(1.7)],
                       dtype=dtype, name=f"{name} 0-d")
    compare_with_torch(lambda t: OPS[name][0](t, -1), lambda t: tfn(t, -1), [np.array(-0.3)],
                       dtype=dtype, name=f"{name} 0-d dim=-1")
    compare_with_torch(lambda t: OPS[name][0](t, 1), lambda t: tfn(t, 1), [np.zeros((3, 0))],
                       dtype=dtype, name=f"{name} empty dim")
    compare_with_torch(lambda t: OPS[name][0](t, 1), lambda t: tfn(t, 1), [np.zeros((0, 4))],
                       dtype=dtype, name=f"{name} empty batch")


def test_modules_and_tensor_methods_use_these_ops():
    x = pyconv.tensor(np.random.default_rng(6).standard_normal((2, 3, 4)))
    np.testing.assert_array_equal(pyconv.nn.Softmax(dim=1)(x).numpy(), F.softmax(x, 1).numpy())
    np.testing.assert_array_equal(pyconv.nn.LogSoftmax(dim=-1)(x).numpy(),
                                  F.log_softmax(x, 2).numpy())
    np.testing.assert_array_equal(x.softmax(0).numpy(), F.softmax(x, 0).numpy())
    np.testing.assert_array_equal(x.log_softmax(1).numpy(), F.log_softmax(x, 1).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_keep_the_input_dtype(dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4)).astype(dtype)
    g = rng.standard_normal((3, 4)).astype(dtype)
    for forward, backward in [(numpy_ref.softmax_forward, numpy_ref.softmax_backward),
                              (numpy_ref.log_softmax_forward, numpy_ref.log_softmax_backward)]:
        y = forward(x, 1)
        assert y.dtype == dtype
        assert backward(g, y, 1).dtype == dtype


@pytest.mark.parametrize("name", sorted(OPS))
def test_errors_name_the_argument(name):
    fn = OPS[name][0]
    x = pyconv.randn(2, 3)
    with pytest.raises(IndexError, match=rf"{name}: dim out of range.*\[-2, 1\].*got 2"):
        fn(x, 2)
    with pytest.raises(IndexError, match=rf"{name}: dim out of range.*got -3"):
        fn(x, -3)
    with pytest.raises(TypeError, match=rf"{name}: input must be a floating-point tensor.*int64"):
        fn(pyconv.tensor([[1, 2]]), 1)
    with pytest.raises(TypeError, match=rf"{name}: input must be a pyconv Tensor, got ndarray"):
        fn(np.zeros((2, 3)), 1)
    with pytest.raises(TypeError, match=rf"{name}: dtype must be a floating-point dtype.*int64"):
        fn(x, 1, dtype=np.int64)
