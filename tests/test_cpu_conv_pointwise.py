"""The cpu backend's pointwise conv2d kernels (csrc/cpu/conv2d_pointwise.cpp: 1x1 kernel, stride
1, no padding, groups 1), called through pyconv._C, against the NumPy float64 reference: the 1x1
edge cases of test_conv.py, shapes that cross every tile and block of the GEMMs (channels not
multiples of the 6x16 tile, odd H*W, reductions longer than a KC block and split in image
chunks, both orientations of the weight gradient, both of its paths: unpacked dot tiles for
runs of >= 256 pixels, the packed GEMM below), in float64 and float32 at 1 and 2 threads;
thread-count independence; views and misaligned arrays through the backend module (which must
dispatch here); errors at the boundary; the op layer's autograd on the cpu backend."""

import numpy as np
import pytest

import pyconv
from pyconv.backends import numpy_ref
from pyconv.backends.cpu_kernels import ready
from cpu_support import assert_close_to_reference
from test_conv import CONV2D_EDGES
from test_cpu_conv_special import record_calls
from test_cpu_gemm_conv import misaligned, threads  # noqa: F401 (threads: a fixture)

_C = pyconv._native._C
NAMES = ("conv2d_pointwise_forward", "conv2d_pointwise_backward_input",
         "conv2d_pointwise_backward_weight")


def native(name):
    """_C.<name>, or its development build (suffix _dev) while the dispatch is not switched."""
    return getattr(_C, name, None) or getattr(_C, name + "_dev", None)


pytestmark = pytest.mark.skipif(_C is None or native(NAMES[0]) is None,
                                reason="pyconv._C with the pointwise conv kernels is not built")

# relative to the output's scale (its largest magnitude, at least 1)
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
GEOMETRY = dict(stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1)
DTYPES = [np.float64, np.float32]


def assert_matches(got, want, dtype, what=""):
    assert_close_to_reference(got, want, dtype, TOLERANCE[dtype], what)


def edge_shapes():
    """The stride-1 1x1 edge cases of test_conv.py as (N, C, H, W, K, bias)."""
    out = {}
    for name, spec in CONV2D_EDGES.items():
        if tuple(spec["kernel"]) == (1, 1) and spec.get("stride", 1) in (1, (1, 1)):
            x = tuple(spec["x"]) if len(spec["x"]) == 4 else (1,) + tuple(spec["x"])
            out[name] = x + (spec["k"], spec.get("bias", True))
    assert out  # the edge list still has a pointwise case
    return out


# (N, C, H, W, K, bias): tile and block edges of the GEMMs
SHAPES = {
    "single_pixel": (1, 1, 1, 1, 1, True),
    "one_image_odd_pixels": (1, 13, 7, 9, 11, True),
    "channels_around_tiles": (2, 17, 5, 5, 7, False),
    "k_one": (3, 9, 3, 7, 1, True),
    "c_one": (2, 1, 6, 5, 10, True),
    "reduction_over_kc": (3, 10, 11, 13, 22, True),       # 429 pixels per image
    "many_images_chunks": (11, 6, 5, 7, 5, False),          # 11 images: uneven chunks
    "k_major_orientation": (2, 32, 9, 15, 6, True),          # dW as K x C
    "c_major_orientation": (2, 6, 9, 15, 32, True),          # dW as C x K (swapped)
    "rows_over_mc": (1, 150, 4, 10, 160, True),              # 150/160 rows > MC = 144
    "columns_over_nc": (1, 5, 37, 31, 7, True),              # 1147 pixels > NC = 1024
    "pointwise_layer": (2, 64, 14, 14, 48, True),
    "wide_weight_gradient": (2, 20, 3, 3, 1100, False),     # dW columns over NC
    "streamed_rows": (3, 40, 8, 6, 26, True),               # H*W a multiple of 8: streamed tiles
    "streamed_long_rows": (2, 70, 16, 72, 150, True),        # and column blocks over NC
    # weight gradient as unpacked dot products (runs of >= 256 pixels per image): rows not
    # multiples of its 3 x 4 tile, pixels not multiples of the vector width, both operands as
    # the L2-resident side, and images cut into several runs
    "dot_path_first_run": (1, 3, 16, 16, 5, True),          # 256 pixels: the smallest run
    "gemm_path_last_run": (1, 3, 15, 17, 5, True),          # 255 pixels: still the packed GEMM
    "dot_inner_grad_y": (2, 7, 17, 19, 5, True),             # K < C, 323 pixels
    "dot_inner_x": (1, 5, 16, 20, 10, False),                # C < K, 320 pixels
    "dot_square": (3, 4, 33, 9, 4, True),                    # C == K, 297 pixels
    "dot_runs_split": (1, 130, 65, 66, 140, False),          # 4290 pixels: 2 (fp32) / 3 (fp64) runs
}


def make(shape, seed):
    n, c, h, w, k, has_bias = shape
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 1, 1))
    bias = rng.standard_normal(k) if has_bias else None
    gy = rng.standard_normal((n, k, h, w))
    return x, wt, bias, gy


def cast(a, dtype):
    return None if a is None else a.astype(dtype)


def check(shape, dtype, seed):
    x, w, bias, gy = make(shape, seed)
    want = numpy_ref.conv2d_forward(x, w, bias, **GEOMETRY)
    got = native("conv2d_pointwise_forward")(cast(x, dtype), cast(w, dtype), cast(bias, dtype))
    assert_matches(got, want, dtype, f"forward {shape}")
    got = native("conv2d_pointwise_backward_input")(cast(gy, dtype), cast(w, dtype))
    assert_matches(got, numpy_ref.conv2d_backward_input(gy, w, x.shape, **GEOMETRY), dtype,
                   f"backward_input {shape}")
    got = native("conv2d_pointwise_backward_weight")(cast(gy, dtype), cast(x, dtype))
    assert_matches(got, numpy_ref.conv2d_backward_weight(gy, x, w.shape, **GEOMETRY), dtype,
                   f"backward_weight {shape}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(edge_shapes()))
def test_pointwise_conv_edge_cases(name, dtype, threads):
    check(edge_shapes()[name], dtype, seed=len(name))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_pointwise_tile_and_block_edges(name, dtype, threads):
    check(SHAPES[name], dtype, seed=len(name))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_pointwise_random_shapes(seed, dtype, threads):
    rng = np.random.default_rng(5000 + seed)
    n, c, h, w, k = (int(v) for v in rng.integers(1, [5, 40, 20, 20, 40]))
    check((n, c, h, w, k, bool(rng.random() < 0.7)), dtype, seed)


@pytest.mark.parametrize("shape", [(10, 24, 17, 19, 40, True), (10, 24, 5, 7, 40, True)],
                         ids=["dot_weight_gradient", "gemm_weight_gradient"])
def test_results_do_not_depend_on_the_thread_count(shape):
    x, w, bias, gy = (cast(a, np.float32) for a in make(shape, 3))
    before = pyconv.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            pyconv.set_num_threads(n)
            outs.append((native("conv2d_pointwise_forward")(x, w, bias),
                         native("conv2d_pointwise_backward_input")(gy, w),
                         native("conv2d_pointwise_backward_weight")(gy, x)))
    finally:
        pyconv.set_num_threads(before)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)  # bit for bit


def test_bad_arguments_raise_errors_that_name_them():
    x = np.zeros((2, 3, 4, 5), np.float32)
    w = np.zeros((6, 3, 1, 1), np.float32)
    gy = np.zeros((2, 6, 4, 5), np.float32)
    fwd, bwd_in, bwd_w = (native(name) for name in NAMES)
    with pytest.raises(TypeError, match="x must be float32 or float64, got int64"):
        fwd(x.astype(np.int64), w, None)
    with pytest.raises(TypeError, match="weight must be float32 like the other arrays, got float64"):
        fwd(x, w.astype(np.float64), None)
    with pytest.raises(TypeError, match="bias must be float32"):
        fwd(x, w, np.zeros(6))
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        fwd(x.transpose(0, 1, 3, 2), w, None)
    with pytest.raises(ValueError, match="x must be aligned"):
        fwd(misaligned(x), w, None)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        fwd(x[0], w, None)
    with pytest.raises(ValueError, match=r"weight must have shape \(K, C, 1, 1\) with C=3"):
        fwd(x, np.zeros((6, 3, 3, 3), np.float32), None)
    with pytest.raises(ValueError, match=r"weight must have shape \(K, C, 1, 1\) with C=3"):
        fwd(x, np.zeros((6, 4, 1, 1), np.float32), None)
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\), got \(5,\)"):
        fwd(x, w, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"weight must have shape \(K, C, 1, 1\) with K=6"):
        bwd_in(gy, np.zeros((5, 3, 1, 1), np.float32))
    with pytest.raises(TypeError, match="grad_y must be float32 or float64"):
        bwd_in(gy.astype(np.int32), w)
    with pytest.raises(ValueError, match="weight must have 4 dimensions"):
        bwd_in(gy, w[:, :, 0])
    with pytest.raises(ValueError, match="must have the same batch and spatial sizes"):
        bwd_w(gy, x[:1].copy())
    with pytest.raises(ValueError, match="must have the same batch and spatial sizes"):
        bwd_w(gy[:, :, :3].copy(), x)
    with pytest.raises(TypeError, match="x must be float32 like the other arrays"):
        bwd_w(gy, x.astype(np.float64))
    with pytest.raises(ValueError, match="grad_y must be aligned"):
        bwd_w(misaligned(gy), x)


def test_sizes_whose_products_overflow_are_rejected_without_allocating():
    # empty batches carry any channel count: dW would be 2**31 x 2**31 values
    empty = np.zeros((0, 2 ** 31, 5, 5), np.float32)
    with pytest.raises(ValueError, match="overflows 64 bits"):
        native("conv2d_pointwise_backward_weight")(empty, empty)


# ---------------------------------------------------------------------------------------------
# through the cpu backend (pyconv/backends/cpu_kernels/conv.py dispatches pointwise convs here)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def pointwise_calls(monkeypatch):
    """Names of the pointwise kernels called (under their plain names) while the test runs."""
    return record_calls(monkeypatch, NAMES, native)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backend_module_takes_views_and_misaligned_arrays(dtype, pointwise_calls):
    from pyconv.backends import cpu

    cpu.check_available()
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 19, 7, 5)).astype(dtype).transpose(0, 3, 2, 1)  # (2, 5, 7, 19)
    w = rng.standard_normal((9, 10, 1, 1)).astype(dtype)[:, ::2]  # (9, 5, 1, 1)
    b = rng.standard_normal(18).astype(dtype)[::2]
    gy = rng.standard_normal((2, 9, 19, 7)).astype(dtype).transpose(0, 1, 3, 2)
    x64, w64, b64, gy64 = (a.astype(np.float64) for a in (x, w, b, gy))
    geo = dict(stride=(1, 1), padding=(0, 0, 0, 0), dilation=(2, 3), groups=1)  # dilation is moot
    assert_matches(cpu.conv2d_forward(misaligned(x), w, misaligned(b), **geo),
                   numpy_ref.conv2d_forward(x64, w64, b64, **geo), dtype, "backend forward")
    assert_matches(cpu.conv2d_backward_input(gy, misaligned(w), x.shape, **geo),
                   numpy_ref.conv2d_backward_input(gy64, w64, x.shape, **geo), dtype, "backend backward_input")
    assert_matches(cpu.conv2d_backward_weight(misaligned(gy), x, w.shape, **geo),
                   numpy_ref.conv2d_backward_weight(gy64, x64, w.shape, **geo), dtype, "backend backward_weight")
    assert pointwise_calls == list(NAMES)
    # not pointwise: padding, stride, groups go elsewhere
    cpu.conv2d_forward(ready(x), w, None, stride=(1, 1), padding=(1, 0, 0, 0), dilation=(1, 1), groups=1)
    cpu.conv2d_forward(ready(x), w, None, stride=(2, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1)
    assert pointwise_calls == list(NAMES)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pointwise_autograd_on_the_cpu_backend(dtype, pointwise_calls):
    import pyconv.functional as F
    from pyconv import backends

    if "cpu" not in backends.available():
        backends.register("cpu", "pyconv.backends.cpu")
    rng = np.random.default_rng(14)
    shapes = [(3, 7, 9, 11), (12, 7, 1, 1), (12,), (5, 12, 1, 1)]
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]

    def run(backend):
        tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]
        x, w1, b1, w2 = tensors
        with backends.use(backend):
            out = F.conv2d(F.conv2d(x, w1, b1), w2)
            (out * out).sum().backward()
        return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]

    want = run("numpy")
    assert not pointwise_calls
    got = run("cpu")
    for g, r in zip(got, want):
        assert_matches(g, r, dtype, "autograd")
    assert set(pointwise_calls) == set(NAMES)
