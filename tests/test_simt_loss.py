"""kernels/loss.cu on the SIMT emulator against the NumPy reference: cross_entropy (class weights,
ignore_index, label smoothing, every reduction) and nll_loss, forward and backward; mse_loss,
binary_cross_entropy and binary_cross_entropy_with_logits (every reduction, weight and
pos_weight option); the edge cases of tests/test_loss.py; bitwise reproducible reductions; the
autograd ops on the simt backend."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
import pyconv.simt
from pyconv import backends
from simt_support import assert_same_array, ref, require_simt, schedule, simt  # noqa: F401 - ref, schedule, simt are fixtures

pytestmark = require_simt()

DTYPES = [np.float64, np.float32]
REDUCTIONS = ["none", "mean", "sum"]
TOLERANCES = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=1e-5, atol=1e-6)}


def _assert_matches(actual, expected, dtype):
    assert_same_array(actual, expected, TOLERANCES[np.dtype(dtype).type])


def _class_case(seed, rows=None, classes=None, ignore_index=-100, ignored_fraction=0.3):
    """Random logits (M, C), int64 targets (M,) with about ``ignored_fraction`` of them set to
    ignore_index, and class weights (C,)."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 12)) if rows is None else rows
    c = int(rng.integers(1, 8)) if classes is None else classes
    x = rng.standard_normal((m, c)) * 2
    target = rng.integers(0, c, size=m)
    target[rng.random(m) < ignored_fraction] = ignore_index
    return x, target, rng.uniform(0.2, 2.0, size=c)


def _grad_loss(reduction, rows, dtype, seed=0):
    shape = (rows,) if reduction == "none" else ()
    return np.asarray(np.random.default_rng(seed).standard_normal(shape), dtype=dtype)


def _check_cross_entropy(simt, ref, x, target, weight, reduction, dtype, ignore_index=-100,
                         label_smoothing=0.0):
    """Forward (loss, log_probs) and backward on simt equal the reference's; returns the loss."""
    x = x.astype(dtype)
    weight = None if weight is None else weight.astype(dtype)
    args = (target, weight, reduction, ignore_index, label_smoothing)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        loss, log_probs = ref.cross_entropy_forward(x, *args)
        ours_loss, ours_log_probs = simt.cross_entropy_forward(x, *args)
        _assert_matches(ours_loss, loss, dtype)
        _assert_matches(ours_log_probs, log_probs, dtype)
        g = _grad_loss(reduction, len(target), dtype)
        _assert_matches(simt.cross_entropy_backward(g, log_probs, *args),
                        ref.cross_entropy_backward(g, log_probs, *args), dtype)
    return ours_loss


def _check_nll(simt, ref, x, target, weight, reduction, dtype, ignore_index=-100):
    x = x.astype(dtype)
    weight = None if weight is None else weight.astype(dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = simt.nll_loss_forward(x, target, weight, reduction, ignore_index)
        _assert_matches(loss, ref.nll_loss_forward(x, target, weight, reduction, ignore_index),
                        dtype)
        g = _grad_loss(reduction, len(target), dtype)
        args = (target, weight, x.shape, reduction, ignore_index)
        _assert_matches(simt.nll_loss_backward(g, *args), ref.nll_loss_backward(g, *args), dtype)
    return loss


def _entries(dtype, reduction, *kernels):
    """The entry points a forward + backward launches: ``kernels`` and, unless the reduction is
    'none', class_loss_sum (the forward's sum; the backward's mean scale)."""
    names = kernels if reduction == "none" else kernels + ("class_loss_sum",)
    suffix = "f64" if dtype == np.float64 else "f32"
    return {f"{name}_{suffix}" for name in names}


def _launched(simt, fn):
    before = simt.device.launches.copy()
    fn()
    return set(simt.device.launches - before)


# ----- cross_entropy ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("seed", range(6))
def test_cross_entropy_matches_the_reference(simt, ref, seed, reduction, dtype, schedule):
    # seeds alternate weight / no weight; seeds 3.. use label smoothing
    x, target, weight = _class_case(10 + seed)
    launched = _launched(simt, lambda: _check_cross_entropy(
        simt, ref, x, target, weight if seed % 2 == 0 else None, reduction, dtype,
        label_smoothing=0.0 if seed < 3 else 0.2))
    assert launched == _entries(dtype, reduction, "cross_entropy_forward_rows",
                                "cross_entropy_backward_rows")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classes, smoothing", [(1, 0.0), (1, 0.3), (33, 0.1), (300, 0.0),
                                                (1000, 0.25)])
def test_cross_entropy_class_counts_beyond_one_warp_and_one_block(simt, ref, classes, smoothing,
                                                                  dtype, schedule):
    x, target, weight = _class_case(20, rows=3, classes=classes)
    for reduction in REDUCTIONS:
        _check_cross_entropy(simt, ref, x, target, weight, reduction, dtype,
                             label_smoothing=smoothing)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_all_targets_ignored(simt, ref, smoothing, with_weight, dtype, schedule):
    x, target, weight = _class_case(30, rows=5, ignored_fraction=1.0)
    for reduction in REDUCTIONS:
        loss = _check_cross_entropy(simt, ref, x, target, weight if with_weight else None,
                                    reduction, dtype, label_smoothing=smoothing)
        if reduction == "mean":
            assert np.isnan(loss)  # 0 / 0, as PyTorch
        nll = _check_nll(simt, ref, x, target, weight if with_weight else None, reduction, dtype)
        if reduction == "mean":
            assert np.isnan(nll)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore_index", [1, -1])
def test_custom_ignore_index(simt, ref, ignore_index, dtype, schedule):
    x, target, weight = _class_case(40, rows=9, classes=4, ignore_index=ignore_index)
    target[0] = ignore_index
    for reduction in REDUCTIONS:
        _check_cross_entropy(simt, ref, x, target, weight, reduction, dtype,
                             ignore_index=ignore_index, label_smoothing=0.15)
        _check_nll(simt, ref, x, target, weight, reduction, dtype, ignore_index=ignore_index)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_is_stable_for_huge_and_infinite_logits(simt, ref, dtype, schedule):
    x = np.array([[-1e4, 1e4, 0.0], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4], [5e3, -5e3, 1e4],
                  [-np.inf, 2.0, 1.0], [3.0, -np.inf, -np.inf], [np.inf, 0.0, 1.0]])
    target = np.array([1, 0, 2, 0, 1, 0, 2])
    for smoothing in (0.0, 0.2):  # with smoothing a -inf log-probability makes the loss inf
        for reduction in REDUCTIONS:
            _check_cross_entropy(simt, ref, x, target, None, reduction, dtype,
                                 label_smoothing=smoothing)
    loss, _ = simt.cross_entropy_forward(x.astype(dtype), target, None, "none", -100, 0.0)
    expected = [0, np.log(2), np.log(3), 5e3, np.log1p(np.exp(-1)), 0, np.nan]  # +inf: NaN
    np.testing.assert_allclose(loss, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch(simt, ref, dtype):
    x, target = np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    for reduction in REDUCTIONS:
        launched = _launched(simt, lambda: _check_cross_entropy(simt, ref, x, target, None,
                                                                reduction, dtype))
        # only the reduction runs (on zero rows): 'sum' is 0, 'mean' is NaN
        assert {name.rsplit("_", 1)[0] for name in launched} <= {"class_loss_sum"}
        _check_nll(simt, ref, x, target, None, reduction, dtype)


def test_out_of_range_targets_give_nan_instead_of_reading_out_of_bounds(simt):
    # the op layer rejects these targets; the kernels must still stay inside the arrays
    x = np.zeros((3, 4))
    target = np.array([0, 4, -7])
    loss, _ = simt.cross_entropy_forward(x, target, None, "none", -100, 0.0)
    assert not np.isnan(loss[0]) and np.isnan(loss[1:]).all()
    assert np.isnan(simt.nll_loss_forward(x, target, None, "sum", -100))
    grad = simt.cross_entropy_backward(np.ones(3), x, target, None, "none", -100, 0.0)
    assert np.isnan(grad[1:]).all() and not np.isnan(grad[0]).any()


# ----- nll_loss -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("seed", range(4))
def test_nll_loss_matches_the_reference(simt, ref, seed, reduction, dtype, schedule):
    x, target, weight = _class_case(50 + seed)
    launched = _launched(simt, lambda: _check_nll(
        simt, ref, x, target, weight if seed % 2 == 0 else None, reduction, dtype))
    assert launched == _entries(dtype, reduction, "nll_loss_forward_rows", "nll_loss_backward")


# ----- grids, reproducibility, errors -----------------------------------------------------------


def test_grids_smaller_than_the_work_stride_over_it(simt, ref, monkeypatch, schedule):
    # one "multiprocessor": 64 row blocks of 32 threads, 8 elementwise blocks of 256 threads
    monkeypatch.setattr(simt.device, "multiprocessors", 1)
    x, target, weight = _class_case(60, rows=300, classes=7)
    for reduction in REDUCTIONS:
        _check_cross_entropy(simt, ref, x, target, weight, reduction, np.float64,
                             label_smoothing=0.1)
        _check_nll(simt, ref, x, target, weight, reduction, np.float64)


def test_reductions_are_bitwise_identical_across_schedules(simt):
    # more rows than class_loss_sum has threads, so threads add several values each
    x, target, weight = _class_case(70, rows=1100, classes=3)
    x, weight = x.astype(np.float32), weight.astype(np.float32)
    runs = []
    for kind, seed in [("inorder", 0), ("reverse", 0), ("random", 1), ("random", 9)]:
        with pyconv.simt.schedule(kind, seed=seed):
            loss, log_probs = simt.cross_entropy_forward(x, target, weight, "mean", -100, 0.1)
            grad = simt.cross_entropy_backward(np.float32(1.5), log_probs, target, weight, "mean",
                                               -100, 0.1)
            runs.append((loss, grad, simt.nll_loss_forward(x, target, weight, "sum", -100)))
    for run in runs[1:]:
        for ours, first in zip(run, runs[0]):
            np.testing.assert_array_equal(ours, first)


def test_glue_rejects_what_would_corrupt_memory(simt):
    x = np.zeros((3, 4))
    target = np.array([0, 1, 2])
    with pytest.raises(TypeError, match="target must be int64, got int32"):
        simt.cross_entropy_forward(x, target.astype(np.int32), None, "mean", -100, 0.0)
    with pytest.raises(ValueError, match=r"target must have shape \(3,\), got \(2,\)"):
        simt.nll_loss_forward(x, target[:2], None, "mean", -100)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\), got \(3,\)"):
        simt.cross_entropy_forward(x, target, np.ones(3), "mean", -100, 0.0)
    with pytest.raises(TypeError, match="weight has dtype float32 but the rows have float64"):
        simt.cross_entropy_backward(np.ones(()), x, target, np.ones(4, np.float32), "sum", -100,
                                    0.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        simt.nll_loss_forward(x, target, None, "avg", -100)
    with pytest.raises(ValueError, match=r"grad_loss must have shape \(3,\)"):
        simt.cross_entropy_backward(np.ones(2), x, target, None, "none", -100, 0.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        simt.nll_loss_backward(np.ones((), dtype=np.int64), target, None, (3, 4), "sum", -100)


# ----- autograd ops on the simt backend -----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_autograd_ops_on_the_simt_backend(simt, name, dtype, schedule):
    rng = np.random.default_rng(80)
    data = rng.standard_normal((4, 5, 3)).astype(dtype)  # (N, C, d1)
    target = rng.integers(0, 5, size=(4, 3))
    target[0, 0] = -100
    weight = pyconv.tensor(rng.uniform(0.5, 2, size=5).astype(dtype))
    extra = {"label_smoothing": 0.2} if name == "cross_entropy" else {}

    def forward_backward(backend):
        x = pyconv.tensor(data, requires_grad=True)
        with backends.use(backend):
            loss = getattr(F, name)(x, pyconv.tensor(target), weight, **extra)
            loss.backward()
        return loss.detach().numpy(), x.grad.numpy()

    expected = forward_backward("numpy")
    results = []
    launched = _launched(simt, lambda: results.extend(forward_backward("simt")))
    for ours, theirs in zip(results, expected):
        _assert_matches(ours, theirs, dtype)
    suffix = "f64" if dtype == np.float64 else "f32"
    assert {f"{name}_forward_rows_{suffix}", f"class_loss_sum_{suffix}"} <= launched
    assert any(entry.startswith(f"{name}_backward") for entry in launched)


# ----- mse_loss, binary_cross_entropy, binary_cross_entropy_with_logits ---------------------------

ELEMENTWISE_SHAPES = [(7,), (3, 4), (2, 3, 2, 2), (), (0, 3)]
# weight shapes broadcast against (3, 4), as tests/test_loss.py
WEIGHT_SHAPES = [None, (4,), (3, 1), (3, 4)]


def _elementwise_grad(reduction, shape, dtype, seed=1):
    return _grad_loss(reduction, 0, dtype, seed) if reduction != "none" else np.asarray(
        np.random.default_rng(seed).standard_normal(shape), dtype=dtype)


def _check_elementwise(simt, ref, name, inputs, options, reduction, dtype):
    """Forward and backward of loss ``name`` on simt equal the reference's; returns the entry
    names launched."""
    inputs = [np.asarray(a, dtype=dtype) for a in inputs]
    options = [None if o is None else np.asarray(o, dtype=dtype) for o in options]
    g = _elementwise_grad(reduction, inputs[0].shape, dtype)
    forward, backward = f"{name}_forward", f"{name}_backward"

    def run():
        with np.errstate(invalid="ignore", divide="ignore"):
            _assert_matches(getattr(simt, forward)(*inputs, *options, reduction),
                            getattr(ref, forward)(*inputs, *options, reduction), dtype)
            ours = getattr(simt, backward)(g, *inputs, *options, reduction)
            theirs = getattr(ref, backward)(g, *inputs, *options, reduction)
        for a, e in zip(ours if isinstance(ours, tuple) else (ours,),
                        theirs if isinstance(theirs, tuple) else (theirs,)):
            _assert_matches(a, e, dtype)

    return _launched(simt, run)


def _elementwise_entries(name, reduction, dtype, size):
    suffix = "f64" if dtype == np.float64 else "f32"
    names = {f"{name}_forward", f"{name}_backward"} if size else set()
    if reduction != "none":
        names.add("elementwise_loss_sum")
    return {f"{n}_{suffix}" for n in names}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_mse_loss_matches_the_reference(simt, ref, shape, reduction, dtype, schedule):
    rng = np.random.default_rng(100)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    launched = _check_elementwise(simt, ref, "mse_loss", [x, t], [], reduction, dtype)
    assert launched == _elementwise_entries("mse_loss", reduction, dtype, x.size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", WEIGHT_SHAPES)
def test_binary_cross_entropy_matches_the_reference(simt, ref, weight_shape, reduction, dtype,
                                                    schedule):
    rng = np.random.default_rng(110)
    x, t = rng.uniform(0.02, 0.98, size=(3, 4)), rng.uniform(0, 1, size=(3, 4))
    w = None if weight_shape is None else rng.uniform(0.3, 2, size=weight_shape)
    launched = _check_elementwise(simt, ref, "binary_cross_entropy", [x, t], [w], reduction,
                                  dtype)
    assert launched == _elementwise_entries("binary_cross_entropy", reduction, dtype, x.size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_at_exact_zero_and_one(simt, ref, reduction, dtype, schedule):
    # log(0) is clamped to -100; the gradient's denominator is floored at 1e-12
    x = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5])
    t = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.7, 1.0])
    _check_elementwise(simt, ref, "binary_cross_entropy", [x, t], [None], reduction, dtype)
    if reduction == "none":
        loss = simt.binary_cross_entropy_forward(x.astype(dtype), t.astype(dtype), None, "none")
        np.testing.assert_allclose(loss, [0.0, 100.0, 30.0, 0.0, 100.0, 30.0, np.log(2)],
                                   rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight_shape", [None, (4,), (3, 4)])
@pytest.mark.parametrize("weight_shape", [None, (4,), (3, 1)])
def test_binary_cross_entropy_with_logits_matches_the_reference(simt, ref, weight_shape,
                                                                pos_weight_shape, reduction,
                                                                dtype, schedule):
    rng = np.random.default_rng(120)
    x, t = rng.standard_normal((3, 4)) * 4, rng.uniform(0, 1, size=(3, 4))
    w = None if weight_shape is None else rng.uniform(0.3, 2, size=weight_shape)
    pw = None if pos_weight_shape is None else rng.uniform(0.3, 3, size=pos_weight_shape)
    launched = _check_elementwise(simt, ref, "binary_cross_entropy_with_logits", [x, t], [w, pw],
                                  reduction, dtype)
    assert launched == _elementwise_entries("binary_cross_entropy_with_logits", reduction, dtype,
                                            x.size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_binary_cross_entropy_with_logits_extreme_logits(simt, ref, with_pos_weight, dtype,
                                                         schedule):
    x = np.array([[100.0, -100.0, 100.0, -100.0], [1e4, -1e4, 50.0, -50.0]])
    t = np.array([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 1.0, 0.0]])
    pw = np.array([2.0, 0.5, 3.0, 1.5]) if with_pos_weight else None
    for reduction in REDUCTIONS:
        _check_elementwise(simt, ref, "binary_cross_entropy_with_logits", [x, t], [None, pw],
                           reduction, dtype)
    loss = simt.binary_cross_entropy_with_logits_forward(
        x.astype(dtype), t.astype(dtype), None, None if pw is None else pw.astype(dtype), "none")
    assert np.all(np.isfinite(loss))


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_elementwise_losses_on_every_shape(simt, ref, shape):
    rng = np.random.default_rng(130)
    p, t = rng.uniform(0.02, 0.98, size=shape), rng.uniform(0, 1, size=shape)
    for reduction in REDUCTIONS:
        _check_elementwise(simt, ref, "binary_cross_entropy", [p, t], [None], reduction,
                           np.float64)
        _check_elementwise(simt, ref, "binary_cross_entropy_with_logits", [p * 8 - 4, t],
                           [None, None], reduction, np.float64)


def test_elementwise_sums_are_bitwise_identical_across_schedules(simt):
    # more elements than elementwise_loss_sum has threads
    rng = np.random.default_rng(140)
    x, t = rng.standard_normal((50, 30)).astype(np.float32), rng.standard_normal((50, 30))
    t = t.astype(np.float32)
    runs = []
    for kind, seed in [("inorder", 0), ("reverse", 0), ("random", 2)]:
        with pyconv.simt.schedule(kind, seed=seed):
            runs.append((simt.mse_loss_forward(x, t, "mean"),
                         simt.binary_cross_entropy_with_logits_forward(x, t.clip(0, 1), None,
                                                                       None, "sum")))
    for run in runs[1:]:
        for ours, first in zip(run, runs[0]):
            np.testing.assert_array_equal(ours, first)


def test_elementwise_glue_rejects_what_would_corrupt_memory(simt):
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"target must have the input's shape \(3, 4\)"):
        simt.mse_loss_forward(x, np.zeros((3, 1)), "mean")
    with pytest.raises(TypeError, match="target has dtype float32"):
        simt.mse_loss_backward(np.ones(()), x, np.zeros((3, 4), np.float32), "mean")
    with pytest.raises(ValueError, match="does not broadcast"):
        simt.binary_cross_entropy_forward(x, x, np.ones(3), "sum")
    with pytest.raises(ValueError, match="grad_loss must hold one value"):
        simt.binary_cross_entropy_backward(np.ones(2), x, x, None, "sum")
    with pytest.raises(ValueError, match=r"grad_loss must have the input's shape"):
        simt.binary_cross_entropy_with_logits_backward(np.ones(()), x, x, None, None, "none")
    with pytest.raises(ValueError, match="reduction must be one of"):
        simt.mse_loss_forward(x, x, "avg")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["mse_loss", "binary_cross_entropy",
                                  "binary_cross_entropy_with_logits"])
def test_elementwise_autograd_ops_on_the_simt_backend(simt, name, dtype, schedule):
    rng = np.random.default_rng(150)
    data = rng.uniform(0.05, 0.95, size=(4, 3)).astype(dtype)
    target = rng.uniform(0, 1, size=(4, 3)).astype(dtype)
    extra = {} if name == "mse_loss" else {
        "weight": pyconv.tensor(rng.uniform(0.5, 2, size=3).astype(dtype))}

    def forward_backward(backend):
        x = pyconv.tensor(data, requires_grad=True)
        with backends.use(backend):
            loss = getattr(F, name)(x, pyconv.tensor(target), **extra)
            loss.backward()
        return loss.detach().numpy(), x.grad.numpy()

    expected = forward_backward("numpy")
    results = []
    launched = _launched(simt, lambda: results.extend(forward_backward("simt")))
    for ours, theirs in zip(results, expected):
        _assert_matches(ours, theirs, dtype)
    suffix = "f64" if dtype == np.float64 else "f32"
    assert {f"{name}_forward_{suffix}", f"{name}_backward_{suffix}",
            f"elementwise_loss_sum_{suffix}"} <= launched
