"""pyconv.testing: the checkers themselves must catch what they claim to catch."""

import numpy as np
import pytest

import pyconv
from pyconv.autograd import Function
from pyconv.testing import assert_close, compare, gradcheck


class SquareWithWrongGradient(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return g * x  # should be 2 * g * x


def test_gradcheck_catches_a_wrong_backward():
    x = pyconv.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with pytest.raises(AssertionError, match=r"gradient of input 0 .* differs"):
        gradcheck(SquareWithWrongGradient.apply, [x])
    assert gradcheck(SquareWithWrongGradient.apply, [x], raise_exception=False) is False
    assert gradcheck(lambda t: t * t, [x])


def test_gradcheck_rejects_float32_inputs():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda t: t * 2, [pyconv.ones(2, requires_grad=True)])


def test_assert_close_semantics():
    assert_close([np.inf, -np.inf, np.nan, 1.0], [np.inf, -np.inf, np.nan, 1.0 + 1e-9])
    for actual, expected in [([np.inf], [-np.inf]), ([1.0], [np.nan]), ([np.inf], [1e300]), ([1.0], [1.1])]:
        with pytest.raises(AssertionError, match="1 of 1 elements differ"):
            assert_close(actual, expected)
    with pytest.raises(AssertionError, match="shape"):
        assert_close(np.zeros(2), np.zeros(3))


# ----- compare(): a user's function on every backend against a float64 reference ----------------


def _block(x, w, b):
    """conv -> relu -> max-pool -> linear-style reduction, as a user's layer would be."""
    F = pyconv.nn.functional
    y = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
    return y, y.sum(dim=(2, 3))


def _block_numpy(x, w, b):
    """The same in plain float64 NumPy (an oracle independent of pyconv)."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, :, r:r + h, s:s + wd] for r in range(3) for s in range(3)], axis=2)
    conv = np.einsum("ncthw,kct->nkhw", cols, w.reshape(w.shape[0], c, 9)) + b[:, None, None]
    relu = np.maximum(conv, 0)
    pooled = relu.reshape(n, -1, h // 2, 2, wd // 2, 2).max(axis=(3, 5))
    return pooled, pooled.sum(axis=(2, 3))


def _block_inputs():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)),
            rng.standard_normal(4)]


def test_compare_passes_on_every_backend_with_gradients():
    table = compare(_block, _block_inputs(), grad=True, dtype=(np.float32, np.float64))
    assert table.ok, str(table)
    names = pyconv.backends.available()
    # 2 outputs + 3 input gradients, per backend and dtype
    assert len(table.rows) == 5 * 2 * len(names)
    assert {r.backend for r in table.rows} == set(names)
    assert "0 FAIL" in str(table) and "_block grad of input 2" in str(table)


def test_compare_with_an_independent_reference_catches_a_planted_error():
    inputs = _block_inputs()
    assert compare(_block, inputs, _block_numpy).ok

    def off_by_a_little(x, w, b):
        pooled, sums = _block_numpy(x, w, b)
        return pooled, sums + 0.1

    table = compare(_block, inputs, off_by_a_little)
    assert all(r.ok for r in table.rows if "output 0" in r.op)
    assert all(not r.ok and r.abs_err == pytest.approx(0.1, rel=1e-3)
               for r in table.rows if "output 1" in r.op)
    with pytest.raises(AssertionError, match="FAIL"):
        compare(_block, inputs, off_by_a_little, raise_on_failure=True)


def test_compare_catches_a_broken_backward_kernel_on_one_backend(monkeypatch):
    if "cpu" not in pyconv.backends.available():
        pytest.skip("needs a backend other than the reference")
    cpu = pyconv.backends.get("cpu")
    original = cpu.relu_backward
    monkeypatch.setattr(cpu, "relu_backward", lambda g, y: original(g, y) * g.dtype.type(1.01))
    table = compare(_block, _block_inputs(), backends=["numpy", "cpu"], grad=True)
    failed = {(r.backend, r.op) for r in table.failures}
    assert failed == {("cpu", "_block grad of input 0"), ("cpu", "_block grad of input 1"),
                      ("cpu", "_block grad of input 2")}
    with pytest.raises(ValueError, match="unknown backend"):
        compare(_block, _block_inputs(), backends=["gpu0"])


def test_compare_refuses_functions_that_return_no_tensor():
    with pytest.raises(TypeError, match="must return a pyconv tensor"):
        compare(lambda x: np.asarray(x).sum(), [np.ones(3)])
    with pytest.raises(ValueError, match="float32 or float64"):
        compare(lambda x: x * 2, [np.ones(3)], dtype=np.int64)
