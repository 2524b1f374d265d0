"""The cpu backend's depthwise conv2d kernels (csrc/cpu/conv2d_depthwise.cpp), called through
pyconv._C, against the NumPy float64 reference: the conv edge cases of test_conv.py (as depthwise
convolutions), extra edges of the vectorised paths
(widths around the vector tiles, padding past the kernel, row-only strides, tiny planes) and seeded
random geometries, in float64 and float32, at 1 and 2 threads; thread-count independence;
non-contiguous and misaligned inputs prepared with cpu_kernels.ready; errors at the boundary; the
backend's dispatch to the depthwise and first-layer kernels. The first-layer (small-C) kernels
themselves are tested in test_cpu_conv_small_c.py."""

import numpy as np
import pytest

import pyconv
from pyconv.backends import numpy_ref
from pyconv.backends.cpu_kernels import ready
from pyconv.shapes import conv_padding, pair
from cpu_support import assert_close_to_reference
from test_conv import CONV2D_EDGES
from test_cpu_gemm_conv import misaligned, threads  # noqa: F401 (threads: a fixture)

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None or not hasattr(_C, "conv2d_depthwise_forward"),
                                reason="pyconv._C with the direct conv kernels is not built")

# relative to the output's scale (its largest magnitude, at least 1)
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def assert_matches(got, want, dtype, what=""):
    assert_close_to_reference(got, want, dtype, TOLERANCE[dtype], what)


def geometry_of(kernel, stride=1, padding=0, dilation=1):
    """Contract geometry (stride, (top, bottom, left, right), dilation) of test_conv.py kwargs."""
    stride, dilation = pair(stride, "stride", "t"), pair(dilation, "dilation", "t")
    pads = (tuple(padding) if isinstance(padding, tuple) and len(padding) == 4
            else conv_padding(padding, tuple(kernel), stride, dilation))
    return dict(stride=stride, padding=pads, dilation=dilation)


def from_edge(spec, depthwise):
    """A test_conv.py edge case as (x shape, weight shape, has bias, geometry): depthwise keeps its
    input and geometry with K = groups = C; otherwise groups = 1."""
    spec = dict(spec)
    x_shape, k, kernel = spec.pop("x"), spec.pop("k"), spec.pop("kernel")
    spec.pop("groups", None)
    bias = spec.pop("bias", True)
    if len(x_shape) == 3:
        x_shape = (1,) + tuple(x_shape)
    c = x_shape[1]
    w_shape = (c, 1) + tuple(kernel) if depthwise else (k, c) + tuple(kernel)
    return tuple(x_shape), w_shape, bias, geometry_of(kernel, **spec)


def case(x_shape, w_shape, bias=True, **geometry):
    return tuple(x_shape), tuple(w_shape), bias, geometry_of(w_shape[2:], **geometry)


# Paths of the vectorised kernels: tiles of 8/16 float (4/8 double) columns, masked edge tiles
# on both sides, row blocks of 4, the scalar path for column strides > 1.
DEPTHWISE_EXTRA = {
    "mobilenet_3x3": case((2, 5, 19, 37), (5, 1, 3, 3), padding=1),
    "wide_rows": case((1, 3, 9, 56), (3, 1, 3, 3), padding=1),
    "width_1": case((2, 2, 6, 1), (2, 1, 3, 1), padding=(1, 1, 0, 0)),
    "tiny_plane": case((3, 4, 1, 2), (4, 1, 1, 1)),
    "kernel_wider_than_input": case((1, 2, 4, 3), (2, 1, 2, 7), padding=(0, 0, 3, 4)),
    "padding_past_kernel": case((1, 2, 5, 11), (2, 1, 2, 2), padding=(3, 0, 2, 4)),
    "row_stride_only": case((2, 3, 11, 20), (3, 1, 3, 3), stride=(2, 1), padding=1),
    "row_stride_dilated": case((1, 2, 17, 33), (2, 1, 3, 2), stride=(3, 1), dilation=(2, 3), padding=(2, 1, 0, 3)),
    "stride2_mobilenet": case((2, 4, 14, 21), (4, 1, 3, 3), stride=2, padding=1),
    "stride3_5x5": case((1, 3, 13, 17), (3, 1, 5, 5), stride=(1, 3), padding=2, dilation=(1, 2)),
    "one_by_one_wide": case((2, 3, 3, 29), (3, 1, 1, 1), bias=False),
    "taps_over_nine": case((1, 2, 12, 26), (2, 1, 4, 5), padding=(2, 1, 3, 0)),
    "seven_by_seven": case((1, 2, 15, 40), (2, 1, 7, 7), padding=3),
    # 3x3 stride 1 (conv2d_depthwise_3x3.h): row blocks of 4, widths around one vector, padding
    # 0 to past the kernel, asymmetric
    "unit_3x3_width_8": case((2, 3, 5, 8), (3, 1, 3, 3), padding=1),
    "unit_3x3_width_9_unpadded": case((1, 2, 6, 11), (2, 1, 3, 3)),
    "unit_3x3_asymmetric": case((2, 2, 7, 17), (2, 1, 3, 3), padding=(2, 0, 1, 2)),
    "unit_3x3_two_rows": case((1, 3, 2, 20), (3, 1, 3, 3), padding=1),
    "unit_3x3_width_4": case((1, 2, 9, 4), (2, 1, 3, 3), padding=1),
    "unit_3x3_padding_past_kernel": case((1, 2, 6, 12), (2, 1, 3, 3), padding=(3, 3, 4, 1)),
    "unit_3x3_many_rows": case((3, 2, 13, 33), (2, 1, 3, 3), padding=1, bias=False),
}


def random_case(seed):
    """A seeded random geometry with asymmetric padding, non-square kernels, strides, dilations."""
    rng = np.random.default_rng(3000 + seed)

    def ints(low, high, n=2):
        return tuple(int(v) for v in rng.integers(low, high + 1, n))

    kernel, dilation = ints(1, 5), ints(1, 3)
    stride = ints(1, 3) if rng.random() < 0.5 else (int(rng.integers(1, 4)), 1)
    padding = ints(0, 3, 4)
    extent = [d * (r - 1) + 1 for r, d in zip(kernel, dilation)]
    size = [max(1, e - padding[2 * i] - padding[2 * i + 1]) + int(rng.integers(0, 30))
            for i, e in enumerate(extent)]
    c = int(rng.integers(1, 6))
    x_shape = (int(rng.integers(1, 4)), c) + tuple(size)
    w_shape = (c, 1) + kernel
    return x_shape, w_shape, bool(rng.random() < 0.7), dict(stride=stride, padding=padding,
                                                            dilation=dilation)


def make_arrays(x_shape, w_shape, has_bias, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    return x, w, rng.standard_normal(w_shape[0]) if has_bias else None


def cast(a, dtype):
    return None if a is None else a.astype(dtype)


def args(geometry):
    return geometry["stride"], geometry["padding"], geometry["dilation"]


def check_depthwise(spec, dtype, seed):
    x_shape, w_shape, has_bias, geometry = spec
    x, w, bias = make_arrays(x_shape, w_shape, has_bias, seed)
    groups = x_shape[1]
    want_y = numpy_ref.conv2d_forward(x, w, bias, groups=groups, **geometry)
    y = _C.conv2d_depthwise_forward(cast(x, dtype), cast(w, dtype), cast(bias, dtype), *args(geometry))
    assert_matches(y, want_y, dtype, f"conv2d_depthwise_forward {spec}")
    gy = np.random.default_rng(seed + 1).standard_normal(want_y.shape)
    assert_matches(_C.conv2d_depthwise_backward_input(cast(gy, dtype), cast(w, dtype), x_shape, *args(geometry)),
                   numpy_ref.conv2d_backward_input(gy, w, x_shape, groups=groups, **geometry), dtype,
                   f"conv2d_depthwise_backward_input {spec}")
    assert_matches(_C.conv2d_depthwise_backward_weight(cast(gy, dtype), cast(x, dtype), w_shape, *args(geometry)),
                   numpy_ref.conv2d_backward_weight(gy, x, w_shape, groups=groups, **geometry), dtype,
                   f"conv2d_depthwise_backward_weight {spec}")


DTYPES = [np.float64, np.float32]

# ---------------------------------------------------------------------------------------------
# depthwise
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CONV2D_EDGES))
def test_depthwise_conv_edge_cases(name, dtype, threads):
    check_depthwise(from_edge(CONV2D_EDGES[name], depthwise=True), dtype, seed=len(name))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(DEPTHWISE_EXTRA))
def test_depthwise_vector_paths(name, dtype, threads):
    check_depthwise(DEPTHWISE_EXTRA[name], dtype, seed=len(name))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(20))
def test_depthwise_random_geometries(seed, dtype, threads):
    check_depthwise(random_case(seed), dtype, seed)


# 3x3 stride-1 forward and input gradient (conv2d_depthwise_3x3_forward.h): row blocks of 5 (1 to 12 rows covers
# every remainder), widths around one and two vectors (a last partial vector of x copied with a
# masked load), padding 0 to past the kernel, asymmetric, left padding past one vector (the
# frame's alignment lead).
FRAME_CASES = [((h, w), (1, 1, 1, 1)) for h in range(1, 13) for w in (8, 13)] + [
    ((5, w), pad) for w in (4, 5, 7, 9, 15, 16, 17, 31, 33)
    for pad in ((1, 1, 1, 1), (0, 0, 0, 0), (2, 0, 1, 2), (0, 3, 9, 1), (2, 2, 0, 2), (3, 1, 2, 4))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,padding", FRAME_CASES)
def test_depthwise_3x3_frames(size, padding, dtype, threads):
    # forward, and the input gradient (the same kernel on grad_y's frames when top, left <= 2)
    x_shape = (2, 3) + size
    if size[1] + padding[2] + padding[3] < 3 or size[0] + padding[0] + padding[1] < 3:
        pytest.skip("the kernel does not fit")
    x, w, bias = make_arrays(x_shape, (3, 1, 3, 3), True, sum(size) + sum(padding))
    want = numpy_ref.conv2d_forward(x, w, bias, (1, 1), padding, (1, 1), 3)
    got = _C.conv2d_depthwise_forward(cast(x, dtype), cast(w, dtype), cast(bias, dtype), (1, 1), padding, (1, 1))
    assert_matches(got, want, dtype, f"3x3 frame {size} {padding}")
    gy = np.random.default_rng(sum(size)).standard_normal(want.shape)
    assert_matches(_C.conv2d_depthwise_backward_input(cast(gy, dtype), cast(w, dtype), x_shape, (1, 1), padding, (1, 1)),
                   numpy_ref.conv2d_backward_input(gy, w, x_shape, (1, 1), padding, (1, 1), 3), dtype,
                   f"3x3 frame backward_input {size} {padding}")


def test_depthwise_3x3_forward_after_other_geometries():
    # each thread keeps its zeroed frames for the last geometry: a different one must re-zero
    # them (a frame left from a wider padding holds values where the next one needs zeros)
    rng = np.random.default_rng(21)
    geometries = [((1, 2, 9, 20), (2, 2, 2, 2)), ((1, 2, 9, 20), (1, 1, 1, 1)), ((1, 2, 11, 16), (0, 1, 3, 0)),
                  ((1, 2, 9, 20), (2, 2, 2, 2)), ((1, 2, 9, 20), (0, 0, 0, 0))]
    for x_shape, padding in geometries:
        x, w = rng.standard_normal(x_shape), rng.standard_normal((2, 1, 3, 3))
        want = numpy_ref.conv2d_forward(x, w, None, (1, 1), padding, (1, 1), 2)
        for dtype in DTYPES:
            got = _C.conv2d_depthwise_forward(cast(x, dtype), cast(w, dtype), None, (1, 1), padding, (1, 1))
            assert_matches(got, want, dtype, f"{x_shape} {padding} after other geometries")


def shifted_sum_3x3(x, w, bias, padding):
    """Depthwise 3x3 stride-1 forward in float64 as 9 shifted planes (cheap for large inputs)."""
    top, bottom, left, right = padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    p, q = xp.shape[2] - 2, xp.shape[3] - 2
    y = np.broadcast_to(bias.astype(np.float64)[None, :, None, None], (x.shape[0], x.shape[1], p, q)).copy()
    for r in range(3):
        for s in range(3):
            y += w[None, :, 0, r, s, None, None].astype(np.float64) * xp[:, :, r:r + p, s:s + q]
    return y


@pytest.mark.parametrize("x_shape,dtype", [((2, 16, 256, 256), np.float32), ((1, 16, 256, 256), np.float64),
                                           ((1, 17, 256, 255), np.float64)])
def test_depthwise_3x3_large_outputs(x_shape, dtype, threads):
    # outputs of >= 8 MiB are streamed (rows of whole aligned vectors; W = 255: plain stores)
    rng = np.random.default_rng(22)
    c = x_shape[1]
    x = rng.standard_normal(x_shape, dtype=dtype)
    w, bias = rng.standard_normal((c, 1, 3, 3)).astype(dtype), rng.standard_normal(c).astype(dtype)
    got = _C.conv2d_depthwise_forward(x, w, bias, (1, 1), (1, 1, 1, 1), (1, 1))
    assert got.nbytes >= 8 << 20
    assert_matches(got, shifted_sum_3x3(x, w, bias, (1, 1, 1, 1)), dtype, f"large {x_shape}")
    # the input gradient: grad_y correlated with the kernel rotated by 180 degrees
    gy = rng.standard_normal(got.shape, dtype=dtype)
    assert_matches(_C.conv2d_depthwise_backward_input(gy, w, x_shape, (1, 1), (1, 1, 1, 1), (1, 1)),
                   shifted_sum_3x3(gy, w[:, :, ::-1, ::-1], np.zeros(c), (1, 1, 1, 1)), dtype,
                   f"large backward_input {x_shape}")


def test_depthwise_results_do_not_depend_on_the_thread_count():
    # large enough to run on 2 threads; 9 images: batch chunks of uneven fill
    x_shape, w_shape, _, geometry = case((9, 8, 30, 45), (8, 1, 3, 3), padding=1)
    x, w, _ = make_arrays(x_shape, w_shape, False, 5)
    x, w = x.astype(np.float32), w.astype(np.float32)
    outs = []
    before = pyconv.get_num_threads()
    try:
        for n in (1, 2):
            pyconv.set_num_threads(n)
            y = _C.conv2d_depthwise_forward(x, w, None, *args(geometry))
            outs.append((y, _C.conv2d_depthwise_backward_input(y, w, x_shape, *args(geometry)),
                         _C.conv2d_depthwise_backward_weight(y, x, w_shape, *args(geometry))))
    finally:
        pyconv.set_num_threads(before)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)  # bit for bit


# ---------------------------------------------------------------------------------------------
# layouts and errors at the boundary
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_and_misaligned_inputs_after_ready(dtype):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 21, 9, 3)).astype(dtype).transpose(0, 3, 2, 1)  # (2, 3, 9, 21)
    w = rng.standard_normal((3, 1, 3, 6)).astype(dtype)[:, :, :, ::2]  # (3, 1, 3, 3)
    b = rng.standard_normal(6).astype(dtype)[::2]
    stride, padding, dilation = (1, 1), (1, 0, 2, 1), (1, 1)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    want = numpy_ref.conv2d_forward(x64, w64, b64, stride, padding, dilation, 3)
    for xi, wi, bi in [(x, w, b), (misaligned(x), misaligned(w), misaligned(b))]:
        assert_matches(_C.conv2d_depthwise_forward(ready(xi), ready(wi), ready(bi), stride, padding, dilation),
                       want, dtype, "depthwise views")
    gy = rng.standard_normal(want.shape).astype(dtype)[:, ::-1]
    assert_matches(_C.conv2d_depthwise_backward_input(ready(misaligned(gy)), ready(w), x.shape, stride, padding, dilation),
                   numpy_ref.conv2d_backward_input(gy.astype(np.float64), w64, x.shape, stride, padding, dilation, 3),
                   dtype, "depthwise backward_input views")
    assert_matches(_C.conv2d_depthwise_backward_weight(ready(gy), ready(misaligned(x)), w.shape, stride, padding, dilation),
                   numpy_ref.conv2d_backward_weight(gy.astype(np.float64), x64, w.shape, stride, padding, dilation, 3),
                   dtype, "depthwise backward_weight views")
    w1 = rng.standard_normal((5, 3, 2, 4)).astype(dtype).transpose(0, 1, 3, 2)  # (5, 3, 4, 2)
    want = numpy_ref.conv2d_forward(x64, w1.astype(np.float64), None, stride, padding, dilation, 1)
    assert_matches(_C.conv2d_small_c_forward(ready(misaligned(x)), ready(w1), None, stride, padding, dilation),
                   want, dtype, "small-C views")


G = ((1, 1), (0, 0, 0, 0), (1, 1))


def test_depthwise_bad_arguments_raise_errors_that_name_them():
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((2, 1, 3, 3), np.float32)
    f = _C.conv2d_depthwise_forward
    with pytest.raises(TypeError, match="x must be float32 or float64, got int64"):
        f(x.astype(np.int64), w, None, *G)
    with pytest.raises(TypeError, match="weight must be float32 like the other arrays, got float64"):
        f(x, w.astype(np.float64), None, *G)
    with pytest.raises(TypeError, match="bias must be float32"):
        f(x, w, np.zeros(2), *G)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        f(x.transpose(0, 1, 3, 2), w, None, *G)
    with pytest.raises(ValueError, match="x must be aligned"):
        f(misaligned(x), w, None, *G)
    with pytest.raises(ValueError, match="weight must have 4 dimensions"):
        f(x, w[:, 0], None, *G)
    with pytest.raises(ValueError, match=r"weight must have shape \(C, 1, R, S\) with C=2"):
        f(x, np.zeros((3, 1, 3, 3), np.float32), None, *G)
    with pytest.raises(ValueError, match=r"weight must have shape \(C, 1, R, S\)"):
        f(x, np.zeros((2, 2, 3, 3), np.float32), None, *G)
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\), got \(3,\)"):
        f(x, w, np.zeros(3, np.float32), *G)
    with pytest.raises(ValueError, match="stride and dilation must be >= 1"):
        f(x, w, None, (1, 0), (0, 0, 0, 0), (1, 1))
    with pytest.raises(ValueError, match="padding must be >= 0"):
        f(x, w, None, (1, 1), (0, -1, 0, 0), (1, 1))
    with pytest.raises(ValueError, match="does not fit the padded input"):
        f(x[:, :, :2].copy(), w, None, *G)
    with pytest.raises(ValueError, match="does not fit the padded input"):
        f(x, w, None, (1, 1), (0, 0, 0, 0), (3, 1))
    with pytest.raises(ValueError, match=r"grad_y must have shape \(2, 2, 3, 3\)"):
        _C.conv2d_depthwise_backward_input(np.zeros((1, 2, 3, 3), np.float32), w, (2, 2, 5, 5), *G)
    with pytest.raises(ValueError, match="input_shape must have 4 entries"):
        _C.conv2d_depthwise_backward_input(np.zeros((1, 2, 3, 3), np.float32), w, (2, 5, 5), *G)
    with pytest.raises(ValueError, match="weight_shape must have 4 entries"):
        _C.conv2d_depthwise_backward_weight(np.zeros((1, 2, 3, 3), np.float32), x, (2, 3, 3), *G)
    with pytest.raises(ValueError, match=r"weight must have shape \(C, 1, R, S\)"):
        _C.conv2d_depthwise_backward_weight(np.zeros((1, 2, 3, 3), np.float32), x, (2, 2, 3, 3), *G)
    with pytest.raises(TypeError, match="x must be float32 like the other arrays"):
        _C.conv2d_depthwise_backward_weight(np.zeros((1, 2, 3, 3), np.float32), x.astype(np.float64),
                                            (2, 1, 3, 3), *G)


def test_sizes_whose_products_overflow_are_rejected_without_allocating():
    huge = 2 ** 31
    gy = np.zeros((1, 1, 1, 1), np.float32)
    w = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match="overflows 64 bits"):
        _C.conv2d_depthwise_backward_input(gy, w, (huge, 1, huge, huge), (1, 1), (0, 0, 0, 0), (1, 1))
    with pytest.raises(ValueError, match="overflows 64 bits"):
        _C.conv2d_depthwise_forward(np.zeros((1, 1, 1, 1), np.float32), w, None, (1, 1),
                                    (2 ** 62, 2 ** 62, 0, 0), (1, 1))


# ---------------------------------------------------------------------------------------------
# through the cpu backend (pyconv/backends/cpu_kernels/conv.py dispatches to these kernels)
# ---------------------------------------------------------------------------------------------

SPECIAL = ("conv2d_depthwise_forward", "conv2d_depthwise_backward_input",
           "conv2d_depthwise_backward_weight", "conv2d_small_c_forward")


def record_calls(monkeypatch, names, find=lambda name: getattr(_C, name)):
    """Replaces _C.<name> for each name by a wrapper of find(name) that records the call; returns
    the list of the names called, in order."""
    calls = []
    for name in names:
        real = find(name)
        monkeypatch.setattr(_C, name, (lambda real, name: lambda *a: calls.append(name) or real(*a))(real, name),
                            raising=False)
    return calls


@pytest.fixture
def special_calls(monkeypatch):
    """Names of the direct kernels called while the test runs."""
    return record_calls(monkeypatch, SPECIAL)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backend_module_takes_views_and_misaligned_arrays(dtype, special_calls):
    from pyconv.backends import cpu

    cpu.check_available()
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 19, 7, 3)).astype(dtype).transpose(0, 3, 2, 1)  # (2, 3, 7, 19)
    geometry = dict(stride=(1, 1), padding=(0, 2, 1, 1), dilation=(1, 2))
    for w, groups in [(rng.standard_normal((3, 1, 2, 3)).astype(dtype), 3),
                      (rng.standard_normal((5, 3, 3, 3)).astype(dtype)[:, :, ::-1], 1)]:
        want = numpy_ref.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, groups=groups,
                                         **geometry)
        assert_matches(cpu.conv2d_forward(misaligned(x), w, None, groups=groups, **geometry), want, dtype,
                       f"backend groups={groups}")
    assert special_calls == ["conv2d_depthwise_forward", "conv2d_small_c_forward"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_and_first_layer_autograd_on_the_cpu_backend(dtype, special_calls):
    import pyconv.functional as F
    from pyconv import backends

    if "cpu" not in backends.available():
        backends.register("cpu", "pyconv.backends.cpu")
    rng = np.random.default_rng(14)
    shapes = [(2, 3, 11, 13), (6, 3, 3, 3), (6,), (6, 1, 3, 3), (6,)]
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]

    def run(backend):
        tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]
        x, w1, b1, w2, b2 = tensors
        with backends.use(backend):
            h = F.conv2d(x, w1, b1, padding=1)  # first layer: C = 3
            out = F.conv2d(h, w2, b2, stride=(1, 1), padding=(1, 2), dilation=(1, 2), groups=6)
            (out * out).sum().backward()
        return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]

    want = run("numpy")
    assert not special_calls
    got = run("cpu")
    for g, r in zip(got, want):
        assert_matches(g, r, dtype, "autograd")
    assert set(special_calls) == set(SPECIAL)
