"""conv_transpose2d on the cpu backend (conv2d's native kernels with the roles swapped) against
the NumPy float64 reference: the edge cases of test_conv.py's conv_transpose2d section and
seeded random geometries, float64 and float32, at 1 and 2 threads; non-contiguous and
misaligned inputs; the op layer (forward and backward) on the cpu backend."""

import numpy as np
import pytest

import pyconv
from pyconv import backends
from pyconv.backends import numpy_ref
from pyconv.shapes import pair
from test_conv import CONV_TRANSPOSE2D_EDGES
from test_cpu_gemm_conv import assert_matches, cpu, misaligned, threads  # noqa: F401 (fixtures)

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None or not hasattr(_C, "conv2d_forward"),
                                reason="pyconv._C with the cpu kernels is not built")

KERNELS = ("conv_transpose2d_forward", "conv_transpose2d_backward_input",
           "conv_transpose2d_backward_weight")


def transpose_case(x, k, kernel, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                   bias=True):
    """(x shape (batched), weight shape (C, K/G, R, S), has bias, contract geometry)."""
    if len(x) == 3:
        x = (1,) + tuple(x)
    geometry = dict(stride=pair(stride, "stride", "t"), padding=pair(padding, "padding", "t"),
                    output_padding=pair(output_padding, "output_padding", "t"),
                    dilation=pair(dilation, "dilation", "t"), groups=groups)
    return tuple(x), (x[1], k // groups) + tuple(kernel), bias, geometry


def check_transpose(cpu, case, dtype, seed):
    x_shape, w_shape, has_bias, geometry = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    bias = rng.standard_normal(w_shape[1] * geometry["groups"]) if has_bias else None
    cast = (lambda a: None if a is None else a.astype(dtype))
    want_y = numpy_ref.conv_transpose2d_forward(x, w, bias, **geometry)
    assert_matches(cpu.conv_transpose2d_forward(cast(x), cast(w), cast(bias), **geometry), want_y,
                   dtype, f"conv_transpose2d_forward {case}")
    back = {key: v for key, v in geometry.items() if key != "output_padding"}
    gy = rng.standard_normal(want_y.shape)
    assert_matches(cpu.conv_transpose2d_backward_input(cast(gy), cast(w), x_shape, **back),
                   numpy_ref.conv_transpose2d_backward_input(gy, w, x_shape, **back), dtype,
                   f"conv_transpose2d_backward_input {case}")
    assert_matches(cpu.conv_transpose2d_backward_weight(cast(gy), cast(x), w_shape, **back),
                   numpy_ref.conv_transpose2d_backward_weight(gy, x, w_shape, **back), dtype,
                   f"conv_transpose2d_backward_weight {case}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CONV_TRANSPOSE2D_EDGES))
def test_edge_cases_match_reference(name, dtype, threads, cpu):
    spec = dict(CONV_TRANSPOSE2D_EDGES[name])
    case = transpose_case(spec.pop("x"), spec.pop("k"), spec.pop("kernel"), **spec)
    check_transpose(cpu, case, dtype, seed=len(name))


def random_transpose_case(seed):
    rng = np.random.default_rng(3000 + seed)

    def ints(low, high):
        return tuple(int(v) for v in rng.integers(low, high + 1, 2))

    groups = int(rng.choice([1, 1, 2, 3]))
    c, k = groups * int(rng.integers(1, 5)), groups * int(rng.integers(1, 6))
    kernel, dilation, stride = ints(1, 4), ints(1, 3), ints(1, 3)
    # output_padding must stay below stride or dilation (PyTorch's rule)
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    size = ints(1, 6)
    # padding may crop at most what the transposed output has
    padding = tuple(int(rng.integers(0, 1 + max(0, ((h - 1) * s + d * (r - 1)) // 2)))
                    for h, s, d, r in zip(size, stride, dilation, kernel))
    return transpose_case((int(rng.integers(1, 4)), c) + size, k, kernel, stride, padding,
                          output_padding, dilation, groups, bool(rng.random() < 0.7))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(12))
def test_random_geometries_match_reference(seed, dtype, threads, cpu):
    check_transpose(cpu, random_transpose_case(seed), dtype, seed)


# The adjoint of a deep stride-1 3x3 conv2d: its forward runs the conv2d input gradient and its
# input gradient the conv2d forward, both on the Winograd path at these channel counts.
def test_deep_3x3_runs_on_winograd_and_matches(cpu):
    case = transpose_case((2, 40, 9, 10), 36, (3, 3), padding=1)
    check_transpose(cpu, case, np.float32, seed=5)
    check_transpose(cpu, case, np.float64, seed=5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_contiguous_and_misaligned_inputs(dtype, cpu):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 6, 4, 3)).astype(dtype).transpose(0, 1, 3, 2)  # (2, 6, 3, 4)
    w = rng.standard_normal((6, 2, 3, 2)).astype(dtype)[:, :, ::-1]
    b = rng.standard_normal(4).astype(dtype)
    geometry = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 1), groups=2)
    want = numpy_ref.conv_transpose2d_forward(x.astype(np.float64), w.astype(np.float64),
                                              b.astype(np.float64), **geometry)
    assert_matches(cpu.conv_transpose2d_forward(x, w, b, **geometry), want, dtype, "views")
    assert_matches(cpu.conv_transpose2d_forward(misaligned(x), misaligned(w), misaligned(b),
                                                **geometry), want, dtype, "misaligned")


def test_bad_arguments_raise():
    from pyconv.backends.cpu_kernels import conv

    x, w = np.zeros((1, 2, 3, 3), np.float32), np.zeros((3, 2, 2, 2), np.float32)  # C mismatch
    with pytest.raises(ValueError):
        conv.conv_transpose2d_forward(x, w, None, (1, 1), (0, 0), (0, 0), (1, 1), 1)
    with pytest.raises(TypeError):
        conv.conv_transpose2d_forward(x.astype(np.int32), w[:2], None, (1, 1), (0, 0), (0, 0),
                                      (1, 1), 1)


def test_backend_runs_conv_transpose_natively(cpu):
    for kernel in KERNELS:
        assert getattr(cpu, kernel).runs_on_reference is False


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_transpose2d_autograd_on_the_cpu_backend(dtype, cpu, monkeypatch):
    import pyconv.functional as F

    if "cpu" not in backends.available():
        backends.register("cpu", "pyconv.backends.cpu")
    calls = []
    for kernel in KERNELS:
        real = getattr(cpu, kernel)
        monkeypatch.setattr(cpu, kernel, (lambda real, kernel: lambda *a: calls.append(kernel)
                                          or real(*a))(real, kernel))
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(2, 4, 5, 4), (4, 3, 3, 2), (6,)]]

    def run(backend):
        tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]
        x, w, b = tensors
        with backends.use(backend):
            y = F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2)
            (y * y).sum().backward()
        return [y.detach().numpy()] + [t.grad.numpy() for t in tensors]

    want = run("numpy")
    got = run("cpu")
    assert set(calls) == set(KERNELS)
    for g, w_ in zip(got, want):
        assert g.dtype == dtype
        assert_matches(g, w_.astype(np.float64), dtype)
