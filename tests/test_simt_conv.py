"""kernels/conv2d.cu on the SIMT emulator against the NumPy reference: conv2d forward,
backward-input and backward-weight (implicit GEMM, both tile variants, the float4 and scalar
weight paths, the chunked backward-weight reduction), the depthwise kernels, and
conv_transpose2d through them; float64 and float32, on the edge cases and seeded random
geometries of tests/test_conv.py plus the shapes the kernels are most likely to get wrong (sizes
that are not multiples of the tiles, 1x1, C = 1, K not divisible by 4). Also the ops' autograd
and a LeNet-style network on the simt backend.
"""

import collections

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends.cuda_glue import conv as conv_glue
from pyconv.models import LeNetDigits
from pyconv.shapes import conv_padding, pair
from simt_support import require_simt, schedule  # noqa: F401 - schedule is a fixture
from test_conv import CONV2D_EDGES, CONV_TRANSPOSE2D_EDGES, _random_case, _split

pytestmark = require_simt()

DTYPES = [np.float64, np.float32]


def simt_backend():
    return backends.get("simt")


def numpy_backend():
    return backends.get("numpy")


def _assert_close(ours, want, dtype, what):
    assert ours.shape == want.shape and ours.dtype == want.dtype, (what, ours.shape, want.shape)
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    if dtype == np.float64:
        np.testing.assert_allclose(ours, want, rtol=1e-12, atol=1e-13 * scale, err_msg=what)
    else:
        np.testing.assert_allclose(ours, want, rtol=1e-5, atol=2e-6 * scale, err_msg=what)


def _launches(run):
    """run() and the kernels it launched (entry name -> count)."""
    counter = simt_backend().device.launches
    before = collections.Counter(counter)
    run()
    return counter - before


def _random(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ----- contract-level comparisons ----------------------------------------------------------------


def _check_conv2d(x, w, b, stride, padding, dilation, groups, what=""):
    """Forward, backward-input and backward-weight of the simt backend equal the reference's."""
    simt, ref = simt_backend(), numpy_backend()
    geometry = (stride, padding, dilation, groups)
    what = f"conv2d x{x.shape} w{w.shape} {geometry} {what}"
    want = ref.conv2d_forward(x, w, b, *geometry)
    _assert_close(simt.conv2d_forward(x, w, b, *geometry), want, x.dtype, f"{what} forward")
    g = _random(want.shape, x.dtype, seed=7)
    _assert_close(simt.conv2d_backward_input(g, w, x.shape, *geometry),
                  ref.conv2d_backward_input(g, w, x.shape, *geometry), x.dtype,
                  f"{what} backward_input")
    _assert_close(simt.conv2d_backward_weight(g, x, w.shape, *geometry),
                  ref.conv2d_backward_weight(g, x, w.shape, *geometry), x.dtype,
                  f"{what} backward_weight")


def _check_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups, what=""):
    simt, ref = simt_backend(), numpy_backend()
    geometry = (stride, padding, output_padding, dilation, groups)
    what = f"conv_transpose2d x{x.shape} w{w.shape} {geometry} {what}"
    want = ref.conv_transpose2d_forward(x, w, b, stride, padding, output_padding, dilation,
                                        groups)
    ours = simt.conv_transpose2d_forward(x, w, b, stride, padding, output_padding, dilation,
                                         groups)
    _assert_close(ours, want, x.dtype, f"{what} forward")
    geometry = (stride, padding, dilation, groups)
    g = _random(want.shape, x.dtype, seed=8)
    _assert_close(simt.conv_transpose2d_backward_input(g, w, x.shape, *geometry),
                  ref.conv_transpose2d_backward_input(g, w, x.shape, *geometry), x.dtype,
                  f"{what} backward_input")
    _assert_close(simt.conv_transpose2d_backward_weight(g, x, w.shape, *geometry),
                  ref.conv_transpose2d_backward_weight(g, x, w.shape, *geometry), x.dtype,
                  f"{what} backward_weight")


def _case_arrays(case, transposed, dtype, seed=0):
    """A test_conv case -> (x, weight, bias or None, contract geometry) in ``dtype``; unbatched
    inputs get a batch of one (the op layer does the same)."""
    x_shape, k, kernel, has_bias, geometry = _split(case)
    x_shape = tuple(x_shape) if len(x_shape) == 4 else (1,) + tuple(x_shape)
    groups = geometry.get("groups", 1)
    c = x_shape[1]
    w_shape = (c, k // groups) + tuple(kernel) if transposed else (k, c // groups) + tuple(kernel)
    x, w = _random(x_shape, dtype, seed), _random(w_shape, dtype, seed + 1)
    b = _random((k,), dtype, seed + 2) if has_bias else None
    stride = pair(geometry.get("stride", 1), "stride", "test")
    dilation = pair(geometry.get("dilation", 1), "dilation", "test")
    if transposed:
        padding = pair(geometry.get("padding", 0), "padding", "test")
        output_padding = pair(geometry.get("output_padding", 0), "output_padding", "test")
        return x, w, b, (stride, padding, output_padding, dilation, groups)
    padding = conv_padding(geometry.get("padding", 0), tuple(kernel), stride, dilation)
    return x, w, b, (stride, padding, dilation, groups)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CONV2D_EDGES))
def test_conv2d_edges(schedule, name, dtype):
    x, w, b, geometry = _case_arrays(CONV2D_EDGES[name], False, dtype)
    _check_conv2d(x, w, b, *geometry, what=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CONV_TRANSPOSE2D_EDGES))
def test_conv_transpose2d_edges(schedule, name, dtype):
    x, w, b, geometry = _case_arrays(CONV_TRANSPOSE2D_EDGES[name], True, dtype)
    _check_conv_transpose2d(x, w, b, *geometry, what=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_conv2d_random_geometries(schedule, seed, dtype):
    x, w, b, geometry = _case_arrays(_random_case(seed, False), False, dtype, seed=seed)
    _check_conv2d(x, w, b, *geometry, what=f"seed {seed}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_conv_transpose2d_random_geometries(schedule, seed, dtype):
    x, w, b, geometry = _case_arrays(_random_case(seed, True), True, dtype, seed=seed)
    _check_conv_transpose2d(x, w, b, *geometry, what=f"seed {seed}")


# x shape, weight shape, (stride, (top, bottom, left, right), dilation, groups)
KERNEL_EDGES = {
    "stride2": ((2, 3, 9, 8), (5, 3, 3, 3), ((2, 2), (1, 1, 1, 1), (1, 1), 1)),
    "asymmetric_padding": ((1, 2, 6, 7), (3, 2, 3, 2), ((1, 1), (0, 2, 1, 0), (1, 1), 1)),
    "dilation2": ((1, 3, 9, 9), (4, 3, 3, 3), ((1, 1), (2, 2, 2, 2), (2, 2), 1)),
    "groups2_stride2": ((2, 4, 7, 6), (6, 2, 3, 3), ((2, 2), (1, 0, 1, 1), (1, 1), 2)),
    "one_by_one": ((2, 5, 6, 7), (7, 5, 1, 1), ((1, 1), (0, 0, 0, 0), (1, 1), 1)),
    "first_layer_c1": ((3, 1, 10, 9), (6, 1, 5, 5), ((1, 1), (2, 2, 2, 2), (1, 1), 1)),
    "k_not_multiple_of_4": ((1, 3, 7, 7), (5, 3, 2, 2), ((1, 1), (0, 1, 0, 1), (1, 1), 1)),
    # 33 filters, N*P*Q = 2*9*9 = 162 pixels, depth 4*9 = 36: no size is a multiple of a tile
    "not_tile_multiples": ((2, 4, 9, 9), (33, 4, 3, 3), ((1, 1), (1, 1, 1, 1), (1, 1), 1)),
    "depthwise_strided_dilated": ((2, 4, 9, 8), (4, 1, 3, 2), ((2, 1), (2, 1, 0, 2), (2, 3), 4)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(KERNEL_EDGES))
def test_conv2d_kernel_edges(schedule, name, dtype):
    x_shape, w_shape, geometry = KERNEL_EDGES[name]
    x, w = _random(x_shape, dtype, 1), _random(w_shape, dtype, 2)
    _check_conv2d(x, w, _random(w_shape[:1], dtype, 3), *geometry, what=name)


@pytest.mark.parametrize("tile", sorted(conv_glue.TILES))
def test_both_tile_variants(schedule, monkeypatch, tile):
    """Each tile size on shapes that are not multiples of it (rows, columns and depth)."""
    monkeypatch.setattr(conv_glue, "choose_tile", lambda *args: tile)
    x_shape, w_shape, geometry = KERNEL_EDGES["not_tile_multiples"]
    for dtype in DTYPES:
        x, w = _random(x_shape, dtype, 4), _random(w_shape, dtype, 5)
        launched = _launches(lambda: _check_conv2d(x, w, None, *geometry, what=f"tile {tile}"))
        kind = "f64" if dtype == np.float64 else "f32"
        for entry in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"):
            assert any(name.startswith(entry) and name.endswith(f"_t{tile}_{kind}")
                       for name in launched), (entry, launched)


@pytest.mark.parametrize("vector", [True, False])
def test_float4_and_scalar_weight_paths(schedule, vector):
    """C/G*R*S = 12 allows float4 weight loads; both paths give the reference's result."""
    dev, ref = simt_backend().device, numpy_backend()
    x, w, b = (_random((2, 3, 7, 6), np.float32, 6), _random((5, 3, 2, 2), np.float32, 7),
               _random((5,), np.float32, 8))
    geometry = ((1, 2), (1, 0, 0, 1), (1, 1), 1)
    P = (7 + 1 - 2) // 1 + 1
    Q = (6 + 1 - 2) // 2 + 1
    result = {}
    launched = _launches(lambda: result.update(y=conv_glue._forward(
        dev, x, w, b, (P, Q), geometry[0], (1, 0), geometry[2], 1, vector=vector)))
    _assert_close(result["y"], ref.conv2d_forward(x, w, b, *geometry), np.float32,
                  f"vector={vector}")
    assert any(("_wvec_" in name) == vector for name in launched), launched


def test_float4_path_is_the_default_when_allowed_and_refused_otherwise():
    dev = simt_backend().device
    x = _random((1, 3, 5, 5), np.float32, 9)
    ok = _random((4, 3, 2, 2), np.float32, 10)  # depth 12
    launched = _launches(lambda: simt_backend().conv2d_forward(x, ok, None, (1, 1), (0,) * 4,
                                                               (1, 1), 1))
    assert any("_wvec_" in name for name in launched), launched
    odd = _random((4, 3, 3, 3), np.float32, 11)  # depth 27
    launched = _launches(lambda: simt_backend().conv2d_forward(x, odd, None, (1, 1), (0,) * 4,
                                                               (1, 1), 1))
    assert not any("_wvec_" in name for name in launched), launched
    with pytest.raises(ValueError, match="float4"):
        conv_glue._forward(dev, x, odd, None, (3, 3), (1, 1), (0, 0), (1, 1), 1, vector=True)
    misaligned = np.empty(4 * 12 + 1, np.float32)[1:].reshape(4, 3, 2, 2)
    misaligned[...] = ok
    launched = _launches(lambda: simt_backend().conv2d_forward(x, misaligned, None, (1, 1),
                                                               (0,) * 4, (1, 1), 1))
    assert not any("_wvec_" in name for name in launched), launched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk", [8, 24, 1000])
def test_backward_weight_chunks_are_summed_in_order(schedule, chunk, dtype):
    """N*P*Q = 2*7*7 = 98 split into chunks of 8 (13 chunks, a ragged last one), 24 (5) or one."""
    dev, ref = simt_backend().device, numpy_backend()
    x, g = _random((2, 4, 7, 7), dtype, 12), _random((2, 6, 7, 7), dtype, 13)
    geometry = ((1, 1), (1, 1, 1, 1), (1, 1), 2)
    result = {}
    launched = _launches(lambda: result.update(w=conv_glue._backward_weight(
        dev, g, x, (6, 2, 3, 3), geometry[0], (1, 1), geometry[2], 2, chunk=chunk)))
    _assert_close(result["w"], ref.conv2d_backward_weight(g, x, (6, 2, 3, 3), *geometry), dtype,
                  f"chunk {chunk}")
    reduced = any(name.startswith("conv2d_backward_weight_reduce") for name in launched)
    assert reduced == (chunk < 98), launched


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_kernels_serve_groups_equal_channels(schedule, dtype):
    x_shape, w_shape, geometry = KERNEL_EDGES["depthwise_strided_dilated"]
    x, w = _random(x_shape, dtype, 14), _random(w_shape, dtype, 15)
    launched = _launches(lambda: _check_conv2d(x, w, None, *geometry, what="depthwise"))
    kind = "f64" if dtype == np.float64 else "f32"
    assert set(launched) == {f"conv2d_depthwise_{p}_{kind}"
                             for p in ("forward", "backward_input", "backward_weight")}, launched


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_launches_nothing(schedule, dtype):
    x, w = np.zeros((0, 3, 5, 5), dtype), _random((4, 3, 3, 3), dtype, 16)
    launched = _launches(lambda: _check_conv2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1))
    assert not launched, launched


# ----- op level ----------------------------------------------------------------------------------


def _run_op(backend, op, arrays, grad_seed):
    with backends.use(backend):
        tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]
        y = op(*tensors)
        y.backward(pyconv.tensor(_random(y.shape, arrays[0].dtype, grad_seed)))
        return [y.detach().numpy()] + [t.grad.numpy() for t in tensors]


OPS = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2),
                                        groups=2),
               ((2, 4, 7, 8), (6, 2, 3, 2), (6,))),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                            output_padding=1, groups=2),
                         ((2, 4, 4, 3), (4, 3, 3, 3), (6,))),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_autograd_on_simt_matches_numpy(schedule, name, dtype):
    op, shapes = OPS[name]
    arrays = [_random(shape, dtype, 20 + i) for i, shape in enumerate(shapes)]
    want = _run_op("numpy", op, arrays, 30)
    launched = _launches(lambda: want.extend(_run_op("simt", op, arrays, 30)))
    half = len(want) // 2
    for got, expected, what in zip(want[half:], want[:half], ("y", "grad_x", "grad_w", "grad_b")):
        _assert_close(got, expected, dtype, f"{name} {what}")
    kind = "f64" if dtype == np.float64 else "f32"
    for entry in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"):
        assert any(n.startswith(entry) and n.endswith(kind) for n in launched), (entry, launched)


def test_lenet_forward_and_backward_on_simt():
    """LeNetDigits (C = 1 first layer, 16 -> 32 channels) forward + backward on a batch of 2."""
    x = _random((2, 1, 8, 8), np.float32, 40)
    results = {}
    for backend in ("numpy", "simt"):
        with backends.use(backend):
            pyconv.manual_seed(0)
            model = LeNetDigits()
            logits = model(pyconv.tensor(x))
            logits.sum().backward()
            results[backend] = [logits.detach().numpy()] + [
                p.grad.numpy() for p in model.parameters()]
    for got, want in zip(results["simt"], results["numpy"]):
        _assert_close(got, want, np.float32, "LeNetDigits")
    launched = simt_backend().device.launches
    assert any(n.startswith("conv2d_backward_weight") for n in launched), launched


def test_glue_refuses_geometries_beyond_the_kernels_32_bit_decoding():
    """The kernels decode GEMM columns (pixels of one channel over the batch) in 32 bits."""
    big = dict(N=2**12, C=1, H=2**10, W=2**10, K=1, P=1, Q=1, R=1, S=1)
    with pytest.raises(ValueError, match="N\\*H\\*W"):
        conv_glue._geometry(*big.values(), (1, 1), (0, 0), (1, 1), 1)
