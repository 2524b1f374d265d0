"""kernels/normalization.cu on the SIMT emulator against the NumPy reference: batch norm forward
(training with the running-statistics update, and eval) and backward, float64 and float32, on
the shapes and edge cases of test_batchnorm.py, plus the in-place rules of the launch glue."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv.backends import numpy_ref
from pyconv.testing import assert_close
from simt_support import require_simt, schedule, simt  # noqa: F401 - schedule, simt are fixtures

pytestmark = require_simt()

TOL = {np.float64: (1e-12, 1e-12), np.float32: (1e-5, 1e-5)}
DTYPES = [np.float64, np.float32]
# test_batchnorm.py's shapes, then channels whose N * S is not a multiple of the block size
# (102 -> 128 threads, 700 -> 512 threads) and one element per channel.
SHAPES = [(5, 3), (4, 2, 6), (3, 2, 4, 5), (2, 3, 17, 3), (2, 2, 350), (1, 3), (1, 2, 1, 1)]


def _random_shape(rng):
    """test_batchnorm.py's random (N, C, *) shapes: 2 to 4 dimensions."""
    ndim = int(rng.integers(2, 5))
    return (int(rng.integers(2, 6)), int(rng.integers(1, 5))) + tuple(
        int(v) for v in rng.integers(1, 5, ndim - 2))


def _inputs(shape, dtype, seed):
    """x with a random scale and offset, weight, bias and running statistics, all of dtype."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)
    arrays = (x, rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(c),
              rng.uniform(0.5, 2.0, c))
    return [a.astype(dtype) for a in arrays]


def _compare(actual, expected, dtype, name):
    atol, rtol = TOL[np.dtype(dtype).type]
    assert len(actual) == len(expected), name
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.dtype == e.dtype and a.shape == e.shape, f"{name}[{i}]"
        assert_close(a, e, atol=atol, rtol=rtol, name=f"{name}[{i}]")


def _check_forward(simt, x, weight, bias, running, training, momentum=0.1, eps=1e-5):
    """Forward on both backends from identical running statistics; compares the outputs and the
    updated running statistics. Returns the reference's outputs."""
    ours_running = [None if r is None else r.copy() for r in running]
    ref_running = [None if r is None else r.copy() for r in running]
    ours = simt.batch_norm_forward(x, weight, bias, *ours_running, training, momentum, eps)
    expected = numpy_ref.batch_norm_forward(x, weight, bias, *ref_running, training, momentum,
                                            eps)
    _compare(ours, expected, x.dtype, f"forward training={training}")
    for name, a, e in zip(("running_mean", "running_var"), ours_running, ref_running):
        if a is not None:
            _compare([a], [e], x.dtype, name)
    return expected


def _check_backward(simt, grad_y, x, weight, save_mean, save_invstd, training):
    ours = simt.batch_norm_backward(grad_y, x, weight, save_mean, save_invstd, training)
    expected = numpy_ref.batch_norm_backward(grad_y, x, weight, save_mean, save_invstd, training)
    _compare(ours, expected, x.dtype, f"backward training={training}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_backward_match_reference(simt, schedule, shape, training, dtype):
    x, w, b, rm, rv = _inputs(shape, dtype, seed=sum(shape))
    running = (rm, rv) if not training or shape[0] * np.prod(shape[2:]) > 1 else (None, None)
    y, mean, invstd = _check_forward(simt, x, w, b, running, training, momentum=0.3)
    grad_y = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    _check_backward(simt, grad_y, x, w, mean, invstd, training)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_random_shapes_and_options_match_reference(simt, schedule, seed, dtype):
    rng = np.random.default_rng(100 + seed)
    shape = _random_shape(rng)
    x, w, b, rm, rv = _inputs(shape, dtype, seed)
    affine = [(w, b), (None, None), (w, None), (None, b)][seed % 4]
    momentum = float(rng.uniform(0, 1))
    for training in (True, False):
        running = (None, None) if training and seed % 3 == 0 else (rm, rv)
        _, mean, invstd = _check_forward(simt, x, *affine, running, training, momentum, eps=1e-4)
        grad_y = rng.standard_normal(shape).astype(dtype)
        _check_backward(simt, grad_y, x, affine[0], mean, invstd, training)


@pytest.mark.parametrize("dtype", DTYPES)
def test_edge_values_match_reference(simt, schedule, dtype):
    """test_batchnorm.py's edges: a constant channel (variance 0: eps alone keeps it finite), two
    values per channel (unbiased factor 2) and one element that dominates."""
    x = np.random.default_rng(4).standard_normal((2, 3, 1, 1))
    x[:, 0] = 1.5
    x[0, 2] = 1e3
    x, w, b = x.astype(dtype), np.array([2.0, -1.0, 0.5], dtype), np.array([0.1, 0.2, 0.3], dtype)
    running = (np.zeros(3, dtype), np.ones(3, dtype))
    y, mean, invstd = _check_forward(simt, x, w, b, running, training=True)
    grad_y = np.random.default_rng(5).standard_normal(x.shape).astype(dtype)
    _check_backward(simt, grad_y, x, w, mean, invstd, training=True)


def test_single_value_per_channel(simt, schedule):
    """One element per channel: variance 0 in training (without running statistics, whose
    unbiased update would divide by zero: refused), any value in eval mode."""
    x, w, b, rm, rv = _inputs((1, 3), np.float64, seed=2)
    _check_forward(simt, x, w, b, (None, None), training=True)
    _check_forward(simt, x, w, b, (rm, rv), training=False)
    with pytest.raises(ValueError, match="more than one value per channel"):
        simt.batch_norm_forward(x, w, b, rm, rv, True, 0.1, 1e-5)


def test_float32_large_offset_is_exact(simt, schedule):
    """float32 input around 1e4 (test_batchnorm.py): statistics accumulate in double, so the
    result is the float64 computation rounded once."""
    x = (1e4 + np.random.default_rng(5).standard_normal((64, 2, 3))).astype(np.float32)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    y, _, _ = simt.batch_norm_forward(x, None, None, rm, rv, True, 1.0, 1e-5)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2), keepdims=True)
    var = x64.var(axis=(0, 2), keepdims=True)
    assert_close(y, (x64 - mean) / np.sqrt(var + 1e-5), atol=1e-5, rtol=1e-5)
    assert_close(rm, mean.ravel(), atol=0, rtol=1e-7)
    assert_close(rv, x64.var(axis=(0, 2), ddof=1), atol=0, rtol=1e-6)


@pytest.mark.parametrize("shape", [(0, 2, 3), (4, 0, 3), (3, 2, 0)])
def test_empty_inputs_match_reference(simt, schedule, shape):
    """An empty batch leaves the running statistics untouched and has zero parameter gradients."""
    x, w, b, rm, rv = _inputs(shape, np.float64, seed=6)
    for training in (True, False):
        _, mean, invstd = _check_forward(simt, x, w, b, (rm, rv), training)
        _check_backward(simt, np.ones(shape), x, w, mean, invstd, training)


def test_non_contiguous_inputs_are_copied(simt, schedule):
    x, w, b, rm, rv = _inputs((3, 4, 5), np.float64, seed=7)
    x_t = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)  # same values, strided
    w_strided = np.repeat(w, 2)[::2]
    y, mean, invstd = _check_forward(simt, x_t, w_strided, b, (rm, rv), training=True)
    _check_backward(simt, np.ones_like(x)[:, :, ::-1], x_t, w_strided, mean, invstd, True)


def test_running_statistics_must_be_updatable_in_place(simt):
    x, w, b, rm, rv = _inputs((3, 2, 4), np.float64, seed=8)
    strided = np.zeros(4)[::2]
    with pytest.raises(ValueError, match="running_mean is updated in place and must be C-contig"):
        simt.batch_norm_forward(x, w, b, strided, rv, True, 0.1, 1e-5)
    frozen = rv.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="running_var is updated in place and must be writeable"):
        simt.batch_norm_forward(x, w, b, rm, frozen, True, 0.1, 1e-5)
    # eval mode only reads them: both work there
    _check_forward(simt, x, w, b, (strided, frozen), training=False)
    with pytest.raises(TypeError, match="running_mean has dtype float32, expected float64"):
        simt.batch_norm_forward(x, w, b, rm.astype(np.float32), rv, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(2,\)"):
        simt.batch_norm_forward(x, np.ones(3), b, rm, rv, True, 0.1, 1e-5)
    with pytest.raises(TypeError, match="float32 or float64"):
        simt.batch_norm_forward(x.astype(np.float16), None, None, None, None, True, 0.1, 1e-5)


def test_results_do_not_depend_on_the_schedule(simt):
    """The block reduction has a fixed order: every schedule gives the same bits."""
    import pyconv.simt

    x, w, b, rm, rv = _inputs((4, 3, 50), np.float32, seed=9)
    results = []
    for kind, seed in (("inorder", 0), ("reverse", 0), ("random", 5)):
        with pyconv.simt.schedule(kind, seed=seed):
            y, mean, invstd = simt.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5)
            results.append((y, mean, invstd) + simt.batch_norm_backward(x, x, w, mean, invstd,
                                                                         True))
    for other in results[1:]:
        for a, e in zip(other, results[0]):
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("training", [True, False])
def test_functional_batch_norm_runs_the_kernels(simt, schedule, training):
    """F.batch_norm forward + backward on the simt backend equals the numpy backend."""
    x, w, b, rm, rv = _inputs((4, 3, 2, 3), np.float64, seed=10)
    grads, outputs, running = [], [], []
    for backend in ("numpy", "simt"):
        xs, ws, bs = (pyconv.tensor(a, requires_grad=True) for a in (x, w, b))
        stats = pyconv.tensor(rm.copy()), pyconv.tensor(rv.copy())
        with pyconv.backends.use(backend):
            y = F.batch_norm(xs, *stats, ws, bs, training=training, momentum=0.2)
            weights = np.arange(y.numel(), dtype=np.float64).reshape(y.shape)
            (y * pyconv.tensor(weights)).sum().backward()
        outputs.append(y.detach().numpy())
        grads.append([t.grad.numpy() for t in (xs, ws, bs)])
        running.append([s.numpy() for s in stats])
    _compare([outputs[1]], [outputs[0]], np.float64, "y")
    _compare(grads[1], grads[0], np.float64, "grads")
    _compare(running[1], running[0], np.float64, "running stats")
    mode = "train" if training else "eval"
    assert simt.device.launches[f"batch_norm_forward_{mode}_f64"] > 0
    assert simt.device.launches["batch_norm_backward_f64"] > 0
