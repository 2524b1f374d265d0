"""The cpu backend's C++ GEMM, linear and conv2d kernels (csrc/cpu/) against the NumPy float64
reference: seeded random shapes and the conv edge cases of test_conv.py, float64 and float32, at 1
and 2 threads; blocking boundaries of the packed GEMM; non-contiguous and misaligned inputs
through the backend module; errors at the native boundary; the op layer running on it."""

import numpy as np
import pytest

import pyconv
from pyconv import backends
from pyconv.backends import numpy_ref
from pyconv.shapes import conv_padding, pair
from cpu_support import assert_close_to_reference
from test_conv import CONV2D_EDGES

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None or not hasattr(_C, "conv2d_forward"),
                                reason="pyconv._C with the cpu kernels is not built")

# relative to the output's scale (its largest magnitude)
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-4}


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


def assert_matches(got, want, dtype, what=""):
    assert_close_to_reference(got, want, dtype, TOLERANCE[dtype], what)


# ---------------------------------------------------------------------------------------------
# GEMM
# ---------------------------------------------------------------------------------------------

# (M, N, K): tiny, tile edges (MR=6, NR=16/8), and past the KC=256 / MC=144 / NC=1024 blocks
GEMM_SHAPES = [(1, 1, 1), (5, 7, 3), (6, 16, 8), (13, 33, 17), (145, 40, 257), (20, 1030, 70),
               (150, 300, 600)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", GEMM_SHAPES, ids=str)
def test_gemm_all_transpositions_alpha_beta(shape, dtype, threads):
    m, n, k = shape
    rng = np.random.default_rng(m * 1000 + n)
    for trans_a in (False, True):
        for trans_b in (False, True):
            a = rng.standard_normal((k, m) if trans_a else (m, k))
            b = rng.standard_normal((n, k) if trans_b else (k, n))
            c0 = rng.standard_normal((m, n))
            want = 0.5 * (a.T if trans_a else a) @ (b.T if trans_b else b) - 2.0 * c0
            c = c0.astype(dtype)
            _C.gemm(c, a.astype(dtype), b.astype(dtype), alpha=0.5, beta=-2.0, trans_a=trans_a,
                    trans_b=trans_b)
            assert_matches(c, want, dtype, f"gemm {shape} trans {trans_a, trans_b}")


def test_gemm_beta_zero_ignores_nan_in_c_and_k_zero_scales():
    c = np.full((7, 9), np.nan, np.float32)
    a, b = np.ones((7, 3), np.float32), np.ones((3, 9), np.float32)
    _C.gemm(c, a, b)
    assert np.all(c == 3)
    _C.gemm(c, np.ones((7, 0), np.float32), np.ones((0, 9), np.float32), beta=0.5)
    assert np.all(c == 1.5)


# ---------------------------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------------------------

LINEAR_SHAPES = [(1, 1, 1), (3, 5, 2), (7, 20, 13), (64, 300, 10), (200, 33, 150)]  # (M, I, O)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=str)
def test_linear_matches_reference(shape, dtype, threads, cpu):
    m, i, o = shape
    rng = np.random.default_rng(m + i + o)
    x, w, bias, gy = (rng.standard_normal(s) for s in [(m, i), (o, i), (o,), (m, o)])
    for b in (bias, None):
        got = cpu.linear_forward(x.astype(dtype), w.astype(dtype), None if b is None else b.astype(dtype))
        assert_matches(got, numpy_ref.linear_forward(x, w, b), dtype, f"linear_forward {shape}")
    assert_matches(cpu.linear_backward_input(gy.astype(dtype), w.astype(dtype)),
                   numpy_ref.linear_backward_input(gy, w), dtype, "linear_backward_input")
    assert_matches(cpu.linear_backward_weight(gy.astype(dtype), x.astype(dtype)),
                   numpy_ref.linear_backward_weight(gy, x), dtype, "linear_backward_weight")


# ---------------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------------


def conv_case(x_shape, k, kernel, stride=1, padding=0, dilation=1, groups=1, bias=True):
    """(x shape (batched), weight shape, has bias, contract geometry) of a test_conv.py-style case."""
    if len(x_shape) == 3:
        x_shape = (1,) + tuple(x_shape)
    stride, dilation = pair(stride, "stride", "t"), pair(dilation, "dilation", "t")
    pads = (tuple(padding) if isinstance(padding, tuple) and len(padding) == 4  # asymmetric
            else conv_padding(padding, tuple(kernel), stride, dilation))
    w_shape = (k, x_shape[1] // groups) + tuple(kernel)
    return tuple(x_shape), w_shape, bias, dict(stride=stride, padding=pads, dilation=dilation,
                                               groups=groups)


def check_conv(cpu, case, dtype, seed):
    x_shape, w_shape, has_bias, geometry = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    bias = rng.standard_normal(w_shape[0]) if has_bias else None
    want_y = numpy_ref.conv2d_forward(x, w, bias, **geometry)
    cast = (lambda a: None if a is None else a.astype(dtype))
    y = cpu.conv2d_forward(cast(x), cast(w), cast(bias), **geometry)
    assert_matches(y, want_y, dtype, f"conv2d_forward {case}")
    gy = rng.standard_normal(want_y.shape)
    assert_matches(cpu.conv2d_backward_input(cast(gy), cast(w), x_shape, **geometry),
                   numpy_ref.conv2d_backward_input(gy, w, x_shape, **geometry), dtype,
                   f"conv2d_backward_input {case}")
    assert_matches(cpu.conv2d_backward_weight(cast(gy), cast(x), w_shape, **geometry),
                   numpy_ref.conv2d_backward_weight(gy, x, w_shape, **geometry), dtype,
                   f"conv2d_backward_weight {case}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CONV2D_EDGES))
def test_conv2d_edge_cases_match_reference(name, dtype, threads, cpu):
    spec = dict(CONV2D_EDGES[name])
    case = conv_case(spec.pop("x"), spec.pop("k"), spec.pop("kernel"), **spec)
    check_conv(cpu, case, dtype, seed=len(name))


def random_conv_case(seed):
    rng = np.random.default_rng(2000 + seed)

    def ints(low, high):
        return tuple(int(v) for v in rng.integers(low, high + 1, 2))

    groups = int(rng.choice([1, 1, 2, 3]))
    c, k = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 9))
    kernel, dilation, stride = ints(1, 4), ints(1, 3), ints(1, 3)
    padding = tuple(int(v) for v in rng.integers(0, 3, 4))  # asymmetric: top, bottom, left, right
    extent = [d * (r - 1) + 1 for r, d in zip(kernel, dilation)]
    size = [max(1, e - padding[2 * i] - padding[2 * i + 1]) + int(rng.integers(0, 9))
            for i, e in enumerate(extent)]
    x_shape = (int(rng.integers(1, 4)), c) + tuple(size)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x_shape, (k, c // groups) + kernel, bool(rng.random() < 0.7), geometry


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(16))
def test_conv2d_random_geometries_match_reference(seed, dtype, threads, cpu):
    check_conv(cpu, random_conv_case(seed), dtype, seed)


# Shapes past the GEMM blocks: C*R*S > KC, P*Q > NC, K > MC; strided and pointwise variants, and
# a LeNet-like first layer (C = 1) and depthwise layer.
LARGE_CONV_CASES = {
    "deep_3x3": conv_case((2, 40, 34, 34), 150, (3, 3), padding=1),
    "strided_3x3": conv_case((2, 30, 23, 21), 20, (3, 3), stride=2, padding=(1, 0)),
    "pointwise": conv_case((2, 300, 9, 8), 20, (1, 1)),
    "first_layer": conv_case((3, 1, 28, 28), 32, (3, 3)),
    "depthwise": conv_case((2, 16, 12, 12), 16, (3, 3), padding=1, groups=16),
    # >= 64 channels per group at stride 1: the input gradient is a rotated-kernel convolution
    "wide_3x3": conv_case((2, 64, 10, 19), 8, (3, 3), padding=(1, 2)),
    "wide_grouped_dilated": conv_case((1, 128, 9, 8), 4, (2, 3), padding=(0, 2, 1, 0),
                                      dilation=(2, 1), groups=2),
    "wide_padding_past_extent": conv_case((1, 64, 5, 6), 3, (2, 2), padding=(3, 0, 2, 3)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(LARGE_CONV_CASES))
def test_conv2d_larger_shapes_match_reference(name, dtype, threads, cpu):
    check_conv(cpu, LARGE_CONV_CASES[name], dtype, seed=7)


# The weight gradient reads a zero-padded channels-last copy of x, in chunks of images (~512 KiB),
# and packs NR channels of one tap with one copy when C/G is a multiple of NR: channel counts on
# and off that path, taps straddling panels, several chunks (float64 images of ~190 KiB), strides
# and dilations that skip padded rows and columns.
WEIGHT_GRAD_CASES = {
    "channels_16x": conv_case((3, 32, 11, 9), 20, (3, 3)),
    "channels_odd": conv_case((2, 21, 9, 10), 13, (3, 3), padding=1),
    "several_chunks": conv_case((24, 48, 20, 20), 7, (3, 3), padding=1),
    "grouped_16x": conv_case((2, 64, 7, 7), 8, (3, 3), padding=(2, 0, 1, 1), groups=2),
    "strided_dilated": conv_case((2, 32, 17, 15), 9, (3, 2), stride=(2, 3), padding=(1, 2, 0, 3),
                                 dilation=(2, 1)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(WEIGHT_GRAD_CASES))
def test_conv2d_weight_gradient_matches_reference(name, dtype, threads, cpu):
    x_shape, w_shape, _, geometry = WEIGHT_GRAD_CASES[name]
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal(x_shape)
    gy = rng.standard_normal(numpy_ref.conv2d_forward(x, np.zeros(w_shape), None, **geometry).shape)
    assert_matches(cpu.conv2d_backward_weight(gy.astype(dtype), x.astype(dtype), w_shape, **geometry),
                   numpy_ref.conv2d_backward_weight(gy, x, w_shape, **geometry), dtype,
                   f"conv2d_backward_weight {name}")


def test_results_do_not_depend_on_the_thread_count(cpu):
    x_shape, w_shape, _, geometry = LARGE_CONV_CASES["strided_3x3"]
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    before = pyconv.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            pyconv.set_num_threads(n)
            y = cpu.conv2d_forward(x, w, None, **geometry)
            outs.append((y, cpu.conv2d_backward_input(y, w, x_shape, **geometry),
                         cpu.conv2d_backward_weight(y, x, w_shape, **geometry)))
    finally:
        pyconv.set_num_threads(before)
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# layouts the backend module accepts, errors the native boundary raises, the arena
# ---------------------------------------------------------------------------------------------


def misaligned(a):
    """A copy of a whose data pointer is not aligned to its element size."""
    raw = np.empty(a.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % a.dtype.itemsize != 0
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_contiguous_and_misaligned_inputs_through_the_backend(dtype, cpu):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 7, 3, 6)).astype(dtype).transpose(0, 3, 2, 1)  # (2, 6, 3, 7)
    w = rng.standard_normal((4, 6, 2, 2)).astype(dtype)[:, :, ::-1]
    geometry = dict(stride=(1, 2), padding=(1, 0, 1, 1), dilation=(1, 1), groups=1)
    want = numpy_ref.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, **geometry)
    assert_matches(cpu.conv2d_forward(x, w, None, **geometry), want, dtype, "non-contiguous")
    assert_matches(cpu.conv2d_forward(misaligned(x), misaligned(w), None, **geometry), want, dtype,
                   "misaligned")
    a = rng.standard_normal((9, 5)).astype(dtype)
    wl, bl = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal(4).astype(dtype)
    weight = misaligned(wl).T  # (4, 5), neither contiguous nor aligned
    assert_matches(cpu.linear_forward(a[::2], weight, misaligned(bl)),
                   numpy_ref.linear_forward(a[::2].astype(np.float64), wl.T.astype(np.float64),
                                            bl.astype(np.float64)), dtype, "linear views")


def test_bad_arguments_raise_errors_that_name_them():
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    g = ((1, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="x must be float32 or float64, got int64"):
        _C.conv2d_forward(x.astype(np.int64), w, None, *g)
    with pytest.raises(TypeError, match="weight must be float32 like the other arrays, got float64"):
        _C.conv2d_forward(x, w.astype(np.float64), None, *g)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        _C.conv2d_forward(x.transpose(0, 1, 3, 2), w, None, *g)
    with pytest.raises(ValueError, match="x must be aligned"):
        _C.conv2d_forward(misaligned(x), w, None, *g)
    with pytest.raises(ValueError, match="weight must have 4 dimensions, got shape \\(3, 2\\)"):
        _C.conv2d_forward(x, w[:, :, 0, 0].copy(), None, *g)
    with pytest.raises(ValueError, match="bias must have shape \\(3,\\), got \\(2,\\)"):
        _C.conv2d_forward(x, w, np.zeros(2, np.float32), *g)
    with pytest.raises(ValueError, match="does not fit input .* groups=2"):
        _C.conv2d_forward(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 2)
    with pytest.raises(ValueError, match="stride and dilation must be >= 1"):
        _C.conv2d_forward(x, w, None, (0, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"kernel \(dilated\) \(3, 3\) is larger than the padded input \(2, 5\)"):
        _C.conv2d_forward(x[:, :, :2].copy(), w, None, *g)
    with pytest.raises(ValueError, match="grad_y must have shape \\(2, 3, 3, 3\\)"):
        _C.conv2d_backward_input(np.zeros((1, 3, 3, 3), np.float32), w, (2, 2, 5, 5), *g)
    with pytest.raises(ValueError, match="input_shape must have 4 entries"):
        _C.conv2d_backward_input(np.zeros((1, 3, 3, 3), np.float32), w, (2, 5, 5), *g)
    with pytest.raises(ValueError, match="weight must have shape \\(4, 3\\), got \\(4, 2\\)"):
        _C.linear_forward(np.zeros((2, 3), np.float32), np.zeros((4, 2), np.float32), None)
    with pytest.raises(ValueError, match="c must be writeable"):
        c = np.zeros((2, 2), np.float32)
        c.flags.writeable = False
        _C.gemm(c, np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))


def test_sizes_whose_products_overflow_are_rejected_without_allocating():
    huge = 2 ** 31  # each dimension fits in 32 bits only just; their product overflows 64
    grad_y = np.zeros((1, 1, 1, 1), np.float32)
    w = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match="overflows 64 bits"):
        _C.conv2d_backward_input(grad_y, w, (1, huge, huge, huge), (1, 1), (0, 0, 0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="overflows 64 bits"):
        _C.conv2d_backward_weight(grad_y, np.zeros((1, 1, 1, 1), np.float32), (huge, huge, huge, 1),
                                  (1, 1), (0, 0, 0, 0), (1, 1), 1)


def test_workspace_is_kept_across_calls(cpu):
    x, w = np.ones((2, 8, 12, 12), np.float32), np.ones((16, 8, 3, 3), np.float32)
    geometry = dict(stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1)
    cpu.conv2d_forward(x, w, None, **geometry)
    reserved = _C.workspace_bytes()
    assert reserved > 0
    cpu.conv2d_forward(x, w, None, **geometry)
    assert _C.workspace_bytes() == reserved


# ---------------------------------------------------------------------------------------------
# the op layer on the cpu backend
# ---------------------------------------------------------------------------------------------


CONV_AND_LINEAR = (
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "linear_forward", "linear_backward_input", "linear_backward_weight",
)


def test_backend_marks_native_and_reference_kernels(cpu):
    for kernel in CONV_AND_LINEAR:
        assert getattr(cpu, kernel).runs_on_reference is False
    assert set(cpu.REFERENCE_KERNELS).isdisjoint(CONV_AND_LINEAR)
    assert "conv2d_forward" not in cpu.REFERENCE_KERNELS


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_and_linear_autograd_on_the_cpu_backend(dtype, cpu, monkeypatch):
    import pyconv.functional as F

    if "cpu" not in backends.available():
        backends.register("cpu", "pyconv.backends.cpu")
    calls = []
    for kernel in CONV_AND_LINEAR:
        real = getattr(cpu, kernel)
        monkeypatch.setattr(cpu, kernel, (lambda real, kernel: lambda *a: calls.append(kernel) or real(*a))(real, kernel))
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(2, 3, 9, 8), (4, 3, 3, 2), (4,), (5, 4 * 5 * 5), (5,)]]

    def run(backend):
        tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]
        x, w, b, lw, lb = tensors
        with backends.use(backend):
            h = F.conv2d(x, w, b, stride=(2, 2), padding=1)
            out = F.linear(h.reshape(2, -1), lw, lb)
            (out * out).sum().backward()
        return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]

    want = run("numpy")
    got = run("cpu")
    for g, r in zip(got, want):
        assert_matches(g, r, dtype, "autograd")
    assert set(calls) == set(CONV_AND_LINEAR)


# ---------------------------------------------------------------------------------------------
# Winograd F(4x4, 3x3): stride-1 3x3 forward and input gradient; F(3x3, 4x4): weight gradient
# ---------------------------------------------------------------------------------------------

# Float32 tolerance of the Winograd path: its transforms multiply values by up to 5 (B^T), 8
# (A^T) and sum 36 terms per tile, so rounding grows by about 20-50x over the direct sum; at
# C = 300 the measured error is ~6e-6 of the output scale (float64: ~1e-14). 5e-5 keeps a margin
# of 8x while still failing on any wrong tap, tile edge or padding (errors of order 1).
WINOGRAD_FLOAT32_TOLERANCE = 5e-5

# (x shape, K, padding (top, bottom, left, right)): tile edges (P, Q not multiples of 4, images
# smaller than one tile), asymmetric and large padding (the input gradient's equivalent padding
# 2 - pad goes negative), C past the GEMM's KC block, and chunks of several images.
WINOGRAD_CASES = [
    ((2, 5, 9, 11), 7, (1, 1, 1, 1)),
    ((3, 40, 14, 14), 33, (1, 1, 1, 1)),
    ((2, 8, 7, 6), 5, (0, 2, 1, 0)),
    ((1, 3, 4, 4), 2, (3, 0, 0, 3)),
    ((1, 2, 3, 3), 3, (0, 0, 0, 0)),
    ((2, 300, 6, 5), 20, (1, 1, 1, 1)),
    ((5, 16, 30, 17), 70, (2, 1, 0, 2)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=str)
def test_winograd_forward_and_gradients_match_reference(case, dtype, threads):
    x_shape, k, pads = case
    rng = np.random.default_rng(x_shape[1])
    x, w, b = (rng.standard_normal(s) for s in (x_shape, (k, x_shape[1], 3, 3), (k,)))
    g = ((1, 1), pads, (1, 1), 1)
    want = numpy_ref.conv2d_forward(x, w, b, *g)
    gy = rng.standard_normal(want.shape)
    want_gx = numpy_ref.conv2d_backward_input(gy, w, x_shape, *g)
    want_gw = numpy_ref.conv2d_backward_weight(gy, x, w.shape, *g)
    tol = {**TOLERANCE, np.float32: WINOGRAD_FLOAT32_TOLERANCE}
    for got, ref, what in [
        (_C.conv2d_forward(x.astype(dtype), w.astype(dtype), b.astype(dtype), *g, algorithm="winograd"),
         want, "forward"),
        (_C.conv2d_backward_input(gy.astype(dtype), w.astype(dtype), x_shape, *g, algorithm="winograd"),
         want_gx, "backward_input"),
        (_C.conv2d_backward_weight(gy.astype(dtype), x.astype(dtype), w.shape, *g, algorithm="winograd"),
         want_gw, "backward_weight")]:
        scale = float(np.abs(ref).max())
        err = float(np.abs(got.astype(np.float64) - ref).max()) / scale
        assert got.dtype == dtype and got.shape == ref.shape
        assert err <= tol[dtype], f"winograd {what} {case}: relative error {err:.3g}"


def test_winograd_is_chosen_for_deep_3x3_and_rejects_other_geometries():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 64, 12, 12)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    g = ((1, 1), (1, 1, 1, 1), (1, 1), 1)
    auto = _C.conv2d_forward(x, w, None, *g)
    # auto picks Winograd here: bit-identical to the forced Winograd result, not to the GEMM's
    np.testing.assert_array_equal(auto, _C.conv2d_forward(x, w, None, *g, algorithm="winograd"))
    assert not np.array_equal(auto, _C.conv2d_forward(x, w, None, *g, algorithm="gemm"))
    auto_gx = _C.conv2d_backward_input(auto, w, x.shape, *g)
    np.testing.assert_array_equal(
        auto_gx, _C.conv2d_backward_input(auto, w, x.shape, *g, algorithm="winograd"))
    # the weight gradient needs more work before Winograd pays off (a fixed cost per call)
    one_gy, one_x = np.ascontiguousarray(auto[:1]), np.ascontiguousarray(x[:1])  # 10.6 MFLOP
    small_gw = _C.conv2d_backward_weight(one_gy, one_x, w.shape, *g)
    np.testing.assert_array_equal(small_gw, _C.conv2d_backward_weight(one_gy, one_x, w.shape, *g, algorithm="gemm"))
    xl = rng.standard_normal((16, 64, 12, 12)).astype(np.float32)
    gy = rng.standard_normal((16, 64, 12, 12)).astype(np.float32)
    auto_gw = _C.conv2d_backward_weight(gy, xl, w.shape, *g)
    np.testing.assert_array_equal(auto_gw, _C.conv2d_backward_weight(gy, xl, w.shape, *g, algorithm="winograd"))
    assert not np.array_equal(auto_gw, _C.conv2d_backward_weight(gy, xl, w.shape, *g, algorithm="gemm"))
    with pytest.raises(ValueError, match="algorithm='winograd' needs a 3x3 kernel, stride 1"):
        _C.conv2d_backward_weight(gy, xl, (64, 32, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm='winograd' needs a 3x3 kernel, stride 1"):
        _C.conv2d_forward(x, w, None, (2, 2), (1, 1, 1, 1), (1, 1), 1, algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm must be 'auto', 'gemm' or 'winograd'"):
        _C.conv2d_forward(x, w, None, *g, algorithm="fft")


# ---------------------------------------------------------------------------------------------
# dispatch to the depthwise and small-C kernels of another family (faked here)
# ---------------------------------------------------------------------------------------------


class FakeSpecialKernels:
    """Stands in for pyconv._C: records calls to the special conv kernels, forwards the rest."""

    def __init__(self, real):
        self._real = real
        self.calls = []
        for name in ("conv2d_depthwise_forward", "conv2d_depthwise_backward_input",
                     "conv2d_depthwise_backward_weight", "conv2d_small_c_forward"):
            setattr(self, name, self._recorder(name))

    def _recorder(self, name):
        def call(*args):
            self.calls.append((name, args))
            return "special"
        return call

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_depthwise_and_small_c_layers_dispatch_to_special_kernels(monkeypatch):
    from pyconv.backends.cpu_kernels import conv

    fake = FakeSpecialKernels(_C)
    monkeypatch.setattr(conv, "_C", fake)
    geo = ((1, 1), (1, 1, 1, 1), (1, 1))
    x = np.zeros((2, 8, 6, 6), np.float32)
    dw = np.zeros((8, 1, 3, 3), np.float32)
    assert conv.conv2d_forward(x, dw, None, *geo, 8) == "special"
    assert conv.conv2d_backward_input(x, dw, x.shape, *geo, 8) == "special"
    assert conv.conv2d_backward_weight(x, x, dw.shape, *geo, 8) == "special"
    assert [c[0] for c in fake.calls] == ["conv2d_depthwise_forward",
                                          "conv2d_depthwise_backward_input",
                                          "conv2d_depthwise_backward_weight"]
    name, args = fake.calls[0]
    assert args[2:] == (None, (1, 1), (1, 1, 1, 1), (1, 1))  # no groups argument
    first = np.zeros((2, 3, 6, 6), np.float32)
    w3 = np.zeros((16, 3, 3, 3), np.float32)
    assert conv.conv2d_forward(first, w3, None, *geo, 1) == "special"
    assert fake.calls[-1][0] == "conv2d_small_c_forward"
    fake.calls.clear()
    # not special: a depthwise multiplier, groups with few channels, and small-C gradients
    y = conv.conv2d_forward(x, np.zeros((16, 1, 3, 3), np.float32), None, *geo, 8)
    assert y.shape == (2, 16, 6, 6)
    assert conv.conv2d_forward(first[:, :2], np.zeros((4, 1, 3, 3), np.float32), None, *geo,
                               2).shape == (2, 4, 6, 6)
    gy = np.zeros((2, 16, 6, 6), np.float32)
    assert conv.conv2d_backward_input(gy, w3, first.shape, *geo, 1).shape == first.shape
    assert fake.calls == []
    # a depthwise conv_transpose2d is composed from the conv2d kernels, so it reaches them too
    assert conv.conv_transpose2d_backward_weight(x, x, dw.shape, (1, 1), (1, 1), (1, 1), 8) == "special"
    assert conv.conv_transpose2d_forward(x, dw, None, (1, 1), (1, 1), (0, 0), (1, 1), 8) == "special"
    assert [c[0] for c in fake.calls] == ["conv2d_depthwise_backward_weight",
                                          "conv2d_depthwise_backward_input"]


def test_without_special_kernels_everything_runs_on_conv2d(monkeypatch):
    from pyconv.backends.cpu_kernels import conv

    class Plain:
        def __getattr__(self, name):
            if "depthwise" in name or "small_c" in name:
                raise AttributeError(name)
            return getattr(_C, name)

    monkeypatch.setattr(conv, "_C", Plain())
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 1, 3, 3))
    geo = dict(stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=4)
    assert_matches(conv.conv2d_forward(x, w, None, **geo),
                   numpy_ref.conv2d_forward(x, w, None, **geo), np.float64)


def test_dtypes_are_compared_by_value_and_byte_order():
    """An equal float32 descriptor that is another object (from unpickling, as checkpoint loading
    produces) is accepted; a big-endian float32 is not float32 for a kernel."""
    import pickle

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    g = ((1, 1), (0, 0, 0, 0), (1, 1), 1)
    same = pickle.loads(pickle.dumps(np.dtype(np.float32)))
    assert same == np.float32 and same is not np.dtype(np.float32)
    np.testing.assert_array_equal(_C.conv2d_forward(x.view(same), w.view(same), None, *g),
                                  _C.conv2d_forward(x, w, None, *g))
    with pytest.raises(TypeError, match="x must be float32 or float64, got >f4"):
        _C.conv2d_forward(x.astype(">f4"), w, None, *g)
