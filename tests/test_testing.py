"""pyconv.testing: the checkers themselves must catch what they claim to catch."""

import numpy as np
import pytest

import pyconv
from pyconv.autograd import Function
from pyconv.testing import assert_close, gradcheck


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
