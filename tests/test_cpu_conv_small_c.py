"""The cpu backend's first-layer conv2d kernels (groups = 1, few input channels:
csrc/cpu/conv2d_small_c*.cpp), forward, input gradient and weight gradient, called through
pyconv._C against the NumPy float64 reference: the conv edge cases of test_conv.py, paths of the
vectorised tiles (widths around 8/16/24/32 columns, K not a multiple of the channel block, taps
past the kernel, row-only strides, column strides, dilations), seeded random geometries with
C = 1..4, in float64 and float32, at 1 and 2 threads; bit-identical weight gradients at any
thread count; non-contiguous and misaligned inputs; errors at the boundary; autograd of a first
layer on the cpu backend against the numpy backend."""

import numpy as np
import pytest

import pyconv
from pyconv.backends import numpy_ref
from pyconv.backends.cpu_kernels import ready
from test_conv import CONV2D_EDGES
from test_cpu_conv_special import args, assert_matches, case, cast, from_edge, make_arrays
from test_cpu_gemm_conv import misaligned, threads  # noqa: F401 (threads: a fixture)

_C = pyconv._native._C
KERNELS = ("conv2d_small_c_forward", "conv2d_small_c_backward_input", "conv2d_small_c_backward_weight")
pytestmark = pytest.mark.skipif(_C is None or not all(hasattr(_C, k) for k in KERNELS),
                                reason="pyconv._C with the small-C conv kernels is not built")

DTYPES = [np.float64, np.float32]

# The first-layer Winograd kernel exists in AVX2 only: a build without it (the portable build of
# test_cpu_portable_build.py) runs the direct kernels for every shape.
HAS_AVX2 = _C is not None and _C.build_info()["isa"] in ("avx2", "avx512")
needs_avx2 = pytest.mark.skipif(not HAS_AVX2, reason="the first-layer Winograd kernel is AVX2-only, and this "
                                                     "build of pyconv._C has no AVX2")


# Paths of the tiles: stride 1 over flat planes (forward 4 channels x 3 vectors; input gradient C
# channels x 4 vectors, 4 x 3 for C = 4; a narrower last tile shifted back to the plane's end;
# weight gradient 4 channels x 3 kernel columns with a masked last vector), row strides > 1 per
# output row (forward 3 x 4 for rows of 32+ floats, else 6 x 2), column strides > 1 (scalar).
EXTRA = {
    "mnist_layer1": case((2, 1, 28, 28), (32, 1, 3, 3)),
    "cifar_layer1": case((2, 3, 32, 32), (32, 3, 3, 3), padding=1),
    "k_not_multiple_of_block": case((1, 3, 9, 41), (7, 3, 3, 3), padding=1),
    "k_one": case((2, 2, 7, 18), (1, 2, 2, 3), padding=(0, 1, 2, 0)),
    "c_four_5x5": case((1, 4, 12, 23), (13, 4, 5, 5), padding=2, bias=False),
    "c_two_widths_24": case((2, 2, 6, 24), (5, 2, 3, 3), padding=(1, 1, 1, 1)),
    "width_17_k_nine": case((2, 1, 7, 17), (9, 1, 3, 3), padding=1),
    "width_40_row_tail": case((1, 3, 5, 40), (11, 3, 3, 3), padding=(0, 0, 1, 1)),
    "row_stride_only": case((1, 3, 15, 30), (8, 3, 3, 3), stride=(2, 1), padding=1),
    "stride2_7x7": case((2, 3, 21, 25), (5, 3, 7, 7), stride=2, padding=3),
    "column_stride_only": case((2, 1, 9, 31), (6, 1, 3, 3), stride=(1, 2), padding=1),
    "dilated_wide": case((1, 1, 10, 50), (4, 1, 3, 3), dilation=(2, 4), padding=(2, 2, 4, 4)),
    "width_1": case((2, 1, 5, 1), (3, 1, 2, 1), padding=(1, 0, 0, 0)),
    "padding_past_kernel": case((1, 2, 3, 9), (6, 2, 2, 2), padding=(3, 1, 4, 2)),
    "kernel_wider_than_input": case((1, 2, 4, 3), (5, 2, 2, 7), padding=(0, 0, 3, 4)),
    "more_than_three_columns": case((2, 3, 8, 20), (10, 3, 2, 5), padding=(1, 0, 2, 2)),
    "one_by_one": case((2, 3, 4, 29), (9, 3, 1, 1), bias=False),
    "tall_kernel": case((1, 4, 17, 9), (5, 4, 6, 1), stride=(3, 1), dilation=(2, 1)),
    "plane_shorter_than_a_tile": case((3, 2, 3, 4), (6, 2, 2, 2), padding=(0, 1, 0, 1)),
    "small_batch_row_bands": case((1, 3, 23, 21), (9, 3, 3, 3), padding=1, dilation=(2, 1)),
    "many_channels": case((1, 9, 6, 13), (5, 9, 3, 2), padding=1),
}


def random_case(seed):
    """A seeded random geometry with C = 1..4, asymmetric padding, non-square kernels, strides
    (row-only half the time), dilations."""
    rng = np.random.default_rng(5000 + seed)

    def ints(low, high, n=2):
        return tuple(int(v) for v in rng.integers(low, high + 1, n))

    kernel, dilation = ints(1, 5), ints(1, 3)
    stride = ints(1, 3) if rng.random() < 0.5 else (int(rng.integers(1, 4)), 1)
    padding = ints(0, 3, 4)
    extent = [d * (r - 1) + 1 for r, d in zip(kernel, dilation)]
    size = [max(1, e - padding[2 * i] - padding[2 * i + 1]) + int(rng.integers(0, 36))
            for i, e in enumerate(extent)]
    c = int(rng.integers(1, 5))
    x_shape = (int(rng.integers(1, 4)), c) + tuple(size)
    w_shape = (int(rng.integers(1, 15)), c) + kernel
    return x_shape, w_shape, bool(rng.random() < 0.7), dict(stride=stride, padding=padding,
                                                            dilation=dilation)


def check(spec, dtype, seed):
    """All three kernels of one case against the float64 reference."""
    x_shape, w_shape, has_bias, geometry = spec
    x, w, bias = make_arrays(x_shape, w_shape, has_bias, seed)
    want_y = numpy_ref.conv2d_forward(x, w, bias, groups=1, **geometry)
    y = _C.conv2d_small_c_forward(cast(x, dtype), cast(w, dtype), cast(bias, dtype), *args(geometry))
    assert_matches(y, want_y, dtype, f"conv2d_small_c_forward {spec}")
    gy = np.random.default_rng(seed + 1).standard_normal(want_y.shape)
    assert_matches(_C.conv2d_small_c_backward_input(cast(gy, dtype), cast(w, dtype), x_shape, *args(geometry)),
                   numpy_ref.conv2d_backward_input(gy, w, x_shape, groups=1, **geometry), dtype,
                   f"conv2d_small_c_backward_input {spec}")
    assert_matches(_C.conv2d_small_c_backward_weight(cast(gy, dtype), cast(x, dtype), w_shape, *args(geometry)),
                   numpy_ref.conv2d_backward_weight(gy, x, w_shape, groups=1, **geometry), dtype,
                   f"conv2d_small_c_backward_weight {spec}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CONV2D_EDGES))
def test_conv_edge_cases(name, dtype, threads):
    check(from_edge(CONV2D_EDGES[name], depthwise=False), dtype, seed=len(name))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EXTRA))
def test_vector_paths(name, dtype, threads):
    check(EXTRA[name], dtype, seed=len(name))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(24))
def test_random_geometries(seed, dtype, threads):
    check(random_case(seed), dtype, seed)


def test_results_do_not_depend_on_the_thread_count():
    for x_shape, w_shape, _, geometry in (case((16, 3, 32, 32), (32, 3, 3, 3), padding=1),
                                          case((3, 1, 28, 28), (10, 1, 3, 3)),
                                          case((1, 2, 40, 19), (6, 2, 3, 3), padding=1)):
        x, w, b = (a.astype(np.float32) for a in make_arrays(x_shape, w_shape, True, 9))
        gy = np.random.default_rng(10).standard_normal(
            numpy_ref.conv2d_forward(x, w, b, groups=1, **geometry).shape).astype(np.float32)
        before = pyconv.get_num_threads()
        try:
            outs = []
            for n in (1, 2):
                pyconv.set_num_threads(n)
                outs.append((_C.conv2d_small_c_forward(x, w, b, *args(geometry)),
                             _C.conv2d_small_c_backward_input(gy, w, x_shape, *args(geometry)),
                             _C.conv2d_small_c_backward_weight(gy, x, w_shape, *args(geometry))))
        finally:
            pyconv.set_num_threads(before)
        for one, two in zip(*outs):
            np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_and_misaligned_inputs_after_ready(dtype):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 21, 9, 3)).astype(dtype).transpose(0, 3, 2, 1)  # (2, 3, 9, 21)
    w = rng.standard_normal((5, 3, 2, 4)).astype(dtype).transpose(0, 1, 3, 2)  # (5, 3, 4, 2)
    stride, padding, dilation = (1, 1), (1, 0, 2, 1), (1, 2)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    want = numpy_ref.conv2d_forward(x64, w64, None, stride, padding, dilation, 1)
    assert_matches(_C.conv2d_small_c_forward(ready(misaligned(x)), ready(w), None, stride, padding, dilation),
                   want, dtype, "forward views")
    gy = rng.standard_normal(want.shape).astype(dtype)[:, ::-1]
    assert_matches(_C.conv2d_small_c_backward_input(ready(misaligned(gy)), ready(misaligned(w)), x.shape, stride,
                                                    padding, dilation),
                   numpy_ref.conv2d_backward_input(gy.astype(np.float64), w64, x.shape, stride, padding, dilation, 1),
                   dtype, "backward_input views")
    assert_matches(_C.conv2d_small_c_backward_weight(ready(gy), ready(misaligned(x)), w.shape, stride, padding,
                                                     dilation),
                   numpy_ref.conv2d_backward_weight(gy.astype(np.float64), x64, w.shape, stride, padding, dilation, 1),
                   dtype, "backward_weight views")


G = ((1, 1), (0, 0, 0, 0), (1, 1))


def test_bad_arguments_raise_errors_that_name_them():
    x = np.zeros((1, 3, 5, 5), np.float64)
    w = np.zeros((4, 3, 3, 3), np.float64)
    gy = np.zeros((1, 4, 3, 3), np.float64)
    f = _C.conv2d_small_c_forward
    with pytest.raises(TypeError, match="x must be float32 or float64, got float16"):
        f(x.astype(np.float16), w, None, *G)
    with pytest.raises(TypeError, match="weight must be float64 like the other arrays, got float32"):
        f(x, w.astype(np.float32), None, *G)
    with pytest.raises(ValueError, match="does not fit input"):
        f(x, w[:, :2].copy(), None, *G)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        f(x[0], w, None, *G)
    with pytest.raises(ValueError, match="weight must be C-contiguous"):
        f(x, w.transpose(0, 1, 3, 2), None, *G)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        f(x, w, np.zeros(3), *G)
    with pytest.raises(ValueError, match="kernel size must be >= 1"):
        f(x, np.zeros((4, 3, 0, 3)), None, *G)
    with pytest.raises(ValueError, match="does not fit the padded input"):
        f(x, np.zeros((4, 3, 6, 1)), None, *G)
    bi, bw = _C.conv2d_small_c_backward_input, _C.conv2d_small_c_backward_weight
    with pytest.raises(TypeError, match="grad_y must be float32 or float64, got int64"):
        bi(gy.astype(np.int64), w, x.shape, *G)
    with pytest.raises(TypeError, match="weight must be float64 like the other arrays"):
        bi(gy, w.astype(np.float32), x.shape, *G)
    with pytest.raises(ValueError, match=r"grad_y must have shape \(2, 4, 3, 3\)"):
        bi(gy, w, (2, 3, 5, 5), *G)
    with pytest.raises(ValueError, match="input_shape must have 4 entries"):
        bi(gy, w, (3, 5, 5), *G)
    with pytest.raises(ValueError, match="does not fit input"):
        bi(gy, w, (1, 2, 5, 5), *G)
    with pytest.raises(ValueError, match="grad_y must be aligned"):
        bi(misaligned(gy), w, x.shape, *G)
    with pytest.raises(ValueError, match="stride and dilation must be >= 1"):
        bi(gy, w, x.shape, (0, 1), (0, 0, 0, 0), (1, 1))
    with pytest.raises(TypeError, match="x must be float64 like the other arrays"):
        bw(gy, x.astype(np.float32), w.shape, *G)
    with pytest.raises(ValueError, match="weight_shape must have 4 entries"):
        bw(gy, x, (4, 3, 3), *G)
    with pytest.raises(ValueError, match=r"grad_y must have shape \(1, 5, 3, 3\)"):
        bw(gy, x, (5, 3, 3, 3), *G)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        bw(gy, x.transpose(0, 1, 3, 2), w.shape, *G)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        bw(gy, x, w.shape, (1, 1), (0, 0, -1, 0), (1, 1))


def test_sizes_whose_products_overflow_are_rejected_without_allocating():
    huge = 2 ** 31
    gy = np.zeros((1, 1, 1, 1), np.float32)
    w = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match="overflows 64 bits"):
        _C.conv2d_small_c_backward_input(gy, w, (huge, 1, huge, huge), (1, 1), (0, 0, 0, 0), (1, 1))
    with pytest.raises(ValueError, match="overflows 64 bits"):
        _C.conv2d_small_c_backward_weight(gy, np.zeros((1, 1, 1, 1), np.float32), (huge, 1, huge, huge),
                                          (1, 1), (0, 0, 0, 0), (1, 1))
    with pytest.raises(ValueError, match="overflows 64 bits"):
        _C.conv2d_small_c_forward(np.zeros((1, 1, 1, 1), np.float32), w, None, (1, 1),
                                  (2 ** 62, 2 ** 62, 0, 0), (1, 1))


# ---------------------------------------------------------------------------------------------
# through the cpu backend (pyconv/backends/cpu_kernels/conv.py dispatches to these kernels)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_c_calls(monkeypatch):
    """Names of the small-C kernels called while the test runs."""
    calls = []
    for name in KERNELS:
        real = getattr(_C, name)
        monkeypatch.setattr(_C, name, (lambda real, name: lambda *a: calls.append(name) or real(*a))(real, name))
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
def test_first_layer_autograd_on_the_cpu_backend(dtype, small_c_calls):
    import pyconv.functional as F
    from pyconv import backends

    if "cpu" not in backends.available():
        backends.register("cpu", "pyconv.backends.cpu")
    rng = np.random.default_rng(14)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(3, 3, 11, 13), (7, 3, 3, 3), (7,),
                                                             (2, 1, 9, 10), (5, 1, 3, 2)]]

    def run(backend):
        tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]
        x, w, b, x1, w1 = tensors
        with backends.use(backend):
            y = F.conv2d(x, w, b, padding=1)  # CIFAR-like first layer, C = 3
            y1 = F.conv2d(x1, w1, None, stride=(2, 1), padding=(1, 0), dilation=(1, 2))  # C = 1
            ((y * y).sum() + (y1 * y1 * y1).sum()).backward()
        return [y.detach().numpy(), y1.detach().numpy()] + [t.grad.numpy() for t in tensors]

    want = run("numpy")
    assert not small_c_calls
    got = run("cpu")
    for g, r in zip(got, want):
        assert_matches(g, r, dtype, "autograd")
    assert set(small_c_calls) == set(KERNELS)


# ---------------------------------------------------------------------------------------------
# Winograd F(4x4, 3x3) forward (csrc/cpu/conv2d_small_c_winograd.h): float32, 3x3, stride 1,
# C = 1..4. conv2d_small_c_forward uses it for C >= 2 and Q >= 28; the _winograd entry point
# runs it for any shape it covers.
# ---------------------------------------------------------------------------------------------

# (x shape, K, padding (top, bottom, left, right), bias): partial tiles at the bottom / right
# (P, Q not multiples of 4, tile rows not multiples of the 3-vector block), several vectors per
# tile row (Q > 32), K not a multiple of the 4-channel block, N < 4 (tasks are bands of tile rows)
WINOGRAD_CASES = {
    "cifar_layer1": ((4, 3, 32, 32), 32, (1, 1, 1, 1), True),
    "odd_plane_pad0": ((2, 3, 17, 29), 13, (0, 0, 0, 0), True),
    "pad2_no_bias": ((1, 2, 9, 31), 6, (2, 2, 2, 2), False),
    "asymmetric_pad": ((3, 4, 14, 40), 5, (0, 1, 2, 0), True),
    "c1_narrow": ((2, 1, 5, 7), 9, (1, 1, 1, 1), True),
    "c1_one_output": ((1, 1, 3, 3), 3, (0, 0, 0, 0), False),
    "wide_rows": ((1, 3, 6, 75), 7, (1, 1, 1, 1), True),
    "k_one": ((5, 2, 12, 12), 1, (1, 0, 0, 1), True),
    "tall": ((1, 4, 41, 9), 11, (2, 0, 1, 1), False),
}


def winograd_arrays(name, seed=21):
    x_shape, k, padding, has_bias = WINOGRAD_CASES[name]
    x, w, b = make_arrays(x_shape, (k, x_shape[1], 3, 3), has_bias, seed)
    return x, w, b, padding


@needs_avx2
@pytest.mark.parametrize("name", sorted(WINOGRAD_CASES))
def test_winograd_forward_against_the_reference(name, threads):
    x, w, b, padding = winograd_arrays(name)
    want = numpy_ref.conv2d_forward(x, w, b, (1, 1), padding, (1, 1), 1)
    got = _C.conv2d_small_c_forward_winograd(cast(x, np.float32), cast(w, np.float32), cast(b, np.float32), padding)
    assert_matches(got, want, np.float32, f"winograd {name}")


@needs_avx2
def test_winograd_forward_of_a_large_output_stored_around_the_caches():
    """Outputs above 4 MB take non-temporal stores (8.4 MB here); the float64 direct kernel, tested
    against the reference above, is the reference."""
    rng = np.random.default_rng(22)
    x = rng.standard_normal((32, 3, 32, 32))
    w, b = rng.standard_normal((64, 3, 3, 3)), rng.standard_normal(64)
    want = _C.conv2d_small_c_forward(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1))
    f32 = [a.astype(np.float32) for a in (x, w, b)]
    assert_matches(_C.conv2d_small_c_forward_winograd(*f32, (1, 1, 1, 1)), want, np.float32, "streamed")
    assert_matches(_C.conv2d_small_c_forward(*f32, (1, 1), (1, 1, 1, 1), (1, 1)), want, np.float32, "dispatch")


@needs_avx2
def test_forward_dispatches_float32_first_layers_with_wide_rows_to_winograd():
    """conv2d_small_c_forward equals the Winograd entry point where it should use it and the direct
    entry point elsewhere; the direct kernels (float32) still match the reference on these shapes."""
    for name, winograd in (("cifar_layer1", True), ("asymmetric_pad", True), ("odd_plane_pad0", False),  # Q = 27
                           ("c1_narrow", False), ("pad2_no_bias", True)):
        x, w, b, padding = winograd_arrays(name)
        want = numpy_ref.conv2d_forward(x, w, b, (1, 1), padding, (1, 1), 1)
        x, w, b = (cast(a, np.float32) for a in (x, w, b))
        got = _C.conv2d_small_c_forward(x, w, b, (1, 1), padding, (1, 1))
        direct = _C.conv2d_small_c_forward_direct(x, w, b, (1, 1), padding, (1, 1))
        wino = _C.conv2d_small_c_forward_winograd(x, w, b, padding)
        assert np.array_equal(got, wino if winograd else direct), name
        assert not np.array_equal(direct, wino), name  # the two paths round differently
        assert_matches(direct, want, np.float32, f"direct {name}")
    # the Winograd path is also bit-identical at 1 and 2 threads, and for N < 4 (bands of tile rows)
    x, w, b, padding = (cast(a, np.float32) if isinstance(a, np.ndarray) else a for a in winograd_arrays("wide_rows"))
    before = pyconv.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            pyconv.set_num_threads(n)
            outs.append(_C.conv2d_small_c_forward_winograd(x, w, b, padding))
    finally:
        pyconv.set_num_threads(before)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_winograd_entry_point_rejects_shapes_it_does_not_cover():
    x, w = np.zeros((1, 3, 8, 8), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    f = _C.conv2d_small_c_forward_winograd
    if not HAS_AVX2:
        with pytest.raises(ValueError, match="this build has no AVX2"):
            f(x, w, None, (0, 0, 0, 0))
        return
    with pytest.raises(ValueError, match="float32 only"):
        f(x.astype(np.float64), w.astype(np.float64), None, (0, 0, 0, 0))
    with pytest.raises(ValueError, match="3x3 kernel and 1..4 input channels"):
        f(x, np.zeros((4, 3, 5, 5), np.float32), None, (0, 0, 0, 0))
    with pytest.raises(ValueError, match="3x3 kernel and 1..4 input channels"):
        f(np.zeros((1, 5, 8, 8), np.float32), np.zeros((4, 5, 3, 3), np.float32), None, (0, 0, 0, 0))
    with pytest.raises(ValueError, match="does not fit the padded input"):
        f(np.zeros((1, 3, 2, 8), np.float32), w, None, (0, 0, 0, 0))
    with pytest.raises(TypeError, match="weight must be float32 like the other arrays"):
        f(x, w.astype(np.float64), None, (0, 0, 0, 0))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_direct_forward_of_large_outputs_stored_non_temporally(n_threads):
    """Outputs above 4 MiB take non-temporal stores in the direct kernel: 16-byte aligned planes
    (MNIST layer 1, 676 floats), planes of odd size (625: the unaligned stores fall back to plain
    ones) and float64 (CIFAR-shaped, not on Winograd)."""
    rng = np.random.default_rng(23)
    cases = [((64, 1, 28, 28), (32, 1, 3, 3), (0, 0, 0, 0), np.float32),
             ((64, 1, 27, 27), (32, 1, 3, 3), (0, 0, 0, 0), np.float32),
             ((20, 3, 32, 32), (32, 3, 3, 3), (1, 1, 1, 1), np.float64)]
    before = pyconv.get_num_threads()
    pyconv.set_num_threads(n_threads)
    try:
        for x_shape, w_shape, padding, dtype in cases:
            x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
            want = numpy_ref.conv2d_forward(x, w, b, (1, 1), padding, (1, 1), 1)
            assert want.size * np.dtype(dtype).itemsize > 4 << 20
            got = _C.conv2d_small_c_forward_direct(*(a.astype(dtype) for a in (x, w, b)), (1, 1), padding, (1, 1))
            assert_matches(got, want, dtype, f"{x_shape} {np.dtype(dtype).name}")
    finally:
        pyconv.set_num_threads(before)
