"""Batch norm: gradcheck, PyTorch comparison of outputs, gradients and running statistics
(functional and modules, several training steps), state_dict, repr and error cases."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
import pyconv.nn as nn
from pyconv.testing import assert_close, gradcheck
from torch_compare import DEFAULT_TOL, compare_with_torch, require_torch

SHAPES = [(5, 3), (4, 2, 6), (3, 2, 4, 5)]  # (N, C), (N, C, L), (N, C, H, W)


def _running_stats(rng, channels):
    return rng.standard_normal(channels), rng.uniform(0.5, 2.0, channels)


def _random_shape(rng):
    """A random (N, C, *) shape with 2 to 4 dimensions and more than one value per channel."""
    ndim = int(rng.integers(2, 5))
    shape = (int(rng.integers(2, 6)), int(rng.integers(1, 5))) + tuple(
        int(v) for v in rng.integers(1, 5, ndim - 2))
    return shape


# ---------------------------------------------------------------------------------------------
# gradients against finite differences
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_gradcheck(shape, training):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = pyconv.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    w = pyconv.tensor(rng.standard_normal(c), requires_grad=True)
    b = pyconv.tensor(rng.standard_normal(c), requires_grad=True)
    mean, var = _running_stats(rng, c)
    rm, rv = pyconv.tensor(mean), pyconv.tensor(var)

    def fn(x, w, b):
        # running stats are updated by every training call; the output must not depend on them
        return F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3, eps=1e-3)

    assert gradcheck(fn, [x, w, b])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_without_affine(training):
    rng = np.random.default_rng(1)
    x = pyconv.tensor(rng.standard_normal((4, 3, 3)), requires_grad=True)
    mean, var = _running_stats(rng, 3)
    rm, rv = pyconv.tensor(mean), pyconv.tensor(var)
    assert gradcheck(lambda x: F.batch_norm(x, rm, rv, training=training), [x])


# ---------------------------------------------------------------------------------------------
# functional batch_norm against PyTorch
# ---------------------------------------------------------------------------------------------


def _compare_functional(torch, shape, dtype, training, affine, running, momentum, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    mean, var = _running_stats(rng, c)
    pc_stats, th_stats = [None, None], [None, None]
    if running:
        pc_stats = [pyconv.tensor(mean.astype(dtype)), pyconv.tensor(var.astype(dtype))]
        th_stats = [torch.tensor(mean.astype(dtype)), torch.tensor(var.astype(dtype))]
    arrays = [x, w, b] if affine else [x]

    def pc_fn(x, w=None, b=None):
        return F.batch_norm(x, *pc_stats, w, b, training=training, momentum=momentum, eps=1e-4)

    def th_fn(x, w=None, b=None):
        return torch.nn.functional.batch_norm(x, *th_stats, w, b, training=training,
                                              momentum=momentum, eps=1e-4)

    compare_with_torch(pc_fn, th_fn, arrays, dtype=dtype, seed=seed, name=f"batch_norm{shape}")
    atol, rtol = DEFAULT_TOL[np.dtype(dtype).type]
    for name, p, t in zip(("running_mean", "running_var"), pc_stats, th_stats):
        if p is not None:
            assert p.dtype == np.dtype(dtype)
            assert_close(p.numpy(), t.numpy(), atol=atol, rtol=rtol, name=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(8))
def test_batch_norm_matches_torch_on_random_shapes(seed, dtype):
    torch = require_torch()
    rng = np.random.default_rng(100 + seed)
    shape = _random_shape(rng)
    for training in (True, False):
        _compare_functional(torch, shape, dtype, training, affine=bool(seed % 2), running=True,
                            momentum=float(rng.uniform(0, 1)), seed=seed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_training_without_running_stats_matches_torch(shape, dtype):
    torch = require_torch()
    _compare_functional(torch, shape, dtype, training=True, affine=True, running=False,
                        momentum=0.1, seed=3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_norm_edge_values_match_torch(dtype):
    """A constant channel (zero variance: eps alone keeps it finite), two values per channel
    (the smallest batch that trains, unbiased factor 2) and one element that dominates."""
    torch = require_torch()
    x = np.random.default_rng(4).standard_normal((2, 3, 1, 1))
    x[:, 0] = 1.5
    x[0, 2] = 1e3
    w, b = np.array([2.0, -1.0, 0.5]), np.array([0.1, 0.2, 0.3])
    rm = [pyconv.zeros(3, dtype=dtype), torch.zeros(3, dtype=getattr(torch, np.dtype(dtype).name))]
    rv = [pyconv.ones(3, dtype=dtype), torch.ones(3, dtype=getattr(torch, np.dtype(dtype).name))]
    compare_with_torch(lambda x, w, b: F.batch_norm(x, rm[0], rv[0], w, b, True),
                       lambda x, w, b: torch.nn.functional.batch_norm(x, rm[1], rv[1], w, b, True),
                       [x, w, b], dtype=dtype, name="batch_norm edges")
    atol, rtol = DEFAULT_TOL[np.dtype(dtype).type]
    assert_close(rm[0].numpy(), rm[1].numpy(), atol=atol, rtol=rtol, name="running_mean")
    assert_close(rv[0].numpy(), rv[1].numpy(), atol=atol, rtol=rtol, name="running_var")


def test_batch_norm_float32_is_exact_for_large_offsets():
    """Statistics of float32 input with a large common offset, against float64 NumPy math."""
    rng = np.random.default_rng(5)
    x = (1e4 + rng.standard_normal((64, 2, 3))).astype(np.float32)
    rm, rv = pyconv.zeros(2), pyconv.ones(2)
    y = F.batch_norm(pyconv.tensor(x), rm, rv, training=True, momentum=1.0)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2), keepdims=True)
    var = x64.var(axis=(0, 2), keepdims=True)
    assert y.dtype == np.float32
    assert_close(y.numpy(), (x64 - mean) / np.sqrt(var + 1e-5), atol=1e-5, rtol=1e-5)
    assert_close(rm.numpy(), mean.ravel(), atol=0, rtol=1e-7)
    assert_close(rv.numpy(), x64.var(axis=(0, 2), ddof=1), atol=0, rtol=1e-6)


def test_batch_norm_empty_batch_matches_torch():
    torch = require_torch()
    rm, rv = pyconv.tensor([0.5, -0.5]), pyconv.tensor([2.0, 3.0])
    x = pyconv.zeros(0, 2, 3, requires_grad=True)
    w = pyconv.ones(2, requires_grad=True)
    y = F.batch_norm(x, rm, rv, w, training=True)
    assert y.shape == (0, 2, 3)
    y.sum().backward()
    th_rm, th_rv = torch.tensor([0.5, -0.5]), torch.tensor([2.0, 3.0])
    torch.nn.functional.batch_norm(torch.zeros(0, 2, 3), th_rm, th_rv, training=True)
    np.testing.assert_array_equal(rm.numpy(), th_rm.numpy())
    np.testing.assert_array_equal(rv.numpy(), th_rv.numpy())
    np.testing.assert_array_equal(w.grad.numpy(), [0.0, 0.0])


def test_running_stats_are_not_differentiable():
    rm = pyconv.zeros(3, dtype=np.float64)
    rv = pyconv.ones(3, dtype=np.float64)
    x = pyconv.randn(4, 3, dtype=np.float64, requires_grad=True)
    F.batch_norm(x, rm, rv, training=True).sum().backward()
    assert not rm.requires_grad and rm.grad is None and rv.grad is None
    assert x.grad is not None


# ---------------------------------------------------------------------------------------------
# modules against PyTorch over several steps
# ---------------------------------------------------------------------------------------------

MODULE_CASES = [
    ("BatchNorm1d", (6, 4), {}),
    ("BatchNorm1d", (3, 4, 5), {}),
    ("BatchNorm2d", (2, 4, 3, 3), {}),
    ("BatchNorm1d", (6, 4), {"momentum": None}),
    ("BatchNorm2d", (2, 4, 3, 3), {"momentum": None}),
    ("BatchNorm2d", (2, 4, 3, 3), {"affine": False}),
    ("BatchNorm1d", (3, 4, 5), {"track_running_stats": False}),
    ("BatchNorm2d", (2, 4, 3, 3), {"track_running_stats": False, "affine": False}),
    ("BatchNorm1d", (6, 4), {"bias": False, "eps": 1e-3, "momentum": 0.5}),
]


def _twin_modules(torch, cls_name, channels, kwargs, dtype, rng):
    """A pyconv and a torch module with identical random affine parameters."""
    pc = getattr(nn, cls_name)(channels, dtype=dtype, **kwargs)
    th = getattr(torch.nn, cls_name)(channels, dtype=getattr(torch, np.dtype(dtype).name), **kwargs)
    with torch.no_grad():
        for name, p in th.named_parameters():
            p.copy_(torch.tensor(rng.standard_normal(p.shape)))
    pc.load_state_dict(th.state_dict())
    return pc, th


def _assert_state_dicts_equal(pc, th, dtype):
    atol, rtol = DEFAULT_TOL[np.dtype(dtype).type]
    pc_sd, th_sd = pc.state_dict(), th.state_dict()
    assert list(pc_sd) == list(th_sd)
    for key in th_sd:
        expected = th_sd[key].numpy()
        assert pc_sd[key].dtype == expected.dtype, key
        assert_close(pc_sd[key].numpy(), expected, atol=atol, rtol=rtol, name=key)


def _run_step(torch, pc, th, x, rng, dtype, name):
    atol, rtol = DEFAULT_TOL[np.dtype(dtype).type]
    xp = pyconv.tensor(x.astype(dtype), requires_grad=True)
    xt = torch.tensor(x.astype(dtype), requires_grad=True)
    yp, yt = pc(xp), th(xt)
    assert yp.dtype == np.dtype(dtype)
    assert_close(yp.detach().numpy(), yt.detach().numpy(), atol=atol, rtol=rtol, name=f"{name} y")
    upstream = rng.standard_normal(x.shape).astype(dtype)
    (yp * pyconv.tensor(upstream)).sum().backward()
    (yt * torch.tensor(upstream)).sum().backward()
    assert_close(xp.grad.numpy(), xt.grad.numpy(), atol=atol, rtol=rtol, name=f"{name} grad x")
    for (pname, pp), (_, tp) in zip(pc.named_parameters(), th.named_parameters()):
        assert_close(pp.grad.numpy(), tp.grad.numpy(), atol=atol, rtol=rtol, name=f"{name} grad {pname}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls_name,shape,kwargs", MODULE_CASES)
def test_module_matches_torch_over_steps(cls_name, shape, kwargs, dtype):
    torch = require_torch()
    rng = np.random.default_rng(6)
    pc, th = _twin_modules(torch, cls_name, shape[1], kwargs, dtype, rng)
    assert repr(pc) == repr(th)
    for step in range(3):
        x = rng.standard_normal(shape) * (step + 1) + step
        _run_step(torch, pc, th, x, rng, dtype, f"{cls_name} train step {step}")
        _assert_state_dicts_equal(pc, th, dtype)
    pc.eval()
    th.eval()
    _run_step(torch, pc, th, rng.standard_normal(shape), rng, dtype, f"{cls_name} eval")
    _assert_state_dicts_equal(pc, th, dtype)


def test_module_defaults_and_state_dict_match_torch():
    torch = require_torch()
    for cls_name in ("BatchNorm1d", "BatchNorm2d"):
        pc, th = getattr(nn, cls_name)(5), getattr(torch.nn, cls_name)(5)
        _assert_state_dicts_equal(pc, th, np.float32)
        assert pc.state_dict()["num_batches_tracked"].dtype == np.int64
        assert pc.state_dict()["num_batches_tracked"].shape == ()
        assert [n for n, _ in pc.named_parameters()] == ["weight", "bias"]
        assert pc.weight.requires_grad and not pc.running_mean.requires_grad
    assert repr(nn.BatchNorm2d(16)) == repr(torch.nn.BatchNorm2d(16))
    assert repr(nn.BatchNorm1d(3, eps=1e-3, momentum=None, affine=False)) == repr(
        torch.nn.BatchNorm1d(3, eps=1e-3, momentum=None, affine=False))
    assert list(nn.BatchNorm1d(3, track_running_stats=False).state_dict()) == ["weight", "bias"]


def test_module_momentum_none_is_cumulative_average():
    """With momentum=None the running mean after k batches is the plain mean of the k batch
    means (checked with independent NumPy math)."""
    rng = np.random.default_rng(7)
    bn = nn.BatchNorm1d(3, momentum=None, dtype=np.float64)
    batches = [rng.standard_normal((4, 3)) + i for i in range(4)]
    for x in batches:
        bn(pyconv.tensor(x))
    assert bn.num_batches_tracked.item() == 4
    assert_close(bn.running_mean.numpy(), np.mean([x.mean(axis=0) for x in batches], axis=0))
    assert_close(bn.running_var.numpy(), np.mean([x.var(axis=0, ddof=1) for x in batches], axis=0))


def test_module_eval_uses_running_stats_and_changes_nothing():
    bn = nn.BatchNorm2d(2, dtype=np.float64)
    bn.running_mean.copy_(np.array([1.0, -1.0]))
    bn.running_var.copy_(np.array([4.0, 0.25]))
    bn.eval()
    x = np.random.default_rng(8).standard_normal((3, 2, 2, 2))
    y = bn(pyconv.tensor(x)).detach().numpy()
    expected = (x - np.array([1.0, -1.0])[:, None, None]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5)[:, None, None]
    assert_close(y, expected)
    assert bn.num_batches_tracked.item() == 0
    np.testing.assert_array_equal(bn.running_mean.numpy(), [1.0, -1.0])


def test_module_loads_torch_state_dict_and_to_dtype():
    torch = require_torch()
    th = torch.nn.BatchNorm2d(3)
    th(torch.randn(4, 3, 2, 2))
    pc = nn.BatchNorm2d(3)
    pc.load_state_dict(th.state_dict())
    assert pc.num_batches_tracked.item() == 1
    assert_close(pc.running_var.numpy(), th.running_var.numpy(), atol=0, rtol=0)
    pc.double()
    assert pc.weight.dtype == np.float64 and pc.running_mean.dtype == np.float64
    assert pc.num_batches_tracked.dtype == np.int64


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


def test_batch_norm_errors_name_the_argument():
    x = pyconv.randn(4, 3, 2)
    rm, rv = pyconv.zeros(3), pyconv.ones(3)
    with pytest.raises(TypeError, match=r"batch_norm: input must be a floating-point tensor.*int64"):
        F.batch_norm(pyconv.tensor([[1, 2], [3, 4]]), pyconv.zeros(2), pyconv.ones(2))
    with pytest.raises(TypeError, match=r"input must be a pyconv Tensor"):
        F.batch_norm(np.zeros((4, 3)), rm, rv)
    with pytest.raises(ValueError, match=r"running_mean must have one element per channel, shape "
                                         r"\(3,\).*3 channels.*got shape \(4,\)"):
        F.batch_norm(x, pyconv.zeros(4), rv)
    with pytest.raises(ValueError, match=r"weight must have one element per channel.*got shape \(2,\)"):
        F.batch_norm(x, rm, rv, weight=pyconv.ones(2))
    with pytest.raises(ValueError, match=r"bias must have one element per channel.*got shape \(3, 1\)"):
        F.batch_norm(x, rm, rv, bias=pyconv.ones(3, 1))
    with pytest.raises(ValueError, match=r"running_var must have one element"):
        F.batch_norm(x, rm, pyconv.ones(5))
    with pytest.raises(TypeError, match=r"weight has dtype float64 but input has dtype float32"):
        F.batch_norm(x, rm, rv, weight=pyconv.ones(3, dtype=np.float64))
    with pytest.raises(TypeError, match=r"running_mean has dtype float64 but input has dtype float32"):
        F.batch_norm(x, pyconv.zeros(3, dtype=np.float64), rv)
    with pytest.raises(ValueError, match=r"expected input with at least 2 dimensions.*got 1"):
        F.batch_norm(pyconv.randn(3), rm, rv)
    with pytest.raises(ValueError, match=r"running_mean and running_var must both be given.*"
                                         r"running_var=None"):
        F.batch_norm(x, rm, None, training=True)
    with pytest.raises(ValueError, match=r"running_mean and running_var must be given when "
                                         r"training=False"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"eps must be >= 0"):
        F.batch_norm(x, rm, rv, eps=-1.0)
    with pytest.raises(TypeError, match=r"momentum must be a real number"):
        F.batch_norm(x, rm, rv, training=True, momentum=None)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1)])
def test_batch_norm_single_value_per_channel_in_training(shape):
    rm, rv = pyconv.zeros(3), pyconv.ones(3)
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, "
                                         rf"got input size \({shape[0]}, 3"):
        F.batch_norm(pyconv.randn(*shape), rm, rv, training=True)
    np.testing.assert_array_equal(rm.numpy(), 0.0)  # nothing was updated
    F.batch_norm(pyconv.randn(*shape), rm, rv, training=False)  # fine in eval mode


def test_module_errors():
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2D or 3D input \(got 4D input"):
        nn.BatchNorm1d(3)(pyconv.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4D input \(got 3D input"):
        nn.BatchNorm2d(3)(pyconv.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"running_mean must have one element per channel.*"
                                         r"3 channels"):
        nn.BatchNorm2d(4)(pyconv.randn(2, 3, 2, 2))
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel"):
        bn(pyconv.randn(1, 3))
    assert bn.num_batches_tracked.item() == 0  # a rejected batch is not counted
    with pytest.raises(ValueError, match=r"num_features must be a positive int, got 0"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\] or None, got 1.5"):
        nn.BatchNorm2d(3, momentum=1.5)
