"""The cpu backend's C++ softmax, log_softmax, cross_entropy, nll_loss, mse_loss and binary
cross-entropy kernels (csrc/cpu/softmax.cpp, loss.cpp) against the NumPy reference: every dim of
1-4-d arrays, the stability edges of test_softmax.py, outputs large enough for streaming stores,
the class-loss cases of test_loss.py (weights, ignored rows, all rows ignored, custom
ignore_index, label smoothing, +-1e4 and -inf logits, empty batches) and its bce cases (weight
shapes, probabilities at 0 and 1, extreme logits, pos_weight), float64 (1e-12) and float32
(1e-5), 1 and 2 threads; the vectorised float32 exps against np.exp; non-contiguous and
misaligned inputs; errors at the native boundary; the op layer on the cpu backend equal to the
numpy backend."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends import numpy_ref
from pyconv.benchmarks.harness import array_at_offset
from test_cpu_pool import assert_close, threads  # noqa: F401 (threads is a fixture)
from test_loss import REDUCTIONS, WEIGHT_SHAPES, _bce_case, _class_case

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None or not hasattr(_C, "softmax_forward"),
                                reason="pyconv._C with the softmax kernels is not built")

DTYPES = [np.float64, np.float32]
SOFTMAX = [("softmax_forward", "softmax_backward"), ("log_softmax_forward", "log_softmax_backward")]


@pytest.fixture(scope="module")
def cpu():
    from pyconv.backends import cpu as module
    from pyconv.backends.cpu_kernels import loss, softmax

    assert all(not getattr(module, k).runs_on_reference for k in softmax.__all__ + loss.__all__)
    return module


def check_softmax(cpu, x, dim, dtype, what=""):
    x = np.asarray(x).astype(dtype)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    for fwd, bwd in SOFTMAX:
        y = getattr(cpu, fwd)(x, dim)
        assert_close(y, getattr(numpy_ref, fwd)(x.astype(np.float64), dim), dtype, f"{fwd} {what}")
        # the backward from the same y on both sides
        assert_close(getattr(cpu, bwd)(g, y, dim),
                     getattr(numpy_ref, bwd)(g.astype(np.float64), y.astype(np.float64), dim),
                     dtype, f"{bwd} {what}")


# ----- the exp ------------------------------------------------------------------------------------


def test_float32_exp_within_one_ulp():
    """Against np.exp in float64 over [-110, 95]: at most 1 ulp of the float32 result, down to
    the denormals; exact 0, inf and NaN at the edges."""
    x = np.linspace(-110, 95, 400_001).astype(np.float32)
    edges = np.float32([np.inf, -np.inf, np.nan, 88.72, 88.73, 89.5, -87.3, -103.3, -103.97,
                        -104.5, 0.0, -0.0, 1e-8, -1e-8])
    got = _C.exp_f32(np.concatenate([x, edges]))
    want = np.exp(np.concatenate([x, edges]).astype(np.float64))
    with np.errstate(over="ignore"):
        want32 = want.astype(np.float32)
    exact = ~np.isfinite(want32) | (want32 == 0)
    np.testing.assert_array_equal(got[exact], want32[exact])
    ulps = np.abs(got[~exact] - want[~exact]) / np.spacing(np.abs(want32[~exact]))
    assert ulps.max() <= 1.0, f"max error {ulps.max():.3f} ulp"


# ----- softmax and log_softmax --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", range(4))
def test_every_dim_of_4d(cpu, dim, dtype, threads):
    check_softmax(cpu, np.random.default_rng(2).standard_normal((2, 3, 4, 5)) * 3, dim, dtype, f"dim {dim}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(10))
def test_random_shapes(cpu, seed, dtype, threads):
    rng = np.random.default_rng(100 + seed)
    ndim = int(rng.integers(1, 5))
    shape = tuple(int(s) for s in rng.integers(1, 6, size=ndim))
    dim = int(rng.integers(0, ndim))
    check_softmax(cpu, rng.standard_normal(shape) * rng.uniform(0.1, 20), dim, dtype, f"{shape} dim={dim}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", [((64, 1000), 1), ((37, 1003), 1), ((1003, 37), 0),
                                       ((3, 70, 130), 1), ((5, 300, 7), 1), ((2, 9, 129), 2)])
def test_larger_rows_and_columns(cpu, shape, dim, dtype, threads):
    """Rows with vector tails, column blocks beyond 64, work split over threads."""
    check_softmax(cpu, np.random.default_rng(3).standard_normal(shape) * 4, dim, dtype, str(shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1])
def test_stability_edges(cpu, dim, dtype):
    """+-1e4 (finite, exact), equal rows, -inf entries, rows of -inf / with NaN / with +inf
    (NaN rows, as the reference)."""
    x = np.array([[-1e4, 1e4, 0.0, 1.0], [1e4, 1e4, -1e4, 2.0], [-1e4, -1e4, -1e4, -1e4],
                  [5e3, -5e3, 1e4, 3.0], [2.5, 2.5, 2.5, 2.5], [-np.inf, 0.0, 1.0, -np.inf],
                  [-np.inf] * 4, [np.nan, 0.0, 1.0, 2.0], [np.inf, 0.0, 1.0, 2.0]])
    x = x if dim == 1 else x.T.copy()
    with np.errstate(invalid="ignore"):
        check_softmax(cpu, x, dim, dtype, "edges")
    wide = np.tile(x, (1, 9)) if dim == 1 else np.tile(x, (9, 1))  # rows of 36: vector path
    with np.errstate(invalid="ignore"):
        check_softmax(cpu, wide, dim, dtype, "wide edges")


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_arrays(cpu, dtype):
    for shape, dim in [((3, 0), 1), ((0, 4), 1), ((0, 4), 0), ((2, 0, 3), 2), ((1,), 0)]:
        check_softmax(cpu, np.zeros(shape), dim, dtype, str(shape))


def test_float32_fast_exp_within_one_ulp(cpu):
    """The range-checked exp of the row kernels (exp8_normal, arguments within +-86), read back
    exactly through log_softmax_backward: with grad_y = [1, 0, ...] per row, grad_x[:, 1:] is
    -exp(y[:, 1:]) with no other rounding."""
    y = np.linspace(-86, 86, 100_000, dtype=np.float32).reshape(-1, 100)
    g = np.zeros_like(y)
    g[:, 0] = 1
    got = -cpu.log_softmax_backward(g, y, 1)[:, 1:].astype(np.float64)
    want = np.exp(y[:, 1:].astype(np.float64))
    ulps = np.abs(got - want) / np.spacing(np.abs(want.astype(np.float32)))
    assert ulps.max() <= 1.0, f"max error {ulps.max():.3f} ulp"


@pytest.mark.parametrize("shape", [(2100, 1000), (2099, 1001)])
def test_streamed_outputs(cpu, shape, threads):
    """Outputs of 2^21 values and more are written with non-temporal stores (from a misaligned
    row start when rows are 1001 long); rows with a range beyond 86 or non-finite values take the
    exact exp in the same call."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape) * 4
    x[::5] *= 30
    x[7, 3], x[8, 0], x[9, :] = np.nan, -np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        check_softmax(cpu, x, 1, np.float32, f"streamed {shape}")


def _apart(a, b):
    """Distance between two arrays' start addresses modulo 4 KiB."""
    d = (a.ctypes.data - b.ctypes.data) % 4096
    return min(d, 4096 - d)


@pytest.mark.parametrize("offset", [0, 32, 64, 2048, 4064])
@pytest.mark.parametrize("kernels", SOFTMAX, ids=lambda k: k[0].split("_forward")[0])
def test_pooled_outputs_start_apart_from_their_inputs(cpu, kernels, offset):
    """Pooled blocks are page-aligned. Streaming gradient rows ran 2.1-2.4x slower when grad_y,
    y and the output nearly coincided modulo 4 KiB (softmax_backward (4096, 1000): 2.4 -> 5.2 ms),
    so the row kernels start their outputs away from their inputs; the values are unchanged."""
    forward, backward = kernels
    rng = np.random.default_rng(11)
    x = array_at_offset(rng.standard_normal((64, 1000)).astype(np.float32), offset)  # 256 KB: pooled
    y = getattr(cpu, forward)(x, 1)
    assert _apart(y, x) >= 1792
    for g in (array_at_offset(rng.standard_normal(x.shape).astype(np.float32), (offset + 64) % 4096),
              array_at_offset(rng.standard_normal(x.shape).astype(np.float32), y.ctypes.data % 4096)):
        gx = getattr(cpu, backward)(g, y, 1)
        assert min(_apart(gx, g), _apart(gx, y)) >= 768, (offset, g.ctypes.data % 4096, y.ctypes.data % 4096)
        assert_close(gx, getattr(numpy_ref, backward)(g.astype(np.float64), y.astype(np.float64), 1), np.float32,
                     f"{backward} at {gx.ctypes.data % 4096}")
    assert_close(y, getattr(numpy_ref, forward)(x.astype(np.float64), 1), np.float32, forward)


def test_results_do_not_depend_on_the_thread_count(cpu):
    x = np.random.default_rng(4).standard_normal((512, 300)).astype(np.float32)
    out = []
    for n in (1, 2):
        pyconv.set_num_threads(n)
        out.append([cpu.softmax_forward(x, 1), cpu.log_softmax_forward(x, 0)])
    pyconv.set_num_threads(1)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


# ----- cross_entropy and nll_loss ---------------------------------------------------------------------


def _rows(x, target):
    """test_loss cases (N, C, d...) as the op layer hands them to the kernels: (M, C), (M,)."""
    if x.ndim > 2:
        x = np.moveaxis(x, 1, -1)
    return np.ascontiguousarray(x.reshape(-1, x.shape[-1])), np.asarray(target, np.int64).reshape(-1)


def check_class_losses(cpu, x, target, weight, dtype, reduction, ignore_index=-100, smoothing=0.0, what=""):
    x = x.astype(dtype)
    w = None if weight is None else np.asarray(weight).astype(dtype)
    w64 = None if weight is None else np.asarray(weight, np.float64)
    x64 = x.astype(np.float64)
    rng = np.random.default_rng(5)
    g = (rng.standard_normal(len(target)) if reduction == "none" else np.array(rng.standard_normal())).astype(dtype)
    with np.errstate(all="ignore"):
        loss, lp = cpu.cross_entropy_forward(x, target, w, reduction, ignore_index, smoothing)
        rloss, rlp = numpy_ref.cross_entropy_forward(x64, target, w64, reduction, ignore_index, smoothing)
        assert_close(loss, rloss, dtype, f"cross_entropy loss {what}")
        assert_close(lp, rlp, dtype, f"cross_entropy log_probs {what}")
        assert_close(cpu.cross_entropy_backward(g, lp, target, w, reduction, ignore_index, smoothing),
                     numpy_ref.cross_entropy_backward(g.astype(np.float64), lp.astype(np.float64), target, w64,
                                                      reduction, ignore_index, smoothing),
                     dtype, f"cross_entropy grad {what}")
        assert_close(cpu.nll_loss_forward(x, target, w, reduction, ignore_index),
                     numpy_ref.nll_loss_forward(x64, target, w64, reduction, ignore_index), dtype, f"nll {what}")
        assert_close(cpu.nll_loss_backward(g, target, w, x.shape, reduction, ignore_index),
                     numpy_ref.nll_loss_backward(g.astype(np.float64), target, w64, x.shape, reduction,
                                                 ignore_index), dtype, f"nll grad {what}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("seed", range(6))
def test_class_losses_random(cpu, seed, reduction, dtype, threads):
    x, target, weight = _class_case(10 + seed, spatial=seed % 3)
    x, target = _rows(x, target)
    check_class_losses(cpu, x, target, weight if seed % 2 == 0 else None, dtype, reduction,
                       smoothing=0.0 if seed < 3 else 0.2, what=f"seed {seed}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_all_targets_ignored(cpu, smoothing, with_weight, dtype):
    x, target, weight = _class_case(30, spatial=1, ignored_fraction=1.0)
    x, target = _rows(x, target)
    for reduction in REDUCTIONS:
        check_class_losses(cpu, x, target, weight if with_weight else None, dtype, reduction,
                           smoothing=smoothing, what="all ignored")
    loss, _ = cpu.cross_entropy_forward(x.astype(dtype), target, None, "mean", -100, smoothing)
    assert loss.shape == () and np.isnan(loss)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore_index", [1, -1])
def test_custom_ignore_index(cpu, ignore_index, dtype):
    x, target, weight = _class_case(40, spatial=1, ignore_index=ignore_index)
    target[0, 0] = ignore_index
    x, target = _rows(x, target)
    for reduction in REDUCTIONS:
        check_class_losses(cpu, x, target, weight, dtype, reduction, ignore_index, 0.15, "custom ignore")


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_and_minus_inf_logits_and_empty_batch(cpu, dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [100.0, 100.0, 100.0], [-np.inf, 0.0, 1.0]])
    target = np.array([1, 2, 0, 2])
    for reduction in REDUCTIONS:
        for smoothing in (0.0, 0.1):  # with smoothing the -inf row's loss is inf, as the reference
            check_class_losses(cpu, x, target, None, dtype, reduction, smoothing=smoothing, what="large")
        check_class_losses(cpu, np.zeros((0, 3)), np.zeros(0, np.int64), None, dtype, reduction, what="empty")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4096, 10), (300, 1000), (5, 3001)])
def test_class_losses_large(cpu, shape, dtype, threads):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape) * 3
    target = rng.integers(0, shape[1], shape[0])
    target[::7] = -100
    for reduction in ("none", "mean"):
        check_class_losses(cpu, x, target, rng.uniform(0.2, 2, shape[1]), dtype, reduction, smoothing=0.1,
                           what=str(shape))


# ----- mse_loss -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2, 2), (), (0, 3)])
def test_mse_loss(cpu, shape, reduction, dtype):
    rng = np.random.default_rng(70)
    x, t = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    g = (rng.standard_normal(shape) if reduction == "none" else np.array(rng.standard_normal())).astype(dtype)
    with np.errstate(all="ignore"):
        assert_close(cpu.mse_loss_forward(x, t, reduction),
                     numpy_ref.mse_loss_forward(x.astype(np.float64), t.astype(np.float64), reduction), dtype)
        for got, want in zip(cpu.mse_loss_backward(g, x, t, reduction),
                             numpy_ref.mse_loss_backward(g.astype(np.float64), x.astype(np.float64),
                                                         t.astype(np.float64), reduction)):
            assert_close(got, want, dtype, "mse grad")


# ----- binary cross-entropy ------------------------------------------------------------------------


def check_bce(cpu, x, t, w, dtype, reduction, what=""):
    """binary_cross_entropy forward and backward against the reference (float64)."""
    x, t = np.asarray(x).astype(dtype), np.asarray(t).astype(dtype)
    w32 = None if w is None else np.asarray(w).astype(dtype)
    w64 = None if w is None else np.asarray(w, np.float64)
    rng = np.random.default_rng(11)
    g = (rng.standard_normal(x.shape) if reduction == "none" else np.array(rng.standard_normal())).astype(dtype)
    x64, t64, g64 = (a.astype(np.float64) for a in (x, t, g))
    with np.errstate(all="ignore"):
        assert_close(cpu.binary_cross_entropy_forward(x, t, w32, reduction),
                     numpy_ref.binary_cross_entropy_forward(x64, t64, w64, reduction), dtype, f"bce {what}")
        assert_close(cpu.binary_cross_entropy_backward(g, x, t, w32, reduction),
                     numpy_ref.binary_cross_entropy_backward(g64, x64, t64, w64, reduction), dtype,
                     f"bce grad {what}")


def check_bce_logits(cpu, x, t, w, pw, dtype, reduction, what=""):
    x, t = np.asarray(x).astype(dtype), np.asarray(t).astype(dtype)
    cast = [None if a is None else np.asarray(a).astype(dtype) for a in (w, pw)]
    ref = [None if a is None else np.asarray(a, np.float64) for a in (w, pw)]
    rng = np.random.default_rng(12)
    g = (rng.standard_normal(x.shape) if reduction == "none" else np.array(rng.standard_normal())).astype(dtype)
    x64, t64, g64 = (a.astype(np.float64) for a in (x, t, g))
    assert_close(cpu.binary_cross_entropy_with_logits_forward(x, t, *cast, reduction),
                 numpy_ref.binary_cross_entropy_with_logits_forward(x64, t64, *ref, reduction), dtype,
                 f"bce_with_logits {what}")
    got = cpu.binary_cross_entropy_with_logits_backward(g, x, t, *cast, reduction)
    want = numpy_ref.binary_cross_entropy_with_logits_backward(g64, x64, t64, *ref, reduction)
    assert isinstance(got, tuple) and len(got) == 2
    for a, b, name in zip(got, want, ("input", "target")):
        assert_close(a, b, dtype, f"bce_with_logits grad_{name} {what}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", sorted(WEIGHT_SHAPES))
def test_binary_cross_entropy_weights(cpu, weight_shape, reduction, dtype):
    x, t, rng = _bce_case(80, (3, 4))
    shape = WEIGHT_SHAPES[weight_shape]
    w = None if shape is None else rng.uniform(0.3, 2, size=shape)
    check_bce(cpu, x, t, w, dtype, reduction, weight_shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_at_exact_zero_and_one(cpu, reduction, dtype):
    """log(0) clamped to -100: a confident wrong answer costs 100, 0 * log(0) costs 0; the
    gradient's x(1 - x) floored at 1e-12."""
    x = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 1e-30, 1 - 1e-7])
    t = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.7, 1.0, 1.0, 0.0])
    check_bce(cpu, x, t, None, dtype, reduction, "0 and 1")
    if reduction == "none":
        got = cpu.binary_cross_entropy_forward(x[:7].astype(dtype), t[:7].astype(dtype), None, "none")
        np.testing.assert_allclose(got, [0.0, 100.0, 30.0, 0.0, 100.0, 30.0, np.log(2)], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight_shape", [None, (4,), (3, 4)])
@pytest.mark.parametrize("weight_shape", [None, (4,), (3, 1), (1, 4), ()])
def test_binary_cross_entropy_with_logits_weights(cpu, weight_shape, pos_weight_shape, reduction, dtype):
    rng = np.random.default_rng(90)
    x = rng.standard_normal((3, 4)) * 4
    t = rng.uniform(0, 1, size=(3, 4))
    w = None if weight_shape is None else rng.uniform(0.3, 2, size=weight_shape)
    pw = None if pos_weight_shape is None else rng.uniform(0.3, 3, size=pos_weight_shape)
    check_bce_logits(cpu, x, t, w, pw, dtype, reduction, f"w {weight_shape} pw {pos_weight_shape}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_binary_cross_entropy_with_logits_extreme_logits(cpu, with_pos_weight, dtype):
    x = np.array([[100.0, -100.0, 100.0, -100.0], [1e4, -1e4, 50.0, -50.0]])
    t = np.array([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 1.0, 0.0]])
    pw = np.array([2.0, 0.5, 3.0, 1.5]) if with_pos_weight else None
    for reduction in REDUCTIONS:
        check_bce_logits(cpu, x, t, None, pw, dtype, reduction, "extreme")
    values = cpu.binary_cross_entropy_with_logits_forward(x.astype(dtype), t.astype(dtype), None,
                                                          None if pw is None else pw.astype(dtype), "none")
    assert np.all(np.isfinite(values))
    scale = pw if with_pos_weight else np.ones(4)
    np.testing.assert_allclose(values[0], [0.0, 0.0, 100.0, 100.0 * scale[3]], rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 2, 2), (0, 3), (300, 1000)])
def test_binary_cross_entropy_shapes(cpu, shape, reduction, dtype, threads):
    """Scalars, empty inputs and a large one (several reduction blocks, split over threads)."""
    rng = np.random.default_rng(13)
    p, t = rng.uniform(0.001, 0.999, shape), rng.uniform(0, 1, shape)
    w = rng.uniform(0.5, 2, shape[-1:]) if shape else None
    check_bce(cpu, p, t, w, dtype, reduction, str(shape))
    check_bce_logits(cpu, rng.standard_normal(shape) * 5, t, w, w, dtype, reduction, str(shape))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_vector_lanes_with_edges(cpu, reduction):
    """float32 runs 8 lanes with vectorised logs when every lane is an ordinary value; edge values
    scattered among ordinary ones (0, 1, denormals, NaN, +-inf, +-1e4 logits) send their group
    of 8 to the scalar path. A per-class weight of 7 wraps inside the vectors."""
    rng = np.random.default_rng(15)
    shape = (587, 7)
    p, t = rng.uniform(0.001, 0.999, shape), rng.uniform(0, 1, shape)
    x = rng.standard_normal(shape) * 6
    flat_p, flat_x = p.reshape(-1), x.reshape(-1)
    at = rng.choice(p.size, 40, replace=False)
    flat_p[at[:20]] = np.resize([0.0, 1.0, 1e-40, 1e-30, 1 - 1e-7], 20)
    flat_x[at[20:]] = np.resize([np.nan, np.inf, -np.inf, 1e4, -1e4, 88.0, -88.0], 20)
    w = rng.uniform(0.5, 2, 7)
    with np.errstate(all="ignore"):
        check_bce(cpu, p, t, w, np.float32, reduction, "edges")
        check_bce_logits(cpu, x, t, w, w[::-1].copy(), np.float32, reduction, "edges")
        check_bce_logits(cpu, np.where(np.isnan(x), 0.5, x), t, None, None, np.float32, reduction, "edges")


def test_binary_cross_entropy_sums_do_not_depend_on_the_thread_count(cpu):
    rng = np.random.default_rng(14)
    p, t = rng.uniform(0.01, 0.99, 200_000).astype(np.float32), rng.uniform(0, 1, 200_000).astype(np.float32)
    out = []
    for n in (1, 2):
        pyconv.set_num_threads(n)
        out.append([cpu.binary_cross_entropy_forward(p, t, None, "sum"),
                    cpu.binary_cross_entropy_with_logits_forward(p, t, None, None, "mean")])
    pyconv.set_num_threads(1)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_binary_cross_entropy_errors_at_the_native_boundary():
    p = np.full((3, 4), 0.5, np.float32)
    with pytest.raises(ValueError, match="target must have shape"):
        _C.binary_cross_entropy_forward(p, p[:2].copy(), None, "mean")
    with pytest.raises(TypeError, match="target must be float32"):
        _C.binary_cross_entropy_backward(np.array(1.0, np.float32), p, p.astype(np.float64), None, "sum")
    with pytest.raises(ValueError, match="weight must be a flat array whose length divides"):
        _C.binary_cross_entropy_forward(p, p, np.ones(5, np.float32), "sum")
    with pytest.raises(ValueError, match="pos_weight must have 1 dimensions"):
        _C.binary_cross_entropy_with_logits_forward(p, p, None, p, "sum")
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        _C.binary_cross_entropy_with_logits_backward(np.array(1.0, np.float32), p, p, None, None, "avg")
    with pytest.raises(ValueError, match="grad_loss must have shape"):
        _C.binary_cross_entropy_backward(np.ones(3, np.float32), p, p, None, "none")
    with pytest.raises(TypeError, match="input must be float32 or float64"):
        _C.binary_cross_entropy_forward(p.astype(np.int32), p, None, "sum")


# ----- layout, errors, op layer -----------------------------------------------------------------------


def _misaligned(a):
    buf = np.empty(a.nbytes + 8, np.uint8)
    start = 1 if buf.ctypes.data % a.itemsize == 0 else 0
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def test_non_contiguous_and_misaligned_inputs(cpu):
    rng = np.random.default_rng(7)
    base = rng.standard_normal((40, 30)).astype(np.float32)
    target = rng.integers(0, 15, 40)
    for x in (base[:, ::2], base[:, :15].T.copy().T, _misaligned(base[:, :15].copy())):
        check_softmax(cpu, x, 1, np.float32, "layout")
        check_softmax(cpu, x, 0, np.float32, "layout")
        check_class_losses(cpu, x, target, None, np.float32, "mean", smoothing=0.1, what="layout")
    check_class_losses(cpu, base[:, :15].copy(), target[::-1], rng.uniform(1, 2, 30)[::2], np.float32, "sum")


def test_errors_at_the_native_boundary():
    x = np.zeros((3, 4), np.float32)
    t = np.array([0, 1, 3])
    with pytest.raises(TypeError, match="softmax_forward: x must be float32 or float64"):
        _C.softmax_forward(x.astype(np.int64), 1)
    with pytest.raises(ValueError, match=r"dim must be in \[0, 2\)"):
        _C.log_softmax_forward(x, 2)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.softmax_forward(x[:, ::2], 1)
    with pytest.raises(ValueError, match="y must have shape"):
        _C.softmax_backward(x, x[:2].copy(), 1)
    with pytest.raises(TypeError, match="y must be float32"):
        _C.log_softmax_backward(x, x.astype(np.float64), 1)
    with pytest.raises(ValueError, match="target contains class index 4, but input has 4 classes"):
        _C.cross_entropy_forward(x, np.array([0, 4, 1]), None, "mean", -100, 0.0)
    with pytest.raises(ValueError, match="target contains class index -1"):
        _C.nll_loss_backward(np.array(1.0, np.float32), np.array([0, -1, 1]), None, [3, 4], "sum", -5)
    with pytest.raises(ValueError, match="target must have shape"):
        _C.cross_entropy_forward(x, np.array([0, 1]), None, "mean", -100, 0.0)
    with pytest.raises(TypeError, match="target must be int64"):
        _C.nll_loss_forward(x, t.astype(np.int32), None, "mean", -100)
    with pytest.raises(TypeError, match="weight must be float32"):
        _C.cross_entropy_forward(x, t, np.ones(4), "mean", -100, 0.0)
    with pytest.raises(ValueError, match="weight must have shape"):
        _C.cross_entropy_forward(x, t, np.ones(3, np.float32), "mean", -100, 0.0)
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        _C.cross_entropy_forward(x, t, None, "avg", -100, 0.0)
    with pytest.raises(ValueError, match="grad_loss must have shape"):
        _C.cross_entropy_backward(np.ones(2, np.float32), x, t, None, "none", -100, 0.0)
    with pytest.raises(ValueError, match="grad_loss must have 0 dimensions"):
        _C.nll_loss_backward(np.ones(3, np.float32), t, None, [3, 4], "mean", -100)
    with pytest.raises(ValueError, match="target must have the input's shape|target must have shape"):
        _C.mse_loss_forward(x, x[:2].copy(), "sum")


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "bce",
                                "bce_with_logits"])
def test_op_layer_on_cpu_matches_numpy(op):
    rng = np.random.default_rng(8)
    values = rng.standard_normal((4, 5, 3))
    target = rng.integers(0, 5, (4, 3))
    target[0, 0] = -100
    other = rng.standard_normal((4, 5, 3))
    fn = {"softmax": lambda t: F.softmax(t, 1),
          "log_softmax": lambda t: F.log_softmax(t, -1),
          "cross_entropy": lambda t: F.cross_entropy(t, pyconv.tensor(target), label_smoothing=0.1),
          "nll_loss": lambda t: F.nll_loss(t, pyconv.tensor(target), pyconv.tensor(np.linspace(0.5, 2, 5))),
          "mse_loss": lambda t: F.mse_loss(t, pyconv.tensor(other)),
          "bce": lambda t: F.binary_cross_entropy(F.sigmoid(t), pyconv.tensor(np.abs(np.tanh(other))),
                                                  pyconv.tensor(np.linspace(0.5, 2, 3))),
          "bce_with_logits": lambda t: F.binary_cross_entropy_with_logits(
              t, pyconv.tensor(np.abs(np.tanh(other))), pos_weight=pyconv.tensor(np.linspace(0.5, 2, 3)))}[op]
    results = {}
    for name in ("numpy", "cpu"):
        with backends.use(name):
            x = pyconv.tensor(values, requires_grad=True)
            y = fn(x)
            (y * pyconv.tensor(np.arange(int(np.prod(y.shape)), dtype=np.float64).reshape(y.shape) + 1)).sum().backward()
            results[name] = (y.detach().numpy(), x.grad.numpy())
    for a, b in zip(results["cpu"], results["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
