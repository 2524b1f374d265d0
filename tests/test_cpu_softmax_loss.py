"""The cpu backend's C++ softmax, log_softmax, cross_entropy, nll_loss and mse_loss kernels
(csrc/cpu/softmax.cpp, loss.cpp) against the NumPy reference: every dim of 1-4-d arrays, the
stability edges of test_softmax.py and the class-loss cases of test_loss.py (weights, ignored
rows, all rows ignored, custom ignore_index, label smoothing, +-1e4 and -inf logits, empty
batches), float64 (1e-12) and float32 (1e-5), 1 and 2 threads; the vectorised float32 exp
against np.exp; non-contiguous and misaligned inputs; errors at the native boundary; the op
layer on the cpu backend equal to the numpy backend."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends import numpy_ref
from test_cpu_pool import assert_close, threads  # noqa: F401 (threads is a fixture)
from test_loss import REDUCTIONS, _class_case

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


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss"])
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
          "mse_loss": lambda t: F.mse_loss(t, pyconv.tensor(other))}[op]
    results = {}
    for name in ("numpy", "cpu"):
        with backends.use(name):
            x = pyconv.tensor(values, requires_grad=True)
            y = fn(x)
            (y * pyconv.tensor(np.arange(int(np.prod(y.shape)), dtype=np.float64).reshape(y.shape) + 1)).sum().backward()
            results[name] = (y.detach().numpy(), x.grad.numpy())
    for a, b in zip(results["cpu"], results["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
