"""Losses: gradcheck, PyTorch comparison in float64 and float32, edge cases, argument errors and
the loss layers."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv.backends import numpy_ref
from pyconv.testing import gradcheck
from torch_compare import compare_with_torch, require_torch

DTYPES = [np.float64, np.float32]
REDUCTIONS = ["none", "mean", "sum"]


def torch_F():
    return require_torch().nn.functional


def _class_case(seed, spatial=0, ignore_index=-100, ignored_fraction=0.3):
    """Random logits (N, C, *spatial), int64 targets (N, *spatial) with about
    ``ignored_fraction`` of them set to ignore_index, and class weights (C,)."""
    rng = np.random.default_rng(seed)
    n, c = (int(v) for v in rng.integers(1, 6, size=2))
    dims = tuple(int(d) for d in rng.integers(1, 4, size=spatial))
    x = rng.standard_normal((n, c) + dims) * 2
    target = rng.integers(0, c, size=(n,) + dims)
    target[rng.random(target.shape) < ignored_fraction] = ignore_index
    weight = rng.uniform(0.2, 2.0, size=c)
    return x, target, weight


def _compare_class_loss(name, x, target, weight, dtype, seed=0, **kwargs):
    """Compare F.<name>(x, target, weight, **kwargs) with torch (no gradient for weight)."""
    ours = getattr(F, name)
    theirs = getattr(torch_F(), name)
    return compare_with_torch(lambda a, t, w: ours(a, t, w, **kwargs),
                              lambda a, t, w: theirs(a, t, w, **kwargs),
                              [x, target, weight], dtype=dtype, no_grad_inputs=(2,), seed=seed,
                              name=f"{name} {kwargs}")


# ----- gradcheck ----------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradcheck(reduction, smoothing):
    x, target, weight = _class_case(1, spatial=1)
    target.reshape(-1)[0] = -100
    logits = pyconv.tensor(x, requires_grad=True)
    assert gradcheck(lambda a: F.cross_entropy(a, pyconv.tensor(target), pyconv.tensor(weight),
                                               reduction=reduction, label_smoothing=smoothing),
                     [logits])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probability_targets_gradcheck(reduction):
    rng = np.random.default_rng(2)
    logits = pyconv.tensor(rng.standard_normal((3, 4, 2)), requires_grad=True)
    probs = pyconv.tensor(rng.dirichlet(np.ones(4), size=(3, 2)).transpose(0, 2, 1).copy(),
                          requires_grad=True)
    weight = pyconv.tensor(rng.uniform(0.5, 2, size=4))
    assert gradcheck(lambda a, p: F.cross_entropy(a, p, weight, reduction=reduction,
                                                  label_smoothing=0.2), [logits, probs])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_gradcheck(reduction):
    x, target, weight = _class_case(3, spatial=2)
    target.reshape(-1)[0] = -100
    log_probs = pyconv.tensor(x, requires_grad=True)
    assert gradcheck(lambda a: F.nll_loss(a, pyconv.tensor(target), pyconv.tensor(weight),
                                          reduction=reduction), [log_probs])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_gradcheck(reduction):
    rng = np.random.default_rng(4)
    a, b = (pyconv.tensor(rng.standard_normal((3, 4)), requires_grad=True) for _ in range(2))
    assert gradcheck(lambda x, t: F.mse_loss(x, t, reduction=reduction), [a, b])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_gradcheck(reduction):
    rng = np.random.default_rng(5)
    probs = pyconv.tensor(rng.uniform(0.1, 0.9, size=(3, 4)), requires_grad=True)
    target = pyconv.tensor(rng.uniform(0, 1, size=(3, 4)))
    weight = pyconv.tensor(rng.uniform(0.5, 2, size=4))
    assert gradcheck(lambda x: F.binary_cross_entropy(x, target, weight, reduction=reduction),
                     [probs])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits_gradcheck(reduction):
    rng = np.random.default_rng(6)
    logits = pyconv.tensor(rng.standard_normal((3, 4)) * 3, requires_grad=True)
    target = pyconv.tensor(rng.uniform(0, 1, size=(3, 4)), requires_grad=True)
    weight = pyconv.tensor(rng.uniform(0.5, 2, size=(3, 1)))
    pos_weight = pyconv.tensor(rng.uniform(0.5, 3, size=4))
    assert gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, weight, reduction=reduction, pos_weight=pos_weight), [logits, target])


# ----- cross_entropy and nll_loss vs PyTorch ------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, seed", [("cross_entropy", s) for s in range(6)]
                         + [("nll_loss", s) for s in range(4)])
def test_class_losses_match_torch(name, seed, reduction, dtype):
    # seeds cover (N, C), (N, C, d1), (N, C, d1, d2), each with and without weight, and (for
    # cross_entropy) label smoothing with and without weight; about 30% of targets are ignored
    x, target, weight = _class_case(10 + seed, spatial=seed % 3)
    extra = {"label_smoothing": 0.0 if seed < 3 else 0.2} if name == "cross_entropy" else {}
    _compare_class_loss(name, x, target, weight if seed % 2 == 0 else None, dtype, seed=seed,
                        reduction=reduction, **extra)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("name, extra", [("cross_entropy", {}),
                                         ("cross_entropy", {"label_smoothing": 0.1}),
                                         ("nll_loss", {})])
def test_all_targets_ignored_matches_torch(name, extra, with_weight, dtype):
    x, target, weight = _class_case(30, spatial=1, ignored_fraction=1.0)
    for reduction in REDUCTIONS:
        (loss,), _ = _compare_class_loss(name, x, target, weight if with_weight else None, dtype,
                                         reduction=reduction, **extra)
        if reduction == "mean":
            assert np.isnan(loss.item())  # 0 / 0, as PyTorch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore_index", [1, -1])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_custom_ignore_index_matches_torch(name, ignore_index, dtype):
    x, target, weight = _class_case(40, spatial=1, ignore_index=ignore_index)
    target[0, 0] = ignore_index
    extra = {"label_smoothing": 0.15} if name == "cross_entropy" else {}
    for reduction in REDUCTIONS:
        _compare_class_loss(name, x, target, weight, dtype, reduction=reduction,
                            ignore_index=ignore_index, **extra)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_unbatched_input_matches_torch(name, dtype):
    rng = np.random.default_rng(50)
    x = rng.standard_normal(5)
    weight = rng.uniform(0.5, 2, size=5)
    extra = {"label_smoothing": 0.2} if name == "cross_entropy" else {}
    for reduction in REDUCTIONS:
        for target in (np.array(3), np.array(-100)):
            for w in (None, weight):
                (loss,), _ = _compare_class_loss(name, x, target, w, dtype, reduction=reduction,
                                                 **extra)
                assert loss.shape == ()


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_empty_batch_matches_torch(dtype):
    for reduction in REDUCTIONS:
        _compare_class_loss("cross_entropy", np.zeros((0, 3)), np.zeros(0, dtype=np.int64), None,
                            dtype, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2), (5,)])
def test_cross_entropy_probability_targets_match_torch(shape, with_weight, smoothing, dtype):
    rng = np.random.default_rng(60)
    x = rng.standard_normal(shape) * 2
    class_dim = 0 if len(shape) == 1 else 1
    raw = rng.uniform(0, 1, size=shape)
    probs = raw / raw.sum(axis=class_dim, keepdims=True)
    weight = rng.uniform(0.3, 2, size=shape[class_dim]) if with_weight else None
    for reduction in REDUCTIONS:
        # the gradient with respect to the probabilities is compared too
        _compare_class_loss("cross_entropy", x, probs, weight, dtype, reduction=reduction,
                            label_smoothing=smoothing)


def test_cross_entropy_large_logits_match_torch():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [100.0, 100.0, 100.0]])
    target = np.array([1, 2, 0])
    for dtype in DTYPES:
        (loss,), _ = _compare_class_loss("cross_entropy", x, target, None, dtype,
                                         reduction="none", label_smoothing=0.1)
        assert np.all(np.isfinite(loss.detach().numpy()))


# ----- mse, bce, bce_with_logits vs PyTorch -------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2, 2), ()])
def test_mse_loss_matches_torch(shape, reduction, dtype):
    rng = np.random.default_rng(70)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    # both input and target require grad: gradients are compared for both
    compare_with_torch(lambda a, b: F.mse_loss(a, b, reduction=reduction),
                       lambda a, b: torch_F().mse_loss(a, b, reduction=reduction),
                       [np.asarray(x), np.asarray(t)], dtype=dtype, name="mse_loss")


def _bce_case(seed, shape):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.02, 0.98, size=shape), rng.uniform(0, 1, size=shape), rng


WEIGHT_SHAPES = {"none": None, "classes": (4,), "rows": (3, 1), "full": (3, 4)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", sorted(WEIGHT_SHAPES))
def test_binary_cross_entropy_matches_torch(weight_shape, reduction, dtype):
    x, t, rng = _bce_case(80, (3, 4))
    shape = WEIGHT_SHAPES[weight_shape]
    w = None if shape is None else rng.uniform(0.3, 2, size=shape)
    compare_with_torch(lambda a, b, c: F.binary_cross_entropy(a, b, c, reduction=reduction),
                       lambda a, b, c: torch_F().binary_cross_entropy(a, b, c, reduction=reduction),
                       [x, t, w], dtype=dtype, no_grad_inputs=(1, 2), name="binary_cross_entropy")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_at_exact_zero_and_one(reduction, dtype):
    # log(0) is clamped to -100: a confident wrong answer costs 100, 0 * log(0) costs 0
    x = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5])
    t = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.7, 1.0])
    (loss,), _ = compare_with_torch(
        lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction),
        lambda a, b: torch_F().binary_cross_entropy(a, b, reduction=reduction),
        [x, t], dtype=dtype, no_grad_inputs=(1,), name="binary_cross_entropy at 0 and 1")
    if reduction == "none":
        expected = [0.0, 100.0, 30.0, 0.0, 100.0, 30.0, np.log(2)]
        np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight_shape", [None, (4,), (3, 4)])
@pytest.mark.parametrize("weight_shape", [None, (4,), (3, 1)])
def test_binary_cross_entropy_with_logits_matches_torch(weight_shape, pos_weight_shape,
                                                        reduction, dtype):
    rng = np.random.default_rng(90)
    x = rng.standard_normal((3, 4)) * 4
    t = rng.uniform(0, 1, size=(3, 4))
    w = None if weight_shape is None else rng.uniform(0.3, 2, size=weight_shape)
    pw = None if pos_weight_shape is None else rng.uniform(0.3, 3, size=pos_weight_shape)
    compare_with_torch(
        lambda a, b, c, d: F.binary_cross_entropy_with_logits(a, b, c, reduction, d),
        lambda a, b, c, d: torch_F().binary_cross_entropy_with_logits(a, b, c, reduction=reduction,
                                                                      pos_weight=d),
        [x, t, w, pw], dtype=dtype, no_grad_inputs=(2, 3), name="bce_with_logits")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_binary_cross_entropy_with_logits_extreme_logits(with_pos_weight, dtype):
    x = np.array([[100.0, -100.0, 100.0, -100.0], [1e4, -1e4, 50.0, -50.0]])
    t = np.array([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 1.0, 0.0]])
    pw = np.array([2.0, 0.5, 3.0, 1.5]) if with_pos_weight else None
    (loss,), _ = compare_with_torch(
        lambda a, b, d: F.binary_cross_entropy_with_logits(a, b, reduction="none", pos_weight=d),
        lambda a, b, d: torch_F().binary_cross_entropy_with_logits(a, b, reduction="none",
                                                                   pos_weight=d),
        [x, t, pw], dtype=dtype, no_grad_inputs=(2,), name="bce_with_logits extreme")
    values = loss.detach().numpy()
    assert np.all(np.isfinite(values))
    scale = pw if with_pos_weight else np.ones(4)
    # a confident wrong logit costs |x| (times pos_weight for a missed positive)
    np.testing.assert_allclose(values[0], [0.0, 0.0, 100.0, 100.0 * scale[3]], rtol=1e-6,
                               atol=1e-30)


# ----- kernels keep float32 -------------------------------------------------------------------------


def test_loss_kernels_keep_float32():
    f32 = np.float32
    rng = np.random.default_rng(100)
    x = rng.standard_normal((4, 3)).astype(f32)
    p = rng.uniform(0.1, 0.9, size=(4, 3)).astype(f32)
    t = rng.uniform(0, 1, size=(4, 3)).astype(f32)
    w = rng.uniform(0.5, 2, size=3).astype(f32)
    index = np.array([0, 2, -100, 1])
    for reduction in REDUCTIONS:
        g = np.ones((4,) if reduction == "none" else (), dtype=f32)
        loss, log_probs = numpy_ref.cross_entropy_forward(x, index, w, reduction, -100, 0.1)
        outputs = [loss, log_probs,
                   numpy_ref.cross_entropy_backward(g, log_probs, index, w, reduction, -100, 0.1),
                   numpy_ref.nll_loss_forward(x, index, w, reduction, -100),
                   numpy_ref.nll_loss_backward(g, index, w, x.shape, reduction, -100)]
        g = np.ones((4, 3) if reduction == "none" else (), dtype=f32)
        outputs += [numpy_ref.mse_loss_forward(x, t, reduction),
                    *numpy_ref.mse_loss_backward(g, x, t, reduction),
                    numpy_ref.binary_cross_entropy_forward(p, t, w, reduction),
                    numpy_ref.binary_cross_entropy_backward(g, p, t, w, reduction),
                    numpy_ref.binary_cross_entropy_with_logits_forward(x, t, w, w, reduction),
                    *numpy_ref.binary_cross_entropy_with_logits_backward(g, x, t, w, w, reduction)]
        assert [o.dtype for o in outputs] == [np.dtype(f32)] * len(outputs), reduction


# ----- errors ------------------------------------------------------------------------------------------


def _error_cases():
    x = pyconv.randn(3, 4)
    t = pyconv.tensor([0, 1, 3])
    p = pyconv.rand(3, 4)
    return [
        ("ce target int32", lambda: F.cross_entropy(x, t.to(np.int32)), TypeError,
         r"cross_entropy: target must be int64 class indices.*got dtype int32"),
        ("nll target float", lambda: F.nll_loss(x, pyconv.zeros(3)), TypeError,
         r"nll_loss: target must be int64.*got dtype float32"),
        ("ce target shape", lambda: F.cross_entropy(x, pyconv.tensor([0, 1])), ValueError,
         r"cross_entropy: expected target of shape \(3,\).*got \(2,\)"),
        ("nll spatial target shape",
         lambda: F.nll_loss(pyconv.randn(2, 4, 3, 3), pyconv.zeros(2, 3, 2, dtype=np.int64)),
         ValueError, r"nll_loss: expected target of shape \(2, 3, 3\).*got \(2, 3, 2\)"),
        ("ce index too large", lambda: F.cross_entropy(x, pyconv.tensor([0, 4, 1])), ValueError,
         r"cross_entropy: target contains class index 4, but input has 4 classes.*"
         r"ignore_index=-100"),
        ("nll negative index", lambda: F.nll_loss(x, pyconv.tensor([0, -1, 1]), ignore_index=-5),
         ValueError, r"nll_loss: target contains class index -1, but input has 4 classes.*"
         r"ignore_index=-5"),
        ("ce weight shape", lambda: F.cross_entropy(x, t, pyconv.ones(3)), ValueError,
         r"cross_entropy: expected weight of shape \(4,\), got \(3,\)"),
        ("nll weight dtype", lambda: F.nll_loss(x, t, pyconv.ones(4, dtype=np.float64)),
         TypeError, r"nll_loss: weight has dtype float64 but input has dtype float32"),
        ("ce weight requires grad",
         lambda: F.cross_entropy(x, t, pyconv.ones(4, requires_grad=True)), ValueError,
         r"cross_entropy: weight must not require grad"),
        ("ce label_smoothing > 1", lambda: F.cross_entropy(x, t, label_smoothing=1.5), ValueError,
         r"cross_entropy: label_smoothing must be between 0.0 and 1.0, got 1.5"),
        ("ce label_smoothing < 0", lambda: F.cross_entropy(x, t, label_smoothing=-0.1),
         ValueError, r"label_smoothing must be between 0.0 and 1.0, got -0.1"),
        ("ce label_smoothing type", lambda: F.cross_entropy(x, t, label_smoothing="0.1"),
         TypeError, r"cross_entropy: label_smoothing must be a float"),
        ("ce ignore_index type", lambda: F.cross_entropy(x, t, ignore_index=1.5), TypeError,
         r"cross_entropy: ignore_index must be an int, got 1.5"),
        ("ce reduction", lambda: F.cross_entropy(x, t, reduction="avg"), ValueError,
         r"cross_entropy: reduction must be 'none', 'mean' or 'sum', got 'avg'"),
        ("nll reduction", lambda: F.nll_loss(x, t, reduction=None), ValueError,
         r"nll_loss: reduction must be .*got None"),
        ("mse reduction", lambda: F.mse_loss(x, x, reduction="elementwise_mean"), ValueError,
         r"mse_loss: reduction must be .*got 'elementwise_mean'"),
        ("bce reduction", lambda: F.binary_cross_entropy(p, p, reduction="Mean"), ValueError,
         r"binary_cross_entropy: reduction must be .*got 'Mean'"),
        ("bcel reduction", lambda: F.binary_cross_entropy_with_logits(x, p, reduction=1),
         ValueError, r"binary_cross_entropy_with_logits: reduction must be .*got 1"),
        ("ce 0-d input", lambda: F.cross_entropy(pyconv.tensor(1.0), pyconv.tensor(0)),
         ValueError, r"cross_entropy: expected input of shape \(C,\), \(N, C\).*0-d"),
        ("ce no classes", lambda: F.cross_entropy(pyconv.zeros(2, 0), pyconv.tensor([0, 0])),
         ValueError, r"cross_entropy: input of shape \(2, 0\) has no classes"),
        ("ce int input", lambda: F.cross_entropy(t.reshape(3, 1), pyconv.tensor([0, 0, 0])),
         TypeError, r"cross_entropy: input must be a floating-point tensor.*int64"),
        ("ce probability shape", lambda: F.cross_entropy(x, pyconv.rand(3, 5)), ValueError,
         r"cross_entropy: floating target \(class probabilities\) must have the input's shape "
         r"\(3, 4\), got \(3, 5\)"),
        ("ce probability dtype", lambda: F.cross_entropy(x, pyconv.rand(3, 4, dtype=np.float64)),
         TypeError, r"cross_entropy: target has dtype float64 but input has dtype float32"),
        ("ce probability ignore_index", lambda: F.cross_entropy(x, p, ignore_index=0), ValueError,
         r"cross_entropy: ignore_index is not supported for class-probability.*ignore_index=0"),
        ("mse shape", lambda: F.mse_loss(x, pyconv.randn(3, 1)), ValueError,
         r"mse_loss: target must have the input's shape \(3, 4\), got \(3, 1\)"),
        ("mse target dtype", lambda: F.mse_loss(x, pyconv.randn(3, 4, dtype=np.float64)),
         TypeError, r"mse_loss: target has dtype float64 but input has dtype float32"),
        ("mse int input", lambda: F.mse_loss(t, t), TypeError,
         r"mse_loss: input must be a floating-point tensor.*int64"),
        ("mse target not a tensor", lambda: F.mse_loss(x, np.zeros((3, 4))), TypeError,
         r"mse_loss: target must be a pyconv Tensor, got ndarray"),
        ("bce shape", lambda: F.binary_cross_entropy(p, pyconv.rand(4)), ValueError,
         r"binary_cross_entropy: target must have the input's shape \(3, 4\), got \(4,\)"),
        ("bce input above 1", lambda: F.binary_cross_entropy(pyconv.tensor([0.5, 1.5]),
                                                             pyconv.tensor([1.0, 0.0])),
         ValueError, r"binary_cross_entropy: all elements of input should be between 0 and 1.*"
         r"got 1.5"),
        ("bce input below 0", lambda: F.binary_cross_entropy(pyconv.tensor([-0.25]),
                                                             pyconv.tensor([1.0])),
         ValueError, r"input should be between 0 and 1.*got -0.25"),
        ("bce input nan", lambda: F.binary_cross_entropy(pyconv.tensor([np.nan]),
                                                         pyconv.tensor([1.0])),
         ValueError, r"input should be between 0 and 1.*got nan"),
        ("bce weight broadcast", lambda: F.binary_cross_entropy(p, p, pyconv.ones(3)), ValueError,
         r"binary_cross_entropy: weight of shape \(3,\) does not broadcast to the input's shape "
         r"\(3, 4\)"),
        ("bce weight grows input", lambda: F.binary_cross_entropy(p, p, pyconv.ones(2, 3, 4)),
         ValueError, r"weight of shape \(2, 3, 4\) does not broadcast to the input's shape"),
        ("bce int target", lambda: F.binary_cross_entropy(p, pyconv.zeros(3, 4, dtype=np.int64)),
         TypeError, r"binary_cross_entropy: target must be a floating-point tensor.*int64"),
        ("bce target requires grad",
         lambda: F.binary_cross_entropy(p, pyconv.rand(3, 4, requires_grad=True)),
         NotImplementedError, r"binary_cross_entropy: the gradient with respect to target"),
        ("bcel pos_weight broadcast",
         lambda: F.binary_cross_entropy_with_logits(x, p, pos_weight=pyconv.ones(3)),
         ValueError, r"binary_cross_entropy_with_logits: pos_weight of shape \(3,\) does not "
         r"broadcast to the input's shape \(3, 4\)"),
        ("bcel pos_weight dtype",
         lambda: F.binary_cross_entropy_with_logits(x, p, pos_weight=pyconv.ones(4, dtype=np.float64)),
         TypeError, r"pos_weight has dtype float64 but input has dtype float32"),
        ("bcel pos_weight requires grad",
         lambda: F.binary_cross_entropy_with_logits(x, p, pos_weight=pyconv.ones(4, requires_grad=True)),
         ValueError, r"binary_cross_entropy_with_logits: pos_weight must not require grad"),
        ("bcel shape", lambda: F.binary_cross_entropy_with_logits(x, pyconv.rand(3, 4, 1)),
         ValueError, r"target must have the input's shape \(3, 4\), got \(3, 4, 1\)"),
    ]


@pytest.mark.parametrize("case", _error_cases(), ids=lambda case: case[0])
def test_errors_name_the_argument(case):
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        call()


def test_weights_may_require_grad_under_no_grad():
    x = pyconv.randn(3, 4)
    with pyconv.no_grad():
        loss = F.cross_entropy(x, pyconv.tensor([0, 1, 2]), pyconv.ones(4, requires_grad=True))
    assert np.isfinite(loss.item())


# ----- layers ------------------------------------------------------------------------------------------


def _layer_pairs(dtype):
    """(pyconv layer, torch layer, input arrays, indices of inputs without gradient)."""
    torch = require_torch()
    rng = np.random.default_rng(110)
    w4 = rng.uniform(0.5, 2, size=4)
    logits = rng.standard_normal((5, 4, 2))
    index = rng.integers(0, 4, size=(5, 2))
    index[0, 0] = 2
    probs = rng.uniform(0.05, 0.95, size=(5, 4))
    soft = rng.uniform(0, 1, size=(5, 4))

    def both(a):
        return pyconv.tensor(a.astype(dtype)), torch.tensor(a.astype(dtype))

    (pw, tw), (ppw, tpw) = both(w4), both(rng.uniform(0.5, 3, size=4))
    nn, tnn = pyconv.nn, torch.nn
    return [
        (nn.CrossEntropyLoss(), tnn.CrossEntropyLoss(), [logits, index], ()),
        (nn.CrossEntropyLoss(weight=pw, ignore_index=2, reduction="sum", label_smoothing=0.1),
         tnn.CrossEntropyLoss(weight=tw, ignore_index=2, reduction="sum", label_smoothing=0.1),
         [logits, index], ()),
        (nn.NLLLoss(weight=pw, reduction="none"), tnn.NLLLoss(weight=tw, reduction="none"),
         [logits, index], ()),
        (nn.MSELoss(reduction="sum"), tnn.MSELoss(reduction="sum"), [probs, soft], ()),
        (nn.BCELoss(weight=pw), tnn.BCELoss(weight=tw), [probs, soft], (1,)),
        (nn.BCEWithLogitsLoss(weight=pw, pos_weight=ppw, reduction="none"),
         tnn.BCEWithLogitsLoss(weight=tw, pos_weight=tpw, reduction="none"), [logits[:, :, 0], soft],
         ()),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_layers_match_torch_modules(dtype):
    for ours, theirs, arrays, no_grad in _layer_pairs(dtype):
        compare_with_torch(ours, theirs, arrays, dtype=dtype, no_grad_inputs=no_grad,
                           name=type(ours).__name__)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict(theirs.state_dict())


def test_layer_buffers_follow_dtype_conversion_and_defaults():
    layer = pyconv.nn.BCEWithLogitsLoss(pos_weight=pyconv.ones(3))
    assert list(layer.state_dict()) == ["pos_weight"]
    assert layer.double().pos_weight.dtype == np.float64
    ce = pyconv.nn.CrossEntropyLoss()
    assert (ce.weight, ce.ignore_index, ce.reduction, ce.label_smoothing) == (None, -100, "mean", 0.0)
    assert list(ce.state_dict()) == []
    with pytest.raises(TypeError):
        pyconv.nn.NLLLoss(None, None, 3)  # PyTorch's positional size_average is not supported
