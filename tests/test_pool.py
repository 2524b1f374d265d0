"""Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d and their layers.

Oracles: finite differences (gradcheck), PyTorch (values, indices, gradients, accepted
arguments, reprs) and, for the shapes of the edge cases, pyconv.shapes checked against PyTorch.
"""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
import pyconv.nn as nn
from pyconv.backends import numpy_ref
from pyconv.shapes import pool_output_size
from pyconv.testing import gradcheck
from torch_compare import compare_with_torch, require_torch

DTYPES = [np.float64, np.float32]


def _pair(rng, low, high):
    return tuple(int(v) for v in rng.integers(low, high, 2))


def _as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _fits(in_size, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """True when a pooling call with these arguments has at least one window per axis."""
    geometry = [_as_pair(v) for v in (kernel_size, kernel_size if stride is None else stride,
                                      padding, dilation)]
    return all(pool_output_size(*args, ceil_mode) >= 1 for args in zip(in_size, *geometry))


def _random_pool_case(seed, with_dilation):
    """(input shape, kwargs) of a valid random pooling call: non-square geometry, stride from
    1 to beyond the kernel or defaulted, padding up to kernel // 2, ceil_mode either way."""
    rng = np.random.default_rng(seed)
    while True:
        kernel_size = _pair(rng, 1, 5)
        stride = None if rng.random() < 0.2 else _pair(rng, 1, 6)
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel_size)
        dilation = _pair(rng, 1, 4) if with_dilation and rng.random() < 0.5 else (1, 1)
        ceil_mode = bool(rng.random() < 0.5)
        in_size = _pair(rng, 1, 13)
        if _fits(in_size, kernel_size, stride, padding, dilation, ceil_mode):
            break
    kwargs = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if with_dilation:
        kwargs["dilation"] = dilation
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4))) + in_size
    return shape, kwargs


def _compare_max(torch, x, dtype, name, **kwargs):
    compare_with_torch(lambda t: F.max_pool2d(t, return_indices=True, **kwargs),
                       lambda t: torch.nn.functional.max_pool2d(t, return_indices=True, **kwargs),
                       [x], dtype=dtype, name=name)


def _compare_avg(torch, x, dtype, name, **kwargs):
    compare_with_torch(lambda t: F.avg_pool2d(t, **kwargs),
                       lambda t: torch.nn.functional.avg_pool2d(t, **kwargs),
                       [x], dtype=dtype, name=name)


def _compare_adaptive(torch, x, output_size, dtype, name="adaptive_avg_pool2d"):
    compare_with_torch(lambda t: F.adaptive_avg_pool2d(t, output_size),
                       lambda t: torch.nn.functional.adaptive_avg_pool2d(t, output_size),
                       [x], dtype=dtype, name=name)


# ---------------------------------------------------------------------------------------------
# gradcheck (float64, finite differences)
# ---------------------------------------------------------------------------------------------

MAX_GRADCHECK = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0), dilation=(2, 1), ceil_mode=True),
]


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("kwargs", MAX_GRADCHECK)
def test_max_pool2d_gradcheck(kwargs, batched):
    shape = (2, 2, 5, 6) if batched else (2, 5, 6)
    # distinct values one apart: no finite-difference step can change which cell is the maximum
    values = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape).astype(np.float64)
    x = pyconv.tensor(values, requires_grad=True)
    assert gradcheck(lambda t: F.max_pool2d(t, **kwargs), [x])


AVG_GRADCHECK = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(1, 3), padding=(1, 1), divisor_override=5),
]


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("kwargs", AVG_GRADCHECK)
def test_avg_pool2d_gradcheck(kwargs, batched):
    shape = (2, 2, 5, 6) if batched else (2, 5, 6)
    x = pyconv.tensor(np.random.default_rng(1).standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda t: F.avg_pool2d(t, **kwargs), [x])


@pytest.mark.parametrize("shape,output_size", [
    ((2, 2, 5, 7), (3, 4)),      # windows overlap
    ((2, 2, 6, 4), 2),           # windows tile the input
    ((2, 3, 2, 3), (4, 5)),      # output larger than input
    ((3, 4, 5), (None, 2)),      # unbatched, None keeps the height
])
def test_adaptive_avg_pool2d_gradcheck(shape, output_size):
    x = pyconv.tensor(np.random.default_rng(2).standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, output_size), [x])


# ---------------------------------------------------------------------------------------------
# comparison with PyTorch: random configurations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(40))
def test_max_pool2d_random_configs_match_torch(seed, dtype):
    torch = require_torch()
    shape, kwargs = _random_pool_case(seed, with_dilation=True)
    x = np.random.default_rng(1000 + seed).standard_normal(shape)
    _compare_max(torch, x, dtype, f"max_pool2d{shape} {kwargs}", **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(40))
def test_avg_pool2d_random_configs_match_torch(seed, dtype):
    torch = require_torch()
    shape, kwargs = _random_pool_case(seed, with_dilation=False)
    rng = np.random.default_rng(2000 + seed)
    kwargs["count_include_pad"] = bool(rng.random() < 0.5)
    if rng.random() < 0.3:
        kwargs["divisor_override"] = int(rng.choice([-3, 1, 2, 7]))
    _compare_avg(torch, rng.standard_normal(shape), dtype, f"avg_pool2d{shape} {kwargs}", **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(20))
def test_adaptive_avg_pool2d_random_sizes_match_torch(seed, dtype):
    torch = require_torch()
    rng = np.random.default_rng(3000 + seed)
    shape = (2, 3) + _pair(rng, 1, 13)
    output_size = _pair(rng, 1, 16)
    _compare_adaptive(torch, rng.standard_normal(shape), output_size, dtype)


# ---------------------------------------------------------------------------------------------
# comparison with PyTorch: named edge cases
# ---------------------------------------------------------------------------------------------

POOL_EDGES = {
    "stride_defaults_to_kernel": ((2, 3, 7, 8), dict(kernel_size=3)),
    "stride_larger_than_kernel": ((2, 2, 9, 10), dict(kernel_size=2, stride=3)),
    "non_square": ((2, 2, 7, 9), dict(kernel_size=(2, 4), stride=(1, 3), padding=(1, 2))),
    "ceil_window_past_padded_input": ((1, 2, 6, 6), dict(kernel_size=3, stride=2, ceil_mode=True)),
    "ceil_window_past_right_padding": ((1, 2, 6, 6), dict(kernel_size=3, stride=2, padding=1,
                                                          ceil_mode=True)),
    "ceil_last_window_dropped": ((1, 2, 5, 5), dict(kernel_size=2, stride=3, padding=1,
                                                    ceil_mode=True)),
    "kernel_covers_input": ((2, 3, 4, 3), dict(kernel_size=(4, 3))),
    "one_by_one": ((2, 2, 3, 4), dict(kernel_size=1)),
}


def test_ceil_mode_edges_exercise_what_they_claim():
    """The named ceil_mode cases really do what their names say (a last window reaching past
    the padded input; one starting in the right padding, which is dropped), as the PyTorch
    output sizes confirm."""
    torch = require_torch()
    for name in ("ceil_window_past_padded_input", "ceil_window_past_right_padding",
                 "ceil_last_window_dropped"):
        shape, kw = POOL_EDGES[name]
        k, s, p, length = kw["kernel_size"], kw["stride"], kw.get("padding", 0), shape[-1]
        rounded_up = -(-(length + 2 * p - k) // s) + 1
        t_out = torch.nn.functional.max_pool2d(torch.zeros(shape), **kw).shape[-1]
        last_start = (t_out - 1) * s - p
        if name == "ceil_window_past_padded_input":
            assert last_start + k > length + p
        if name == "ceil_window_past_right_padding":
            assert last_start < length < length + p < last_start + k
        if name == "ceil_last_window_dropped":
            assert t_out == rounded_up - 1
            assert (rounded_up - 1) * s - p >= length  # the dropped window starts in the padding
        assert pool_output_size(length, k, s, p, 1, True) == t_out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(POOL_EDGES))
def test_pool_edges_match_torch(case, dtype):
    torch = require_torch()
    shape, kwargs = POOL_EDGES[case]
    x = np.random.default_rng(4).standard_normal(shape)
    _compare_max(torch, x, dtype, f"max_pool2d {case}", **kwargs)
    dilated = dict(kwargs, dilation=(2, 1))
    if _fits(shape[2:], **dilated):
        _compare_max(torch, x, dtype, f"max_pool2d {case} dilated", **dilated)
    for count_include_pad in (True, False):
        _compare_avg(torch, x, dtype, f"avg_pool2d {case}", count_include_pad=count_include_pad,
                     **kwargs)
    _compare_avg(torch, x, dtype, f"avg_pool2d {case} divisor", divisor_override=3, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", ["integers", "all_equal"])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                    dict(kernel_size=(3, 2), stride=2, padding=1, dilation=(1, 2),
                                         ceil_mode=True)])
def test_max_pool2d_ties_match_torch(kwargs, values, dtype):
    """Ties go to the first maximum in row-major window order: values, indices and the cells
    that receive the gradient all match PyTorch."""
    torch = require_torch()
    shape = (2, 3, 7, 6)
    if values == "integers":
        x = np.random.default_rng(5).integers(0, 3, shape).astype(np.float64)
    else:
        x = np.full(shape, 1.5)
    _compare_max(torch, x, dtype, f"max_pool2d ties {values}", **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_nan_is_the_maximum_as_torch(dtype):
    torch = require_torch()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2, 6, 6))
    x[0, 0, 0, 0] = np.nan                 # one NaN in a window
    x[0, 1, 2, 2:4] = np.nan               # two NaNs in one window: PyTorch keeps the last
    x[1, 0, 4, 5] = x[1, 0, 5, 4] = np.nan
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)):
        _compare_max(torch, x, dtype, "max_pool2d nan", **kwargs)


def test_max_pool2d_all_minus_inf_and_signed_zero_as_torch():
    """A window of -inf values reports its first cell inside the input (padding never wins);
    between -0.0 and +0.0 the first one wins, sign included."""
    torch = require_torch()
    x = np.full((1, 2, 4, 5), -np.inf)
    x[0, 1] = np.where(np.random.default_rng(7).random((4, 5)) < 0.5, -0.0, 0.0)
    for kwargs in (dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2, ceil_mode=True)):
        ours, ours_idx = F.max_pool2d(pyconv.tensor(x), return_indices=True, **kwargs)
        theirs, theirs_idx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True,
                                                            **kwargs)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        np.testing.assert_array_equal(np.signbit(ours.numpy()), np.signbit(theirs.numpy()))
        np.testing.assert_array_equal(ours_idx.numpy(), theirs_idx.numpy())


def test_max_pool2d_window_without_input_cells():
    """Dilation can step a window over the whole input: PyTorch outputs -inf with its first
    tap position (outside the plane); no input cell influences that output, so no gradient."""
    torch = require_torch()
    x = pyconv.tensor(np.arange(32.0).reshape(1, 2, 4, 4), requires_grad=True)
    kwargs = dict(kernel_size=2, padding=1, dilation=5)
    y, idx = F.max_pool2d(x, return_indices=True, **kwargs)
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x.detach().numpy()), return_indices=True,
                                              **kwargs)
    np.testing.assert_array_equal(y.detach().numpy(), ty.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    y.sum().backward()
    assert not x.grad.numpy().any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_unbatched_and_empty_batch_match_torch(dtype):
    torch = require_torch()
    rng = np.random.default_rng(8)
    for shape in [(3, 7, 6), (0, 3, 7, 6)]:
        x = rng.standard_normal(shape)
        _compare_max(torch, x, dtype, f"max_pool2d {shape}", kernel_size=3, stride=2, padding=1)
        _compare_avg(torch, x, dtype, f"avg_pool2d {shape}", kernel_size=(2, 3), padding=(1, 0),
                     ceil_mode=True, count_include_pad=False)
        _compare_adaptive(torch, x, (4, None), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("in_hw,output_size", [
    ((8, 8), 4), ((8, 6), (2, 3)),             # sizes divide the input
    ((7, 9), (3, 4)), ((13, 5), (4, 3)),       # they do not: overlapping windows
    ((3, 4), (5, 7)), ((2, 2), (6, 3)),        # output larger than input
    ((5, 6), 1), ((5, 6), (5, 6)),             # global pooling, identity
    ((5, 6), (None, 4)), ((5, 6), (2, None)),  # None keeps the input size
])
def test_adaptive_avg_pool2d_edges_match_torch(in_hw, output_size, dtype):
    torch = require_torch()
    x = np.random.default_rng(9).standard_normal((2, 3) + in_hw)
    _compare_adaptive(torch, x, output_size, dtype)


def test_adaptive_avg_pool2d_empty_output():
    """PyTorch allows an output size of 0 (its backward then fails); the gradient is zero."""
    torch = require_torch()
    x = pyconv.randn(2, 3, 5, 6, dtype=np.float64, requires_grad=True)
    y = F.adaptive_avg_pool2d(x, (0, 3))
    assert y.shape == tuple(torch.nn.functional.adaptive_avg_pool2d(torch.zeros(2, 3, 5, 6),
                                                                    (0, 3)).shape)
    y.sum().backward()
    assert x.grad.shape == x.shape and not x.grad.numpy().any()


def test_adaptive_avg_pool2d_keeps_inf_and_nan_in_their_windows():
    torch = require_torch()
    x = np.random.default_rng(10).standard_normal((1, 2, 7, 9))
    x[0, 0, 3, 4], x[0, 1, 0, 0] = np.inf, np.nan
    ours = F.adaptive_avg_pool2d(pyconv.tensor(x), (3, 4)).numpy()
    theirs = torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), (3, 4)).numpy()
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-12, atol=1e-12)


def test_max_pool2d_indices_are_not_differentiable():
    x = pyconv.randn(2, 3, 6, 6, dtype=np.float64, requires_grad=True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert idx.dtype == np.int64 and not idx.requires_grad
    assert y.requires_grad
    assert isinstance(F.max_pool2d(x, 2), pyconv.Tensor)


# ---------------------------------------------------------------------------------------------
# kernels: dtypes and memory layout
# ---------------------------------------------------------------------------------------------


def _kernel_calls(x):
    """Every pooling kernel on x (N, C, 6, 5) with ceil_mode windows; all outputs by name."""
    geometry = ((3, 3), (2, 2), (1, 1))
    y, idx = numpy_ref.max_pool2d_forward(x, *geometry, (1, 1), True)
    avg = numpy_ref.avg_pool2d_forward(x, *geometry, True, False, None)
    adaptive = numpy_ref.adaptive_avg_pool2d_forward(x, (4, 3))
    g = np.asfortranarray(np.random.default_rng(14).standard_normal(y.shape).astype(x.dtype))
    g_adaptive = g[:, :, :, :3]
    return {
        "max_pool2d_forward": y,
        "max_pool2d_indices": idx,
        "max_pool2d_backward": numpy_ref.max_pool2d_backward(g, idx, x.shape,
                                                             *geometry, (1, 1)),
        "avg_pool2d_forward": avg,
        "avg_pool2d_backward": numpy_ref.avg_pool2d_backward(g, x.shape, *geometry, True, False,
                                                             None),
        "adaptive_avg_pool2d_forward": adaptive,
        "adaptive_avg_pool2d_backward": numpy_ref.adaptive_avg_pool2d_backward(g_adaptive,
                                                                               x.shape),
    }


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_keep_the_dtype_and_accept_non_contiguous_arrays(dtype):
    base = np.random.default_rng(11).standard_normal((2, 3, 6, 5)).astype(dtype)
    contiguous = _kernel_calls(base)
    strided = _kernel_calls(np.asfortranarray(base))
    for name, out in contiguous.items():
        expected = np.int64 if name == "max_pool2d_indices" else dtype
        assert out.dtype == expected, f"{name}: {out.dtype}"
        np.testing.assert_array_equal(strided[name], out, err_msg=name)


# ---------------------------------------------------------------------------------------------
# argument errors
# ---------------------------------------------------------------------------------------------


def _accepted(fn):
    try:
        fn()
    except (RuntimeError, ValueError):
        return False
    return True


def test_padding_limit_is_torchs():
    """padding <= kernel_size // 2 per dimension, for max (with or without dilation) and avg."""
    torch = require_torch()
    x = np.random.default_rng(12).standard_normal((1, 1, 16, 16)).astype(np.float32)
    px, tx = pyconv.tensor(x), torch.tensor(x)
    for k in range(1, 6):
        for p in range(0, 4):
            for d in (1, 2):
                for padding in ((p, p), (p, 0), (0, p)):
                    assert _accepted(lambda: F.max_pool2d(px, k, padding=padding, dilation=d)) == \
                        _accepted(lambda: torch.nn.functional.max_pool2d(tx, k, padding=padding,
                                                                         dilation=d)), (k, padding, d)
                assert _accepted(lambda: F.avg_pool2d(px, k, padding=p)) == \
                    _accepted(lambda: torch.nn.functional.avg_pool2d(tx, k, padding=p)), (k, p)


@pytest.mark.parametrize("fn", [lambda x: F.max_pool2d(x, 2), lambda x: F.avg_pool2d(x, 2),
                                lambda x: F.adaptive_avg_pool2d(x, 2)])
def test_input_errors(fn):
    with pytest.raises(TypeError, match=r"input must be a pyconv Tensor, got ndarray"):
        fn(np.zeros((1, 1, 4, 4)))
    with pytest.raises(TypeError, match=r"input must be a floating-point tensor.*int64"):
        fn(pyconv.tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"expected input with 3 or 4 dimensions.*got 2 \(shape \(4, 4\)\)"):
        fn(pyconv.randn(4, 4))
    with pytest.raises(ValueError, match=r"expected input with 3 or 4 dimensions.*got 5"):
        fn(pyconv.randn(1, 1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"input must have non-zero .*H and W.*\(1, 1, 0, 4\)"):
        fn(pyconv.randn(1, 1, 0, 4))


def test_max_and_avg_reject_empty_channels_like_torch():
    for fn in (F.max_pool2d, F.avg_pool2d):
        with pytest.raises(ValueError, match=r"non-zero C, H and W.*\(2, 0, 4, 4\)"):
            fn(pyconv.randn(2, 0, 4, 4), 2)
    assert F.adaptive_avg_pool2d(pyconv.randn(2, 0, 4, 4), 2).shape == (2, 0, 2, 2)


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_geometry_errors(op):
    fn = getattr(F, op)
    x = pyconv.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match=rf"{op}: kernel_size must be >= 1, got 0"):
        fn(x, 0)
    with pytest.raises(TypeError, match=rf"{op}: kernel_size must be an int or a pair of ints, got 2.0"):
        fn(x, 2.0)
    with pytest.raises(TypeError, match=rf"{op}: kernel_size must be an int or a pair"):
        fn(x, (2, 2, 2))
    with pytest.raises(ValueError, match=rf"{op}: stride must be >= 1, got \(1, 0\)"):
        fn(x, 2, stride=(1, 0))
    with pytest.raises(ValueError, match=rf"{op}: padding must be >= 0, got -1"):
        fn(x, 2, padding=-1)
    with pytest.raises(ValueError, match=rf"{op}: padding must be at most half of kernel_size.*"
                                         rf"\(kernel_size // 2 = \(1, 2\)\), got padding=\(2, 0\)"):
        fn(x, (3, 4), padding=(2, 0))
    with pytest.raises(ValueError, match=rf"{op}: output size would be \(0, 0\).*input size "
                                         rf"\(H, W\)=\(8, 8\) with kernel_size=\(9, 9\).*padding=\(0, 0\)"):
        fn(x, 9)
    with pytest.raises(ValueError, match=rf"{op}: output size would be \(2, 0\).*\(H, W\)=\(8, 3\)"):
        fn(pyconv.randn(2, 8, 3), (5, 4), padding=(2, 0))


def test_max_pool2d_dilation_errors():
    x = pyconv.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match=r"max_pool2d: dilation must be >= 1, got 0"):
        F.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match=r"output size would be \(0, 0\).*kernel_size=\(3, 3\).*dilation=\(4, 4\)"):
        F.max_pool2d(x, 3, dilation=4)


def test_avg_pool2d_divisor_override_errors():
    x = pyconv.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match=r"avg_pool2d: divisor_override must be non-zero, got 0"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(TypeError, match=r"avg_pool2d: divisor_override must be an int or None, got 2.5"):
        F.avg_pool2d(x, 2, divisor_override=2.5)


def test_adaptive_avg_pool2d_output_size_errors():
    x = pyconv.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be >= 0 in each "
                                         r"dimension, got \(-1, 3\)"):
        F.adaptive_avg_pool2d(x, (-1, 3))
    for bad in [(2, 2, 2), 2.0, (2.0, 2), "2"]:
        with pytest.raises(TypeError, match=r"adaptive_avg_pool2d: output_size must be an int or a pair"):
            F.adaptive_avg_pool2d(x, bad)


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------

LAYER_ARGS = {
    "MaxPool2d": [((2,), {}), (((2, 3),), dict(stride=1, padding=(1, 0), dilation=2,
                                               return_indices=True, ceil_mode=True)),
                  ((3, 2, 1), {})],
    "AvgPool2d": [((2,), {}), (((2, 3),), dict(stride=1, padding=(1, 0), ceil_mode=True,
                                               count_include_pad=False, divisor_override=3)),
                  ((3, [1, 2], 1), {})],
    "AdaptiveAvgPool2d": [((2,), {}), (((None, 3),), {}), (([2, 3],), {})],
}
LAYER_CASES = [(name, args, kwargs) for name, cases in LAYER_ARGS.items() for args, kwargs in cases]


@pytest.mark.parametrize("name,args,kwargs", LAYER_CASES)
def test_layers_match_torch(name, args, kwargs):
    torch = require_torch()
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    for attr in ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode",
                 "count_include_pad", "divisor_override", "output_size"):
        assert getattr(ours, attr, None) == getattr(theirs, attr, None), attr
    assert dict(ours.state_dict()) == {} and list(ours.parameters()) == []
    x = np.random.default_rng(13).standard_normal((2, 3, 7, 8))
    for dtype in DTYPES:
        compare_with_torch(ours, theirs, [x], dtype=dtype, name=name)
