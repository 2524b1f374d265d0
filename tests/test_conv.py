"""conv2d and conv_transpose2d: finite-difference gradients, PyTorch comparison (float64 and
float32) over seeded random and edge-case geometries, argument errors, and the Conv2d /
ConvTranspose2d layers."""

import math

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
import pyconv.nn as nn
from pyconv.backends.numpy_ref import conv as conv_kernels
from pyconv.testing import assert_close, gradcheck
from torch_compare import compare_with_torch, require_torch

# PyTorch warns that it copies the input for 'same' with even kernels; irrelevant here
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

# Each case: input shape, out channels, kernel (R, S) and keyword geometry. Kept small enough
# for gradcheck (two forwards per input element).
CONV2D_EDGES = {
    "stride_larger_than_kernel": dict(x=(2, 2, 7, 8), k=3, kernel=(2, 2), stride=3),
    "dilation": dict(x=(1, 2, 8, 7), k=3, kernel=(3, 3), dilation=2, padding=1),
    "dilation_non_square": dict(x=(1, 2, 9, 7), k=2, kernel=(2, 3), dilation=(3, 1), stride=(1, 2)),
    "depthwise": dict(x=(2, 3, 5, 5), k=3, kernel=(3, 3), groups=3, padding=1),
    "depthwise_multiplier": dict(x=(1, 3, 6, 5), k=6, kernel=(2, 3), groups=3),
    "groups2": dict(x=(1, 6, 5, 6), k=4, kernel=(3, 2), groups=2, stride=(2, 1)),
    "groups3_padded": dict(x=(1, 6, 4, 5), k=3, kernel=(2, 2), groups=3, padding=(1, 2)),
    "non_square": dict(x=(1, 3, 7, 9), k=2, kernel=(2, 4), stride=(2, 3), padding=(1, 2)),
    "same_odd": dict(x=(1, 3, 5, 6), k=2, kernel=(3, 5), padding="same"),
    "same_even": dict(x=(1, 3, 5, 6), k=2, kernel=(2, 4), padding="same"),
    "same_even_dilated": dict(x=(1, 2, 7, 6), k=2, kernel=(2, 3), dilation=(3, 2), padding="same"),
    "valid": dict(x=(2, 2, 5, 6), k=3, kernel=(3, 2), padding="valid"),
    "one_by_one": dict(x=(2, 4, 4, 5), k=3, kernel=(1, 1)),
    "one_by_one_strided": dict(x=(2, 3, 5, 5), k=2, kernel=(1, 1), stride=2),
    "kernel_fills_padded_input": dict(x=(2, 2, 3, 3), k=3, kernel=(5, 5), padding=1),
    "no_bias": dict(x=(2, 3, 5, 5), k=2, kernel=(3, 3), bias=False),
    "unbatched": dict(x=(3, 6, 5), k=2, kernel=(3, 2), padding=1, stride=(1, 2)),
    "unbatched_grouped": dict(x=(4, 5, 5), k=4, kernel=(2, 2), groups=2, dilation=2),
}

CONV_TRANSPOSE2D_EDGES = {
    "basic": dict(x=(2, 3, 4, 4), k=2, kernel=(3, 3)),
    "stride2_output_padding": dict(x=(1, 3, 4, 3), k=2, kernel=(3, 3), stride=2, padding=1,
                                   output_padding=1),
    "output_padding_below_dilation": dict(x=(1, 2, 4, 4), k=2, kernel=(2, 3), dilation=2,
                                          output_padding=1),
    "output_padding_at_least_stride": dict(x=(1, 2, 3, 4), k=3, kernel=(2, 2), stride=2,
                                           dilation=(3, 4), output_padding=(2, 3)),
    "groups2": dict(x=(1, 4, 4, 3), k=6, kernel=(2, 3), groups=2, stride=(1, 2)),
    "depthwise": dict(x=(2, 3, 3, 4), k=3, kernel=(3, 3), groups=3, padding=1),
    "dilation": dict(x=(1, 3, 4, 4), k=2, kernel=(3, 2), dilation=(2, 1), padding=(1, 0)),
    "non_square": dict(x=(1, 2, 3, 5), k=3, kernel=(2, 3), stride=(2, 1), padding=(1, 0),
                       output_padding=(1, 0)),
    "stride_larger_than_kernel": dict(x=(2, 2, 3, 3), k=2, kernel=(2, 2), stride=3,
                                      output_padding=2),
    "one_by_one": dict(x=(2, 3, 4, 4), k=4, kernel=(1, 1)),
    "padding_crops_everything_but_one": dict(x=(1, 2, 2, 2), k=2, kernel=(2, 2), padding=1),
    "no_bias": dict(x=(2, 2, 4, 3), k=3, kernel=(2, 2), stride=2, bias=False),
    "unbatched": dict(x=(3, 4, 3), k=2, kernel=(3, 2), stride=2, output_padding=1),
}


def _split(case):
    """A case -> (x shape, out channels, kernel, has bias, geometry kwargs)."""
    geometry = dict(case)
    x_shape, k, kernel = geometry.pop("x"), geometry.pop("k"), geometry.pop("kernel")
    return x_shape, k, kernel, geometry.pop("bias", True), geometry


def _arrays(case, transposed, seed):
    """x, weight (OIHW for conv2d, IOHW for conv_transpose2d) and, if any, bias as float64."""
    x_shape, k, kernel, bias, geometry = _split(case)
    groups = geometry.get("groups", 1)
    c = x_shape[-3]
    w_shape = (c, k // groups) + kernel if transposed else (k, c // groups) + kernel
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if bias:
        arrays.append(rng.standard_normal(k))
    return arrays, geometry


def _ops(transposed, geometry):
    """(pyconv function, torch function) of (x, weight[, bias]) with the geometry bound."""
    torch = require_torch()
    ours = F.conv_transpose2d if transposed else F.conv2d
    theirs = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    return (lambda *a: ours(*a, **geometry)), (lambda *a: theirs(*a, **geometry))


def _random_case(seed, transposed):
    """A random valid geometry: groups, non-square kernels/strides/dilations, paddings, batch."""
    rng = np.random.default_rng(1000 + seed)

    def ints(low, high, n=2):
        return tuple(int(v) for v in rng.integers(low, high + 1, n))

    groups = int(rng.choice([1, 1, 2, 3]))
    c, k = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    kernel, dilation = ints(1, 4), ints(1, 3)
    stride = ints(1, 3) if rng.random() < 0.6 else (1, 1)  # stride 1 allows padding='same'
    case = dict(k=k, kernel=kernel, stride=stride, dilation=dilation, groups=groups,
                bias=bool(rng.random() < 0.7))
    extent = [d * (r - 1) + 1 for r, d in zip(kernel, dilation)]
    if transposed:
        padding = ints(0, 2)
        case["output_padding"] = tuple(int(rng.integers(0, max(s, d)))
                                       for s, d in zip(stride, dilation))
        # the output (H-1)*s - 2p + extent + op must be at least 1
        size = [max(1, -(-(2 * p - e - o + 1) // s) + 1) + int(rng.integers(0, 4))
                for p, e, o, s in zip(padding, extent, case["output_padding"], stride)]
    else:
        choice = rng.integers(0, 4)
        if choice == 0 and stride == (1, 1):
            padding = "same"
            pads = [e - 1 for e in extent]
        elif choice == 1:
            padding = "valid"
            pads = [0, 0]
        else:
            padding = ints(0, 2)
            pads = [2 * p for p in padding]
        size = [max(1, e - p) + int(rng.integers(0, 7)) for e, p in zip(extent, pads)]
    case["padding"] = padding
    case["x"] = (int(rng.integers(1, 4)), c) + tuple(size)
    return case


def _compare(case, transposed, dtype, seed=0):
    arrays, geometry = _arrays(case, transposed, seed)
    ours, theirs = _ops(transposed, geometry)
    name = ("conv_transpose2d" if transposed else "conv2d") + f" {case}"
    compare_with_torch(ours, theirs, arrays, dtype=dtype, name=name, seed=seed)


# ----- gradients by finite differences ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONV2D_EDGES))
def test_conv2d_gradcheck(name):
    arrays, geometry = _arrays(CONV2D_EDGES[name], False, seed=1)
    tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]
    assert gradcheck(lambda *t: F.conv2d(*t, **geometry), tensors)


@pytest.mark.parametrize("name", sorted(CONV_TRANSPOSE2D_EDGES))
def test_conv_transpose2d_gradcheck(name):
    arrays, geometry = _arrays(CONV_TRANSPOSE2D_EDGES[name], True, seed=1)
    tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]
    assert gradcheck(lambda *t: F.conv_transpose2d(*t, **geometry), tensors)


# ----- PyTorch comparison ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CONV2D_EDGES))
def test_conv2d_edges_match_torch(name, dtype):
    _compare(CONV2D_EDGES[name], False, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CONV_TRANSPOSE2D_EDGES))
def test_conv_transpose2d_edges_match_torch(name, dtype):
    _compare(CONV_TRANSPOSE2D_EDGES[name], True, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(24))
def test_conv2d_random_geometries_match_torch(seed, dtype):
    _compare(_random_case(seed, False), False, dtype, seed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(24))
def test_conv_transpose2d_random_geometries_match_torch(seed, dtype):
    _compare(_random_case(seed, True), True, dtype, seed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lenet_sized_layers_match_torch(dtype):
    torch = require_torch()
    rng = np.random.default_rng(5)
    for x_shape, w_shape in [((4, 1, 28, 28), (8, 1, 3, 3)), ((4, 8, 13, 13), (16, 8, 3, 3))]:
        arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape) / 3,
                  rng.standard_normal(w_shape[0])]
        compare_with_torch(F.conv2d, torch.nn.functional.conv2d, arrays, dtype=dtype,
                           name=f"conv2d {x_shape} * {w_shape}")


def test_non_contiguous_input_matches_torch():
    torch = require_torch()
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))]
    compare_with_torch(lambda x, w: F.conv2d(x.transpose(2, 3), w, stride=(2, 1), padding=1),
                       lambda x, w: torch.nn.functional.conv2d(x.transpose(2, 3), w,
                                                               stride=(2, 1), padding=1),
                       arrays, name="conv2d of a transposed view")
    compare_with_torch(lambda x, w: F.conv_transpose2d(x.transpose(2, 3), w.transpose(2, 3)),
                       lambda x, w: torch.nn.functional.conv_transpose2d(x.transpose(2, 3),
                                                                         w.transpose(2, 3)),
                       [rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 2, 2, 3))],
                       name="conv_transpose2d of transposed views")


@pytest.mark.parametrize("transposed", [False, True])
def test_float32_stays_float32_including_gradients(transposed):
    arrays, geometry = _arrays(dict(x=(2, 2, 5, 5), k=2, kernel=(3, 3), stride=2), transposed, 0)
    tensors = [pyconv.tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    y = (F.conv_transpose2d if transposed else F.conv2d)(*tensors, **geometry)
    assert y.dtype == np.float32
    y.sum().backward()
    assert [t.grad.dtype for t in tensors] == [np.dtype(np.float32)] * 3


def test_only_requested_gradients_are_computed():
    x = pyconv.randn(2, 3, 5, 5)
    w = pyconv.randn(4, 3, 3, 3, requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad is not None and w.grad.shape == (4, 3, 3, 3)


# ----- kernels: the transposed convolution is the adjoint of the convolution ------------------


@pytest.mark.parametrize("seed", range(8))
def test_conv_transpose2d_forward_is_the_adjoint_of_conv2d_forward(seed):
    """<conv_transpose2d(x), z> == <x, conv2d(z)> for one geometry (independent of torch)."""
    arrays, geometry = _arrays(_random_case(seed, True), True, seed)
    x, weight = arrays[0], arrays[1]
    stride, padding, dilation, extra, groups = (
        geometry[key] for key in ("stride", "padding", "dilation", "output_padding", "groups"))
    y = conv_kernels.conv_transpose2d_forward(x, weight, None, stride, padding, extra, dilation,
                                              groups)
    z = np.random.default_rng(seed).standard_normal(y.shape)
    ph, pw = padding
    back = conv_kernels.conv2d_forward(z, weight, None, stride, (ph, ph, pw, pw), dilation, groups)
    # with output_padding >= stride conv2d sees windows past the last input row: drop them
    back = back[:, :, : x.shape[2], : x.shape[3]]
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(y * z), np.sum(x * back), rtol=1e-10)


# ----- argument errors -------------------------------------------------------------------------


def _t(*shape, dtype=np.float32):
    return pyconv.tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype))


def _ints(*shape):
    return pyconv.tensor(np.ones(shape, dtype=np.int64))


CONV2D_ERRORS = {
    "input_2d": (lambda: F.conv2d(_t(3, 7), _t(4, 3, 3, 3)), ValueError,
                 r"conv2d: expected input with 3 or 4 dimensions.*got 2 \(shape \(3, 7\)\)"),
    "input_5d": (lambda: F.conv2d(_t(1, 1, 3, 7, 7), _t(4, 3, 3, 3)), ValueError,
                 r"expected input with 3 or 4 dimensions.*got 5"),
    "weight_3d": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3)), ValueError,
                  r"expected weight with 4 dimensions.*got 3 \(shape \(4, 3, 3\)\)"),
    "channel_mismatch": (lambda: F.conv2d(_t(1, 4, 7, 7), _t(5, 3, 3, 3)), ValueError,
                         r"conv2d: input has 4 channels but weight expects 3 "
                         r"\(weight.shape\[1\]=3 \* groups=1\)"),
    "channel_mismatch_grouped": (lambda: F.conv2d(_t(1, 6, 7, 7), _t(4, 2, 3, 3), groups=2),
                                 ValueError, r"input has 6 channels but weight expects 4 "
                                 r"\(weight.shape\[1\]=2 \* groups=2\)"),
    "groups_not_dividing_out_channels": (
        lambda: F.conv2d(_t(1, 4, 7, 7), _t(5, 2, 3, 3), groups=2), ValueError,
        r"groups=2 must divide the output channels \(weight.shape\[0\]\), got 5"),
    "groups_not_dividing_in_channels": (
        lambda: F.conv2d(_t(1, 5, 7, 7), _t(4, 2, 3, 3), groups=2), ValueError,
        r"groups=2 must divide the input channels \(input.shape\[-3\]\), got 5"),
    "groups_zero": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), groups=0), ValueError,
                    r"groups must be >= 1, got 0"),
    "groups_float": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), groups=1.5), TypeError,
                     r"groups must be an int"),
    "int_input": (lambda: F.conv2d(_ints(1, 3, 7, 7), _t(4, 3, 3, 3)), TypeError,
                  r"conv2d: input must be a floating-point tensor.*int64"),
    "int_weight": (lambda: F.conv2d(_t(1, 3, 7, 7), _ints(4, 3, 3, 3)), TypeError,
                   r"conv2d: weight must be a floating-point tensor.*int64"),
    "dtype_mismatch": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3, dtype=np.float64)),
                       TypeError, r"weight has dtype float64 but input has dtype float32"),
    "bias_dtype": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), _t(4, dtype=np.float64)),
                   TypeError, r"bias has dtype float64 but input has dtype float32"),
    "bias_shape": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), _t(5)), ValueError,
                   r"conv2d: expected bias of shape \(4,\), got \(5,\)"),
    "bias_2d": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), _t(4, 1)), ValueError,
                r"expected bias with 1 dimensions"),
    "not_a_tensor": (lambda: F.conv2d(np.ones((1, 3, 7, 7)), _t(4, 3, 3, 3)), TypeError,
                     r"conv2d: input must be a pyconv Tensor, got ndarray"),
    "kernel_larger_than_padded_input": (
        lambda: F.conv2d(_t(1, 3, 2, 2), _t(4, 3, 3, 3), padding=1, dilation=2), ValueError,
        r"padded input size \(4 x 4\) is smaller than the dilated kernel size \(5 x 5\)"),
    "kernel_larger_than_input_one_side": (
        lambda: F.conv2d(_t(1, 3, 9, 2), _t(4, 3, 3, 3)), ValueError,
        r"padded input size \(9 x 2\) is smaller than the dilated kernel size \(3 x 3\)"),
    "negative_padding": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), padding=-1),
                         ValueError, r"conv2d: padding must be >= 0, got -1"),
    "negative_padding_pair": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), padding=(1, -2)),
                              ValueError, r"padding must be >= 0, got \(1, -2\)"),
    "same_with_stride": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), stride=2,
                                          padding="same"),
                         ValueError, r"padding='same' is not supported for strided"),
    "unknown_padding_string": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), padding="full"),
                               ValueError, r"padding must be an int, a pair, 'valid' or 'same'"),
    "zero_stride": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), stride=(1, 0)), ValueError,
                    r"stride must be >= 1"),
    "zero_dilation": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), dilation=0), ValueError,
                      r"dilation must be >= 1"),
    "stride_triple": (lambda: F.conv2d(_t(1, 3, 7, 7), _t(4, 3, 3, 3), stride=(1, 1, 1)),
                      TypeError, r"stride must be an int or a pair of ints"),
}

CONV_TRANSPOSE2D_ERRORS = {
    "input_2d": (lambda: F.conv_transpose2d(_t(3, 7), _t(3, 4, 3, 3)), ValueError,
                 r"conv_transpose2d: expected input with 3 or 4 dimensions"),
    "weight_5d": (lambda: F.conv_transpose2d(_t(1, 3, 7, 7), _t(3, 4, 3, 3, 1)), ValueError,
                  r"expected weight with 4 dimensions"),
    "channel_mismatch": (lambda: F.conv_transpose2d(_t(1, 4, 5, 5), _t(3, 2, 3, 3)), ValueError,
                         r"conv_transpose2d: input has 4 channels but weight expects 3 "
                         r"\(weight.shape\[0\]=3\)"),
    "groups_not_dividing_in_channels": (
        lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), groups=2), ValueError,
        r"groups=2 must divide the input channels \(weight.shape\[0\]\), got 3"),
    "output_padding_not_below_stride": (
        lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), stride=2, output_padding=2),
        ValueError, r"output_padding must be smaller than either stride or dilation"),
    "output_padding_without_stride": (
        lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), output_padding=(0, 1)),
        ValueError, r"output_padding must be smaller than either stride or dilation.*"
                    r"output_padding=\(0, 1\), stride=\(1, 1\), dilation=\(1, 1\)"),
    "negative_output_padding": (
        lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), output_padding=-1),
        ValueError, r"output_padding must be >= 0"),
    "negative_padding": (lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3), padding=-1),
                         ValueError, r"conv_transpose2d: padding must be >= 0"),
    "string_padding": (lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 2, 3, 3),
                                                  padding="same"),
                       TypeError, r"padding must be an int or a pair of ints"),
    "output_not_positive": (lambda: F.conv_transpose2d(_t(1, 3, 2, 2), _t(3, 2, 3, 3),
                                                       padding=3),
                            ValueError, r"output size \(-2 x -2\) is not positive"),
    "int_input": (lambda: F.conv_transpose2d(_ints(1, 3, 5, 5), _t(3, 2, 3, 3)), TypeError,
                  r"conv_transpose2d: input must be a floating-point tensor.*int64"),
    "dtype_mismatch": (lambda: F.conv_transpose2d(_t(1, 3, 5, 5, dtype=np.float64),
                                                  _t(3, 2, 3, 3)),
                       TypeError, r"weight has dtype float32 but input has dtype float64"),
    "bias_shape": (lambda: F.conv_transpose2d(_t(1, 4, 5, 5), _t(4, 3, 3, 3), _t(3), groups=2),
                   ValueError, r"expected bias of shape \(6,\), got \(3,\)"),
}


@pytest.mark.parametrize("name", sorted(CONV2D_ERRORS))
def test_conv2d_errors_name_the_argument(name):
    call, error, message = CONV2D_ERRORS[name]
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("name", sorted(CONV_TRANSPOSE2D_ERRORS))
def test_conv_transpose2d_errors_name_the_argument(name):
    call, error, message = CONV_TRANSPOSE2D_ERRORS[name]
    with pytest.raises(error, match=message):
        call()


# ----- layers ----------------------------------------------------------------------------------

CONV2D_LAYERS = [
    ((1, 32, 3), {}),
    ((4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    ((3, 5, 4), dict(padding="same", bias=False)),
    ((4, 4, 3), dict(padding="valid", groups=4)),
]
CONV_TRANSPOSE2D_LAYERS = [
    ((3, 4, 3), {}),
    ((4, 6, (3, 2)), dict(stride=2, padding=(1, 0), output_padding=(1, 0), groups=2)),
    ((2, 3, 2), dict(dilation=2, output_padding=1, bias=False)),
]


def _torch_and_pyconv_layers(name, args, kwargs):
    torch = require_torch()
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    ours = getattr(nn, name)(*args, **kwargs, dtype=np.float64)
    ours.load_state_dict({key: value.detach().numpy()
                          for key, value in theirs.state_dict().items()})
    return torch, theirs, ours


@pytest.mark.parametrize("name, args, kwargs",
                         [("Conv2d",) + c for c in CONV2D_LAYERS]
                         + [("ConvTranspose2d",) + c for c in CONV_TRANSPOSE2D_LAYERS])
def test_layer_loaded_from_torch_state_dict_matches_torch(name, args, kwargs):
    torch, theirs, ours = _torch_and_pyconv_layers(name, args, kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(3).standard_normal((2, args[0], 9, 8))
    compare_with_torch(ours, theirs, [x], name=name)
    ours.zero_grad()
    theirs.zero_grad()
    y_ours, y_theirs = ours(pyconv.tensor(x)), theirs(torch.tensor(x))
    w = np.random.default_rng(4).standard_normal(y_theirs.shape)
    (y_ours * pyconv.tensor(w)).sum().backward()
    (y_theirs * torch.tensor(w)).sum().backward()
    for key, param in theirs.named_parameters():
        assert_close(getattr(ours, key).grad, param.grad.numpy(), atol=1e-9,
                                    rtol=1e-7, name=f"{name}.{key}.grad")


def test_conv_transpose2d_layer_output_size_matches_torch():
    torch, theirs, ours = _torch_and_pyconv_layers("ConvTranspose2d", (3, 2, 3), dict(stride=3))
    x = np.random.default_rng(5).standard_normal((1, 3, 4, 5))
    for size in [(12, 15), (14, 17), [1, 2, 13, 16]]:
        compare_with_torch(lambda t: ours(t, output_size=size),
                           lambda t: theirs(t, output_size=size), [x], name=f"size {size}")
    with pytest.raises(ValueError, match=r"output_size of \(15, 15\).*range from 12 to 14"):
        ours(pyconv.tensor(x), output_size=(15, 15))


def test_layer_unbatched_input():
    layer = nn.Conv2d(3, 2, 3, padding=1)
    x = pyconv.randn(3, 5, 5)
    np.testing.assert_allclose(layer(x).detach().numpy(), layer(x.unsqueeze(0)).detach().numpy()[0],
                               rtol=1e-6)


@pytest.mark.parametrize("name, args, fan_in", [
    ("Conv2d", (16, 32, 3), 16 * 9),
    ("Conv2d", (16, 32, (3, 2), 1, 0, 1, 4), 4 * 6),
    ("ConvTranspose2d", (16, 4, 3), 4 * 9),  # PyTorch's fan_in: weight.size(1) * kH * kW
    ("ConvTranspose2d", (8, 12, 2, 1, 0, 0, 2), 6 * 4),
])
def test_default_initialisation_bounds(name, args, fan_in):
    pyconv.manual_seed(0)
    layer = getattr(nn, name)(*args)
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) and the bias share this bound
    for param in (layer.weight, layer.bias):
        values = param.detach().numpy()
        assert values.dtype == np.float32
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.8 * bound
    pyconv.manual_seed(0)
    again = getattr(nn, name)(*args)
    np.testing.assert_array_equal(again.weight.detach().numpy(), layer.weight.detach().numpy())


def test_layer_attributes_and_parameter_shapes():
    conv = nn.Conv2d(4, 6, (3, 2), stride=2, groups=2, bias=False)
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation) == ((3, 2), (2, 2),
                                                                            (0, 0), (1, 1))
    assert conv.weight.shape == (6, 2, 3, 2) and conv.bias is None
    assert [k for k, _ in conv.named_parameters()] == ["weight"]
    assert not conv.transposed and conv.output_padding == (0, 0)
    up = nn.ConvTranspose2d(4, 6, 3, groups=2, output_padding=1, stride=2)
    assert up.weight.shape == (4, 3, 3, 3) and up.bias.shape == (6,)
    assert up.transposed and up.output_padding == (1, 1)
    assert nn.Conv2d(1, 2, 3, dtype=np.float64).weight.dtype == np.float64


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.Conv2d(4, 6, 3, groups=3), ValueError, r"in_channels must be divisible by groups"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, r"out_channels must be divisible by groups"),
    (lambda: nn.Conv2d(4, 6, 3, groups=0), ValueError, r"groups must be a positive integer"),
    (lambda: nn.Conv2d(4, 6, 3, padding="full"), ValueError, r"invalid padding string 'full'"),
    (lambda: nn.Conv2d(4, 6, 3, stride=2, padding="same"), ValueError,
     r"padding='same' is not supported for strided"),
    (lambda: nn.Conv2d(4, 6, 3, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: nn.Conv2d(4, 6, 0), ValueError, r"kernel_size must be >= 1"),
    (lambda: nn.Conv2d(4, 6, 3, padding_mode="reflect"), NotImplementedError,
     r"padding_mode='reflect' is not implemented"),
    (lambda: nn.Conv2d(4, 6, 3, padding_mode="mirror"), ValueError,
     r"padding_mode must be one of"),
    (lambda: nn.ConvTranspose2d(4, 6, 3, padding_mode="circular"), ValueError,
     r'only "zeros" padding mode is supported'),
    (lambda: nn.Conv2d(4, 6, 3, dtype=np.int64), TypeError, r"dtype must be a floating-point"),
])
def test_layer_constructor_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()
