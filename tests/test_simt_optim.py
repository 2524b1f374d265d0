"""kernels/optim.cu on the SIMT emulator against the NumPy reference: fused SGD and Adam/AdamW
steps, in place, over several steps with every option combination of test_optim.py, float64
(to the last bits) and float32, plus the in-place rules of the launch glue."""

import numpy as np
import pytest

import pyconv
import pyconv.nn as nn
from pyconv.backends import numpy_ref
from pyconv.optim import SGD, Adam, AdamW
from pyconv.testing import assert_close
from simt_support import require_simt, schedule, simt  # noqa: F401 - schedule, simt are fixtures
from test_optim import ADAM_CASES, ADAMW_CASES, SGD_CASES

pytestmark = require_simt()

# the reference follows PyTorch's op order in the parameter's dtype and so do the kernels
TOL = {np.float64: (1e-15, 1e-15), np.float32: (1e-6, 1e-6)}
DTYPES = [np.float64, np.float32]
STEPS = 4
# test_optim.py's shapes, and one larger than the grid (the grid-stride loop wraps around)
SHAPES = [(3, 4), (5,), (2, 1, 3), (7, 1000)]

# test_optim.py's option sets, and 1 - beta1 >= 0.5: the other branch of PyTorch's lerp
ADAM_CASES = ADAM_CASES + [{"betas": (0.3, 0.9)}]
CASES = ([(SGD, kw) for kw in SGD_CASES] + [(Adam, kw) for kw in ADAM_CASES]
         + [(AdamW, kw) for kw in ADAMW_CASES])


def _options(cls, kwargs):
    """The optimizer's full hyperparameters (its defaults filled in)."""
    group = cls([nn.Parameter(pyconv.zeros(1))], **kwargs).param_groups[0]
    return {k: v for k, v in group.items() if k != "params"}


def _gradient(shape, dtype, step):
    """Seeded gradients whose scale changes between steps, so amsgrad's maximum matters."""
    rng = np.random.default_rng(1000 + step)
    return (rng.standard_normal(shape) * (3.0 if step % 2 == 0 else 0.2)).astype(dtype)


def _sgd_args(o, buffer, step):
    momentum = o["momentum"]
    return (None if momentum == 0 else buffer, o["lr"], momentum, o["dampening"], o["nesterov"],
            o["weight_decay"], o["maximize"], step == 0)


def _adam_args(o, state, step):
    beta1, beta2 = o["betas"]
    return (*state, step + 1, o["lr"], beta1, beta2, o["eps"], o["weight_decay"], o["amsgrad"],
            o["maximize"], o["decoupled_weight_decay"])


def _run_both(backend, cls, kwargs, shape, dtype):
    """STEPS updates with the backend's kernel and the reference's, from the same state;
    compares parameter and state after every step."""
    o = _options(cls, kwargs)
    atol, rtol = TOL[np.dtype(dtype).type]
    param = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    runs = []
    for kernels in (backend, numpy_ref):
        state = [np.zeros(shape, dtype) for _ in range(3)]
        if cls is not SGD and not o["amsgrad"]:
            state[2] = None
        runs.append((kernels, param.copy(), state))
    for step in range(STEPS):
        grad = _gradient(shape, dtype, step)
        for kernels, p, state in runs:
            if cls is SGD:
                assert kernels.sgd_step(p, grad, *_sgd_args(o, state[0], step)) is None
            else:
                assert kernels.adam_step(p, grad, *_adam_args(o, state, step)) is None
        (_, ours, our_state), (_, expected, ref_state) = runs
        name = f"{cls.__name__}{kwargs} step {step}"
        assert_close(ours, expected, atol=atol, rtol=rtol, name=f"{name} param")
        for i, (a, e) in enumerate(zip(our_state, ref_state)):
            if e is not None:
                assert_close(a, e, atol=atol, rtol=rtol, name=f"{name} state {i}")
    np.testing.assert_array_equal(grad, _gradient(shape, dtype, STEPS - 1))  # grad is read only


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls,kwargs", CASES,
                         ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(CASES)])
def test_steps_match_reference(simt, schedule, cls, kwargs, dtype):
    _run_both(simt, cls, kwargs, SHAPES[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("cls,kwargs", [(SGD, SGD_CASES[-1]), (Adam, ADAM_CASES[4]),
                                        (AdamW, ADAMW_CASES[1])], ids=["SGD", "Adam", "AdamW"])
def test_every_shape_matches_reference(simt, schedule, monkeypatch, cls, kwargs, shape, dtype):
    # a one-multiprocessor device gets 8 blocks of 256 threads: 7000 elements wrap around
    monkeypatch.setattr(simt.device, "multiprocessors", 1)
    _run_both(simt, cls, kwargs, shape, dtype)


def test_empty_parameter_is_a_no_op(simt, schedule):
    p, g = np.zeros((0, 3)), np.zeros((0, 3))
    simt.sgd_step(p, g, np.zeros((0, 3)), 0.1, 0.9, 0.0, False, 0.0, False, True)
    simt.adam_step(p, g, np.zeros((0, 3)), np.zeros((0, 3)), None, 1, 0.1, 0.9, 0.999, 1e-8, 0.0,
                   False, False, False)
    assert p.shape == (0, 3)


def test_amsgrad_maximum_propagates_nan_like_numpy(simt, schedule):
    grad = np.array([np.nan, 1.0, 2.0])
    state = [[np.zeros(3), np.zeros(3), np.array([0.0, np.nan, 5.0])] for _ in range(2)]
    params = [np.ones(3), np.ones(3)]
    for kernels, p, s in zip((simt, numpy_ref), params, state):
        kernels.adam_step(p, grad, *s, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, True, False, False)
    assert_close(params[0], params[1], atol=0, rtol=0, name="param")
    assert_close(state[0][2], state[1][2], atol=0, rtol=0, name="max_exp_avg_sq")


def test_non_contiguous_gradient_is_read_through_a_copy(simt, schedule):
    grad = np.random.default_rng(3).standard_normal((4, 6))[:, ::2]
    params = [np.ones((4, 3)), np.ones((4, 3))]
    buffers = [np.zeros((4, 3)), np.zeros((4, 3))]
    for kernels, p, b in zip((simt, numpy_ref), params, buffers):
        kernels.sgd_step(p, grad, b, 0.1, 0.9, 0.0, True, 0.01, False, True)
    assert_close(params[0], params[1], atol=0, rtol=0, name="param")
    assert_close(buffers[0], buffers[1], atol=0, rtol=0, name="momentum_buffer")


def test_arrays_updated_in_place_must_be_the_callers(simt):
    grad = np.ones((4, 3))
    strided = np.ones((4, 6))[:, ::2]
    with pytest.raises(ValueError, match="param is updated in place and must be C-contiguous"):
        simt.sgd_step(strided, grad, None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError, match="momentum_buffer is updated in place and must be C-con"):
        simt.sgd_step(np.ones((4, 3)), grad, strided, 0.1, 0.9, 0.0, False, 0.0, False, True)
    frozen = np.zeros((4, 3))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="exp_avg_sq is updated in place and must be writeable"):
        simt.adam_step(np.ones((4, 3)), grad, np.zeros((4, 3)), frozen, None, 1, 0.1, 0.9, 0.999,
                       1e-8, 0.0, False, False, False)
    with pytest.raises(ValueError, match="max_exp_avg_sq is required when amsgrad"):
        simt.adam_step(np.ones((4, 3)), grad, np.zeros((4, 3)), np.zeros((4, 3)), None, 1, 0.1,
                       0.9, 0.999, 1e-8, 0.0, True, False, False)
    with pytest.raises(TypeError, match="grad has dtype float32, expected float64"):
        simt.sgd_step(np.ones((4, 3)), grad.astype(np.float32), None, 0.1, 0.0, 0.0, False, 0.0,
                      False, True)
    with pytest.raises(ValueError, match=r"exp_avg has shape \(3,\), expected \(4, 3\)"):
        simt.adam_step(np.ones((4, 3)), grad, np.zeros(3), np.zeros((4, 3)), None, 1, 0.1, 0.9,
                       0.999, 1e-8, 0.0, False, False, False)


@pytest.mark.parametrize("cls,kwargs,entry", [
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, "sgd_step_f32"),
    (Adam, {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}, "adam_step_f32"),
    (AdamW, {"lr": 0.05}, "adam_step_f32"),
])
def test_optimizer_step_runs_the_kernels(simt, schedule, cls, kwargs, entry):
    """optimizer.step() on the simt backend equals the numpy backend, gradients from autograd."""
    rng = np.random.default_rng(11)
    w0, x = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    results = []
    for backend in ("numpy", "simt"):
        w = nn.Parameter(pyconv.tensor(w0.copy()))
        opt = cls([w], **kwargs)
        with pyconv.backends.use(backend):
            for _ in range(3):
                opt.zero_grad()
                ((w @ pyconv.tensor(x)) ** 2).sum().backward()
                opt.step()
        results.append(w.detach().numpy())
    assert_close(results[1], results[0], atol=1e-6, rtol=1e-6, name=f"{cls.__name__} param")
    assert simt.device.launches[entry] >= 3
