"""Activations, linear and dropout: gradcheck and PyTorch comparison."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv.testing import gradcheck
from torch_compare import compare_with_torch, require_torch

ACTIVATIONS = {
    "relu": (F.relu, lambda t, x: t.nn.functional.relu(x)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda t, x: t.nn.functional.leaky_relu(x, 0.2)),
    "sigmoid": (F.sigmoid, lambda t, x: t.sigmoid(x)),
    "tanh": (F.tanh, lambda t, x: t.tanh(x)),
    "gelu": (F.gelu, lambda t, x: t.nn.functional.gelu(x)),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda t, x: t.nn.functional.gelu(x, approximate="tanh")),
}


def _away_from_kinks(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    x[np.abs(x) < 1e-3] += 0.01  # finite differences straddling relu's kink are meaningless
    return x


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck(name):
    fn, _ = ACTIVATIONS[name]
    x = pyconv.tensor(_away_from_kinks((3, 4), 0), requires_grad=True)
    assert gradcheck(fn, [x])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", [(7,), (2, 3, 5), (2, 1, 4, 4)])
def test_activation_matches_torch(name, shape, dtype):
    torch = require_torch()
    fn, tfn = ACTIVATIONS[name]
    compare_with_torch(fn, lambda x: tfn(torch, x), [_away_from_kinks(shape, 1)], dtype=dtype, name=name)


def test_sigmoid_is_finite_for_large_inputs():
    x = pyconv.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=np.float32)
    y = F.sigmoid(x).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
def test_linear_gradcheck_and_torch(lead, bias):
    torch = require_torch()
    rng = np.random.default_rng(2)
    x = rng.standard_normal(lead + (4,))
    w = rng.standard_normal((3, 4))
    b = rng.standard_normal(3)
    args = [x, w, b] if bias else [x, w]
    tensors = [pyconv.tensor(a, requires_grad=True) for a in args]
    assert gradcheck(F.linear, tensors)
    compare_with_torch(F.linear, torch.nn.functional.linear, args, name="linear")
    compare_with_torch(F.linear, torch.nn.functional.linear, args, dtype=np.float32, name="linear")


def test_linear_errors_name_the_argument():
    x = pyconv.randn(2, 4)
    with pytest.raises(ValueError, match=r"input has 4 features.*weight expects 5"):
        F.linear(x, pyconv.randn(3, 5))
    with pytest.raises(TypeError, match=r"input must be a floating-point tensor.*int64"):
        F.linear(pyconv.tensor([[1, 2, 3, 4]]), pyconv.randn(3, 4))
    with pytest.raises(TypeError, match=r"weight has dtype float64 but input has dtype float32"):
        F.linear(x, pyconv.randn(3, 4, dtype=np.float64))
    with pytest.raises(ValueError, match=r"expected bias of shape \(3,\), got \(4,\)"):
        F.linear(x, pyconv.randn(3, 4), pyconv.randn(4))


def test_dropout_statistics_gradient_and_determinism():
    x = pyconv.ones(200, 200, requires_grad=True)
    pyconv.manual_seed(3)
    y = F.dropout(x, p=0.3)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy() != 0, kept)
    np.testing.assert_allclose(x.grad.numpy()[kept], 1 / 0.7, rtol=1e-6)
    pyconv.manual_seed(3)
    again = F.dropout(x, p=0.3).detach().numpy()
    np.testing.assert_array_equal(again, y.detach().numpy())


def test_dropout_eval_and_edges():
    x = pyconv.randn(4, 5)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).numpy().any()
    with pytest.raises(ValueError, match="between 0 and 1, got 1.5"):
        F.dropout(x, 1.5)
    layer = pyconv.nn.Dropout(0.5).eval()
    assert layer(x) is x


def test_relu_backward_zeroes_infinite_gradients_where_inactive_like_torch():
    torch = require_torch()
    x = np.array([-1.0, 0.0, 2.0, -3.0])
    g = np.array([np.inf, -np.inf, np.inf, np.nan])
    p = pyconv.tensor(x, requires_grad=True)
    F.relu(p).backward(pyconv.tensor(g))
    t = torch.tensor(x, requires_grad=True)
    torch.relu(t).backward(torch.tensor(g))
    np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
