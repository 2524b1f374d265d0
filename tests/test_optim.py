"""Optimizers and learning-rate schedulers against torch.optim: parameter trajectories, param
groups, zero_grad, state_dict round trips, schedules and error cases."""

import numpy as np
import pytest

import pyconv
import pyconv.nn as nn
from pyconv.backends import numpy_ref
from pyconv.optim import SGD, Adam, AdamW, Optimizer, lr_scheduler
from pyconv.testing import assert_close
from torch_compare import require_torch

PARAM_SHAPES = [(3, 4), (5,), (2, 1, 3)]
STEPS = 5
TOLERANCE = {np.float64: (1e-12, 1e-10), np.float32: (1e-6, 1e-5)}

SGD_CASES = [
    {},
    {"lr": 0.1},
    {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.8, "dampening": 0.3},
    {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    {"lr": 0.1, "weight_decay": 0.05},
    {"lr": 0.1, "maximize": True},
    {"lr": 0.1, "momentum": 0.7, "nesterov": True, "weight_decay": 0.1, "maximize": True},
]
ADAM_CASES = [
    {},
    {"lr": 0.05, "weight_decay": 0.1},
    {"lr": 0.05, "amsgrad": True},
    {"lr": 0.05, "maximize": True},
    {"lr": 0.02, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.01, "amsgrad": True,
     "maximize": True},
]
ADAMW_CASES = [
    {},
    {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True},
    {"lr": 0.05, "betas": (0.8, 0.99), "maximize": True},
]
CASES = ([("SGD", kw) for kw in SGD_CASES] + [("Adam", kw) for kw in ADAM_CASES]
         + [("AdamW", kw) for kw in ADAMW_CASES])


def _initial_values(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in PARAM_SHAPES]


def _gradients(step, seed=1):
    """Seeded gradients whose scale changes between steps, so amsgrad's maximum matters."""
    rng = np.random.default_rng(seed * 1000 + step)
    scale = 3.0 if step % 2 == 0 else 0.2
    return [rng.standard_normal(s) * scale for s in PARAM_SHAPES]


def _pc_params(values, dtype):
    return [nn.Parameter(pyconv.tensor(v.astype(dtype))) for v in values]


def _th_params(torch, values, dtype):
    return [torch.nn.Parameter(torch.tensor(v.astype(dtype))) for v in values]


def _set_grads(params, grads, make):
    for p, g in zip(params, grads):
        p.grad = make(g)


def _run(opt, params, steps, make_grad, dtype, first=0):
    for step in range(first, first + steps):
        _set_grads(params, [g.astype(dtype) for g in _gradients(step)], make_grad)
        opt.step()


def _assert_params_close(pc_params, th_params, dtype, name):
    atol, rtol = TOLERANCE[np.dtype(dtype).type]
    for i, (p, t) in enumerate(zip(pc_params, th_params)):
        assert p.dtype == np.dtype(dtype)
        assert_close(p.detach().numpy(), t.detach().numpy(), atol=atol, rtol=rtol,
                     name=f"{name} param {i}")


# ---------------------------------------------------------------------------------------------
# trajectories against PyTorch
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_optimizer_matches_torch(name, kwargs, dtype):
    torch = require_torch()
    values = _initial_values()
    pc_params, th_params = _pc_params(values, dtype), _th_params(torch, values, dtype)
    pc_opt = getattr(pyconv.optim, name)(pc_params, **kwargs)
    th_opt = getattr(torch.optim, name)(th_params, **kwargs)
    for step in range(STEPS):
        grads = [g.astype(dtype) for g in _gradients(step)]
        _set_grads(pc_params, grads, pyconv.tensor)
        _set_grads(th_params, grads, torch.tensor)
        pc_opt.step()
        th_opt.step()
        _assert_params_close(pc_params, th_params, dtype, f"{name}{kwargs} step {step}")
    th_state = th_opt.state_dict()
    pc_state = pc_opt.state_dict()
    assert pc_state["state"].keys() == th_state["state"].keys()
    for index, th_entry in th_state["state"].items():
        assert pc_state["state"][index].keys() == th_entry.keys()
        for key, value in th_entry.items():
            assert_close(np.asarray(pc_state["state"][index][key]), value.numpy(),
                         atol=1e-6, rtol=1e-5, name=key)


def test_defaults_match_torch():
    torch = require_torch()
    p = nn.Parameter(pyconv.zeros(2))
    t = torch.nn.Parameter(torch.zeros(2))
    for name in ("SGD", "Adam", "AdamW"):
        ours = getattr(pyconv.optim, name)([p]).param_groups[0]
        theirs = getattr(torch.optim, name)([t]).param_groups[0]
        for key, value in ours.items():
            if key != "params":
                assert theirs[key] == value, f"{name} default {key}: {value} vs torch {theirs[key]}"
    assert SGD([p]).defaults["lr"] == 1e-3


def test_param_groups_with_different_options_match_torch():
    torch = require_torch()
    values = _initial_values(2)
    pc, th = _pc_params(values, np.float64), _th_params(torch, values, np.float64)

    def groups(params):
        return [{"params": params[:1], "lr": 0.3, "momentum": 0.5},
                {"params": params[1:], "weight_decay": 0.2}]

    pc_opt = SGD(groups(pc), lr=0.05, momentum=0.9)
    th_opt = torch.optim.SGD(groups(th), lr=0.05, momentum=0.9)
    assert [g["lr"] for g in pc_opt.param_groups] == [0.3, 0.05]
    assert [g["momentum"] for g in pc_opt.param_groups] == [0.5, 0.9]
    _run(pc_opt, pc, STEPS, pyconv.tensor, np.float64)
    _run(th_opt, th, STEPS, torch.tensor, np.float64)
    _assert_params_close(pc, th, np.float64, "param groups")


def test_add_param_group_matches_torch():
    torch = require_torch()
    values = _initial_values(3)
    pc, th = _pc_params(values, np.float64), _th_params(torch, values, np.float64)
    pc_opt, th_opt = Adam(pc[:2], lr=0.01), torch.optim.Adam(th[:2], lr=0.01)
    pc_opt.add_param_group({"params": pc[2], "lr": 0.1, "amsgrad": True})
    th_opt.add_param_group({"params": th[2], "lr": 0.1, "amsgrad": True})
    _run(pc_opt, pc, STEPS, pyconv.tensor, np.float64)
    _run(th_opt, th, STEPS, torch.tensor, np.float64)
    _assert_params_close(pc, th, np.float64, "add_param_group")


def test_training_through_autograd_matches_torch():
    """Linear + BatchNorm1d trained with Adam on a squared loss: gradients come from backward."""
    torch = require_torch()
    rng = np.random.default_rng(4)
    pc_model = nn.Sequential(nn.Linear(4, 3, dtype=np.float64), nn.BatchNorm1d(3, dtype=np.float64))
    th_model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).double()
    pc_model.load_state_dict(th_model.state_dict())
    pc_opt = Adam(pc_model.parameters(), lr=0.05, weight_decay=0.01)
    th_opt = torch.optim.Adam(th_model.parameters(), lr=0.05, weight_decay=0.01)
    for _ in range(4):
        x, target = rng.standard_normal((8, 4)), rng.standard_normal((8, 3))
        for model, opt, lib in ((pc_model, pc_opt, pyconv), (th_model, th_opt, torch)):
            opt.zero_grad()
            loss = ((model(lib.tensor(x)) - lib.tensor(target)) ** 2).mean()
            loss.backward()
            opt.step()
    for (name, p), t in zip(pc_model.state_dict().items(), th_model.state_dict().values()):
        assert_close(p.numpy(), t.numpy(), atol=1e-12, rtol=1e-10, name=name)


# ---------------------------------------------------------------------------------------------
# step mechanics
# ---------------------------------------------------------------------------------------------


def test_step_skips_params_without_grad_and_uses_the_backend_kernel(monkeypatch):
    calls = []
    kernel = numpy_ref.sgd_step

    def recording_kernel(param, grad, *args):
        calls.append((param, grad))
        kernel(param, grad, *args)

    monkeypatch.setattr(numpy_ref, "sgd_step", recording_kernel)
    a, b = nn.Parameter(pyconv.ones(3)), nn.Parameter(pyconv.ones(2))
    opt = SGD([a, b], lr=0.5, momentum=0.9)
    a.grad = pyconv.tensor([1.0, 2.0, 3.0])
    with pyconv.backends.use("numpy"):  # the backend whose kernel is recorded
        opt.step()
    assert len(calls) == 1 and calls[0][0] is a._data and calls[0][1] is a.grad._data
    np.testing.assert_allclose(a.detach().numpy(), [0.5, 0.0, -0.5])
    np.testing.assert_array_equal(b.detach().numpy(), [1.0, 1.0])
    assert b not in opt.state and a in opt.state
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 2.0, 3.0])  # the gradient is not modified


def test_step_with_closure_returns_loss_and_records_graph():
    w = nn.Parameter(pyconv.tensor([1.0, -2.0]))
    opt = SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with pyconv.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert loss.item() == pytest.approx(5.0)
    np.testing.assert_allclose(w.detach().numpy(), [0.8, -1.6], rtol=1e-6)
    assert loss.grad_fn is not None


def test_zero_grad_both_modes():
    a, b = nn.Parameter(pyconv.ones(3)), nn.Parameter(pyconv.ones(2))
    opt = Adam([a, b])
    (a * 2).sum().backward()
    grad_array = a.grad._data
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and a.grad._data is grad_array and not grad_array.any()
    assert b.grad is None
    (a * 3).sum().backward()  # accumulates into the zeroed array
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 3.0, 3.0])
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_float32_state_stays_float32():
    p = nn.Parameter(pyconv.ones(4))
    opt = AdamW([p], amsgrad=True)
    p.grad = pyconv.ones(4)
    opt.step()
    assert p.dtype == np.float32
    assert all(opt.state[p][k].dtype == np.float32 for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))
    assert opt.state[p]["step"] == 1


# ---------------------------------------------------------------------------------------------
# state_dict
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.05}),
])
def test_state_dict_round_trip_continues_like_an_uninterrupted_run(name, kwargs):
    cls = getattr(pyconv.optim, name)
    values = _initial_values(5)

    def two_groups(params, **options):
        return cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.01}], **options)

    straight = _pc_params(values, np.float64)
    _run(two_groups(straight, **kwargs), straight, STEPS, pyconv.tensor, np.float64)

    first = _pc_params(values, np.float64)
    first_opt = two_groups(first, **kwargs)
    _run(first_opt, first, 2, pyconv.tensor, np.float64)
    saved = first_opt.state_dict()
    assert sorted(saved) == ["param_groups", "state"]
    assert sorted(saved["state"]) == [0, 1, 2]
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1, 2]]
    assert [g["lr"] for g in saved["param_groups"]] == [kwargs["lr"], 0.01]
    fresh = _pc_params([p.detach().numpy() for p in first], np.float64)
    _run(first_opt, first, 1, pyconv.tensor, np.float64, first=2)  # must not alter the snapshot

    with pytest.raises(ValueError, match=r"2 parameter groups, the optimizer has 1"):
        cls(fresh).load_state_dict(saved)
    fresh_opt = cls([{"params": fresh[:1]}, {"params": fresh[1:]}], lr=123.0)
    fresh_opt.load_state_dict(saved)  # the saved options replace the fresh ones
    assert [g["lr"] for g in fresh_opt.param_groups] == [kwargs["lr"], 0.01]
    _run(fresh_opt, fresh, STEPS - 2, pyconv.tensor, np.float64, first=2)
    for i, (p, q) in enumerate(zip(fresh, straight)):
        assert_close(p.detach().numpy(), q.detach().numpy(), atol=0, rtol=0, name=f"param {i}")


def test_state_dict_snapshot_is_independent_of_later_steps():
    p = nn.Parameter(pyconv.ones(3, dtype=np.float64))
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = pyconv.ones(3, dtype=np.float64)
    opt.step()
    saved = opt.state_dict()
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["momentum_buffer"].numpy(), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1}),
    ("Adam", {"lr": 0.05, "amsgrad": True}),
])
def test_loads_a_torch_state_dict_and_continues_like_torch(name, kwargs):
    torch = require_torch()
    values = _initial_values(6)
    th = _th_params(torch, values, np.float64)
    th_opt = getattr(torch.optim, name)(th, **kwargs)
    _run(th_opt, th, 2, torch.tensor, np.float64)
    pc = _pc_params([t.detach().numpy() for t in th], np.float64)
    pc_opt = getattr(pyconv.optim, name)(pc)
    pc_opt.load_state_dict(th_opt.state_dict())
    if name == "Adam":
        assert pc_opt.state[pc[0]]["step"] == 2
    _run(pc_opt, pc, 3, pyconv.tensor, np.float64, first=2)
    _run(th_opt, th, 3, torch.tensor, np.float64, first=2)
    _assert_params_close(pc, th, np.float64, f"{name} resumed from torch state")


# ---------------------------------------------------------------------------------------------
# schedulers
# ---------------------------------------------------------------------------------------------

SCHEDULERS = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("StepLR", {"step_size": 1}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
    ("CosineAnnealingLR", {"T_max": 4}),
]


def _scheduled_pair(torch, name, kwargs):
    pc_params = _pc_params(_initial_values(), np.float64)
    th_params = _th_params(torch, _initial_values(), np.float64)
    pc_opt = SGD([{"params": pc_params[:1]}, {"params": pc_params[1:], "lr": 0.3}], lr=0.1)
    th_opt = torch.optim.SGD([{"params": th_params[:1]}, {"params": th_params[1:], "lr": 0.3}], lr=0.1)
    pc_sched = getattr(lr_scheduler, name)(pc_opt, **kwargs)
    th_sched = getattr(torch.optim.lr_scheduler, name)(th_opt, **kwargs)
    th_opt.step()  # torch warns when a scheduler steps before its optimizer did
    pc_opt.step()
    return pc_opt, pc_sched, th_opt, th_sched


@pytest.mark.parametrize("name,kwargs", SCHEDULERS)
def test_scheduler_matches_torch_over_20_epochs(name, kwargs):
    """T_max < 20 also checks the cosine past its minimum (it continues with period 2 T_max)."""
    torch = require_torch()
    pc_opt, pc_sched, th_opt, th_sched = _scheduled_pair(torch, name, kwargs)
    assert pc_sched.get_last_lr() == pytest.approx(th_sched.get_last_lr(), rel=1e-14)
    for epoch in range(20):
        pc_opt.step()
        th_opt.step()
        if epoch == 8:  # updates are recursive: a manual change of lr carries over, as in torch
            for group in pc_opt.param_groups + th_opt.param_groups:
                group["lr"] *= 0.5
        pc_sched.step()
        th_sched.step()
        assert pc_sched.last_epoch == th_sched.last_epoch == epoch + 1
        assert pc_sched.get_last_lr() == pytest.approx(th_sched.get_last_lr(), rel=1e-12, abs=1e-15)
        assert [g["lr"] for g in pc_opt.param_groups] == pc_sched.get_last_lr()
    assert [g["initial_lr"] for g in pc_opt.param_groups] == [0.1, 0.3]


@pytest.mark.parametrize("name,kwargs", SCHEDULERS)
def test_scheduler_closed_form_matches_torch(name, kwargs):
    torch = require_torch()
    pc_opt, pc_sched, th_opt, th_sched = _scheduled_pair(torch, name, kwargs)
    for epoch in (5, 2, 11):
        with pytest.warns(UserWarning, match="deprecated"):
            pc_sched.step(epoch)
        with pytest.warns(UserWarning):
            th_sched.step(epoch)
        assert pc_sched.get_last_lr() == pytest.approx(th_sched.get_last_lr(), rel=1e-12)


def test_scheduler_state_dict_round_trip():
    """Checkpoint optimizer and scheduler, resume both elsewhere, continue like torch."""
    torch = require_torch()
    pc_opt, pc_sched, th_opt, th_sched = _scheduled_pair(torch, "CosineAnnealingLR", {"T_max": 5})
    for _ in range(3):
        pc_sched.step()
        th_sched.step()
    saved_opt, saved_sched = pc_opt.state_dict(), pc_sched.state_dict()
    assert "optimizer" not in saved_sched
    assert saved_sched["last_epoch"] == 3 and saved_sched["T_max"] == 5
    pc_sched.step()  # must not leak into the saved dicts
    assert saved_sched["last_epoch"] == 3 and saved_sched["_last_lr"] != pc_sched.get_last_lr()

    params = [nn.Parameter(pyconv.zeros(1)) for _ in PARAM_SHAPES]
    resumed_opt = SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.7)
    resumed_opt.load_state_dict(saved_opt)
    resumed = lr_scheduler.CosineAnnealingLR(resumed_opt, T_max=5)
    resumed.load_state_dict(saved_sched)
    assert resumed.base_lrs == [0.1, 0.3]
    for _ in range(6):
        resumed.step()
        th_sched.step()
        assert resumed.get_last_lr() == pytest.approx(th_sched.get_last_lr(), rel=1e-12, abs=1e-15)


def test_scheduler_resume_with_last_epoch():
    torch = require_torch()
    pc_opt, pc_sched, th_opt, th_sched = _scheduled_pair(torch, "StepLR", {"step_size": 2})
    for _ in range(3):
        pc_sched.step()
        th_sched.step()
    pc_again = lr_scheduler.StepLR(pc_opt, step_size=2, last_epoch=pc_sched.last_epoch)
    th_again = torch.optim.lr_scheduler.StepLR(th_opt, step_size=2, last_epoch=th_sched.last_epoch)
    assert pc_again.base_lrs == [0.1, 0.3]
    for _ in range(4):
        pc_again.step()
        th_again.step()
        assert pc_again.get_last_lr() == pytest.approx(th_again.get_last_lr(), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls,kwargs,exc,pattern", [
    (SGD, {"lr": -0.1}, ValueError, r"SGD: invalid lr value: expected >= 0.0, got -0.1"),
    (SGD, {"momentum": -0.5}, ValueError, r"invalid momentum value.*-0.5"),
    (SGD, {"weight_decay": -1.0}, ValueError, r"invalid weight_decay value"),
    (SGD, {"nesterov": True}, ValueError, r"Nesterov momentum requires a momentum and zero dampening"),
    (SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ValueError,
     r"Nesterov.*dampening=0.1"),
    (SGD, {"lr": "fast"}, TypeError, r"SGD: lr must be a real number, got 'fast'"),
    (Adam, {"lr": -1e-3}, ValueError, r"Adam: invalid lr value"),
    (Adam, {"eps": -1e-8}, ValueError, r"invalid eps value"),
    (Adam, {"betas": (1.0, 0.999)}, ValueError, r"invalid betas\[0\] value: expected in \[0.0, 1.0\), got 1.0"),
    (Adam, {"betas": (0.9, -0.1)}, ValueError, r"invalid betas\[1\] value"),
    (Adam, {"betas": 0.9}, TypeError, r"betas must be a pair"),
    (Adam, {"weight_decay": -0.1}, ValueError, r"invalid weight_decay value"),
    (AdamW, {"betas": (0.9, 1.5)}, ValueError, r"AdamW: invalid betas\[1\] value"),
    (AdamW, {"lr": float("nan")}, ValueError, r"AdamW: invalid lr value"),
])
def test_invalid_hyperparameters(cls, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        cls([nn.Parameter(pyconv.zeros(2))], **kwargs)


def test_invalid_hyperparameters_in_a_group():
    p = nn.Parameter(pyconv.zeros(2))
    with pytest.raises(ValueError, match=r"invalid lr value.*-1"):
        SGD([{"params": [p], "lr": -1}])
    opt = Adam([p])
    with pytest.raises(ValueError, match=r"invalid betas\[0\] value"):
        opt.add_param_group({"params": [nn.Parameter(pyconv.zeros(1))], "betas": (2.0, 0.9)})


def test_invalid_params():
    p = nn.Parameter(pyconv.zeros(2))
    with pytest.raises(ValueError, match=r"empty parameter list"):
        SGD([])
    with pytest.raises(TypeError, match=r"single Tensor"):
        SGD(p)
    with pytest.raises(TypeError, match=r"can only optimize Tensors, but one of the params is ndarray"):
        SGD([np.zeros(2)])
    with pytest.raises(ValueError, match=r"can't optimize a non-leaf Tensor"):
        SGD([p * 2])
    with pytest.raises(ValueError, match=r"more than one parameter group"):
        SGD([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match=r"more than once"):
        SGD([p, p])
    with pytest.raises(TypeError, match=r"ordered collections"):
        SGD([{"params": {p}}])
    with pytest.raises(ValueError, match=r"required optimization parameter lr"):
        Optimizer([p], {"lr": pyconv.optim.optimizer.required})


def test_load_state_dict_rejects_mismatched_groups():
    a, b = nn.Parameter(pyconv.zeros(2)), nn.Parameter(pyconv.zeros(3))
    saved = SGD([a, b], momentum=0.9).state_dict()
    with pytest.raises(ValueError, match=r"parameter group 0 has 2 parameters, the optimizer's has 1"):
        SGD([a], momentum=0.9).load_state_dict(saved)


def test_scheduler_errors():
    opt = SGD([nn.Parameter(pyconv.zeros(2))], lr=0.1)
    with pytest.raises(TypeError, match=r"optimizer must be a pyconv.optim.Optimizer, got list"):
        lr_scheduler.StepLR([], step_size=2)
    with pytest.raises(ValueError, match=r"StepLR: step_size must be >= 1, got 0"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match=r"step_size must be an int, got 1.5"):
        lr_scheduler.StepLR(opt, step_size=1.5)
    with pytest.raises(ValueError, match=r"CosineAnnealingLR: T_max must be >= 1, got 0"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(KeyError, match=r"initial_lr"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)
