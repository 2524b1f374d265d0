"""kernels/gemm.cu on the SIMT emulator against NumPy: the tiled GEMM in every transpose
combination, with alpha / beta / bias, on sizes that are not multiples of the 64 x 64 x 16 tile;
the vec4 (16-byte loads) and scalar variants with 64- and 32-row tiles and the glue's choice
between them; the column sums;
the linear contract kernels; nn.Linear forward and backward on the simt backend."""

import numpy as np
import pytest

import pyconv
import pyconv.nn as nn
import pyconv.simt
from pyconv import backends
from pyconv.backends.cuda_glue.linear import column_sum, gemm
from simt_support import assert_same_array, ref, require_simt, schedule, simt  # noqa: F401 - ref, schedule, simt are fixtures

pytestmark = require_simt()

DTYPES = [np.float64, np.float32]
TOLERANCES = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-5)}
SUFFIX = {np.float64: "f64", np.float32: "f32"}


def _assert_matches(actual, expected, dtype):
    assert_same_array(actual, expected, TOLERANCES[np.dtype(dtype).type])


def _launched(simt, fn):
    before = simt.device.launches.copy()
    result = fn()
    return result, set(simt.device.launches - before)


def _operands(rng, m, n, k, trans_a, trans_b, dtype):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def _expected(a, b, trans_a, trans_b):
    return (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)


# ----- the GEMM --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (7, 33, 65), (65, 7, 33), (33, 65, 7)])
def test_gemm_matches_numpy_in_every_transpose_combination(simt, m, n, k, trans_a, trans_b,
                                                           dtype, schedule):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a, b = _operands(rng, m, n, k, trans_a, trans_b, dtype)
    c = gemm(simt.device, a, b, trans_a, trans_b)
    _assert_matches(c, _expected(a, b, trans_a, trans_b).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_vec4_and_scalar_paths_agree_with_numpy(simt, trans_a, trans_b, dtype, schedule):
    # all lengths multiples of 4 (vec4), then none (scalar); both with ragged tiles
    rng = np.random.default_rng(5)
    for (m, n, k), path in [((68, 36, 20), "gemm_vec4"), ((67, 35, 21), "gemm"),
                            ((4, 4, 4), "gemm_vec4_m32"), ((33, 5, 7), "gemm"),
                            ((32, 35, 21), "gemm_m32")]:
        a, b = _operands(rng, m, n, k, trans_a, trans_b, dtype)
        c, launched = _launched(simt, lambda: gemm(simt.device, a, b, trans_a, trans_b))
        assert launched == {f"{path}_{SUFFIX[dtype]}"}
        _assert_matches(c, _expected(a, b, trans_a, trans_b).astype(dtype), dtype)


def test_misaligned_operands_take_the_scalar_path(simt):
    # a view starting one element into its buffer is not 16-byte aligned
    rng = np.random.default_rng(6)
    buffer = rng.standard_normal(8 * 12 + 1).astype(np.float32)
    a = buffer[1:].reshape(8, 12)
    b = rng.standard_normal((12, 8)).astype(np.float32)
    c, launched = _launched(simt, lambda: gemm(simt.device, a, b))
    assert launched == {"gemm_m32_f32"}
    _assert_matches(c, (a @ b).astype(np.float32), np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("m, n, k, path", [(9, 66, 17, "gemm_m32"), (8, 68, 16, "gemm_vec4_m32"),
                                           (70, 66, 17, "gemm"), (65, 68, 16, "gemm_vec4")])
def test_alpha_beta_and_bias(simt, m, n, k, path, with_bias, dtype, schedule):
    rng = np.random.default_rng(7)
    a, b = _operands(rng, m, n, k, 0, 1, dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype) if with_bias else None
    out = c0.copy()
    result, launched = _launched(simt, lambda: gemm(simt.device, a, b, trans_b=True, out=out,
                                                    alpha=-0.5, beta=2.0, bias=bias))
    assert result is out and launched == {f"{path}_{SUFFIX[dtype]}"}
    expected = -0.5 * _expected(a, b, 0, 1) + 2.0 * c0 + (0 if bias is None else bias)
    _assert_matches(out, expected.astype(dtype), dtype)


@pytest.mark.parametrize("n", [2, 4])  # scalar, vec4
def test_beta_zero_never_reads_the_output(simt, n):
    a = np.ones((3, 4))
    out = np.full((3, n), np.nan)
    gemm(simt.device, a, np.ones((4, n)), out=out)
    np.testing.assert_array_equal(out, np.full((3, n), 4.0))


@pytest.mark.parametrize("m, n, k", [(0, 3, 4), (3, 0, 4), (3, 4, 0)])
def test_empty_dimensions(simt, m, n, k):
    a, b = np.ones((m, k)), np.ones((k, n))
    bias = np.arange(n, dtype=np.float64)
    c = gemm(simt.device, a, b, bias=bias)
    np.testing.assert_array_equal(c, a @ b + bias)  # k == 0: the bias alone


def test_result_is_bitwise_reproducible_across_schedules(simt):
    rng = np.random.default_rng(8)
    a, b = _operands(rng, 70, 67, 40, 1, 0, np.float32)
    runs = []
    for kind, seed in [("inorder", 0), ("reverse", 0), ("random", 4)]:
        with pyconv.simt.schedule(kind, seed=seed):
            runs.append(gemm(simt.device, a, b, trans_a=True))
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])


def test_gemm_rejects_what_would_corrupt_memory(simt):
    dev = simt.device
    with pytest.raises(ValueError, match="inner dimensions differ"):
        gemm(dev, np.ones((3, 4)), np.ones((5, 2)))
    with pytest.raises(TypeError, match="b has dtype float32, expected float64"):
        gemm(dev, np.ones((3, 4)), np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"out must be a C-contiguous \(3, 2\)"):
        gemm(dev, np.ones((3, 4)), np.ones((4, 2)), out=np.ones((2, 3)), beta=1.0)
    with pytest.raises(ValueError, match="beta != 0 needs an out array"):
        gemm(dev, np.ones((3, 4)), np.ones((4, 2)), beta=1.0)
    with pytest.raises(ValueError, match=r"bias must be a \(2,\)"):
        gemm(dev, np.ones((3, 4)), np.ones((4, 2)), bias=np.ones(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        gemm(dev, np.ones((3, 4), np.int64), np.ones((4, 2), np.int64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n", [(1, 1), (5, 300), (0, 4)])
def test_column_sum(simt, m, n, dtype, schedule):
    x = np.random.default_rng(9).standard_normal((m, n)).astype(dtype)
    _assert_matches(column_sum(simt.device, x), x.sum(axis=0), dtype)


# ----- linear contract kernels -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("m, i, o", [(1, 1, 1), (7, 33, 65), (65, 8, 12)])
def test_linear_kernels_match_the_reference(simt, ref, m, i, o, with_bias, dtype, schedule):
    rng = np.random.default_rng(m + i + o)
    x = rng.standard_normal((m, i)).astype(dtype)
    w = rng.standard_normal((o, i)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if with_bias else None
    grad_y = rng.standard_normal((m, o)).astype(dtype)
    _assert_matches(simt.linear_forward(x, w, b), ref.linear_forward(x, w, b), dtype)
    _assert_matches(simt.linear_backward_input(grad_y, w), ref.linear_backward_input(grad_y, w),
                    dtype)
    _assert_matches(simt.linear_backward_weight(grad_y, x), ref.linear_backward_weight(grad_y, x),
                    dtype)


def test_linear_kernels_take_non_contiguous_operands(simt, ref):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((6, 10))[:, ::2]
    w = rng.standard_normal((5, 3)).T
    _assert_matches(simt.linear_forward(x, w, None), ref.linear_forward(x, w, None), np.float64)


# ----- autograd on the simt backend --------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_nn_linear_on_the_simt_backend(simt, dtype, schedule):
    rng = np.random.default_rng(11)
    data = rng.standard_normal((5, 7)).astype(dtype)
    layer = nn.Linear(7, 3, dtype=dtype)

    def forward_backward(backend):
        layer.zero_grad()
        x = pyconv.tensor(data, requires_grad=True)
        with backends.use(backend):
            y = layer(x)
            (y * y).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy()

    expected = forward_backward("numpy")
    results, launched = _launched(simt, lambda: forward_backward("simt"))
    for ours, theirs in zip(results, expected):
        _assert_matches(ours, theirs, dtype)
    assert any(name.startswith("gemm") for name in launched)
