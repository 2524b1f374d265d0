"""nn.Module mechanics: registration, traversal, modes, state, containers, repr, init."""

import math

import numpy as np
import pytest

import pyconv
import pyconv.nn as nn


def make_net(lib):
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
            self.heads = nn.ModuleList([nn.Linear(8, 2), nn.Linear(8, 3)])
            self.scale = nn.Parameter(lib.ones(1))
            self.register_buffer("steps", lib.zeros(1))
            self.register_buffer("scratch", lib.zeros(1), persistent=False)
            self.shared = self.heads[0]  # one module under two names

        def forward(self, x):
            h = self.body(x)
            return [head(h) * self.scale for head in self.heads]

    return Net()


def Net():
    return make_net(pyconv)


def test_registration_and_traversal_match_torch():
    from torch_compare import require_torch

    torch = require_torch()
    ours, theirs = make_net(pyconv), make_net(torch)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert len(list(ours.parameters())) == 7


def test_train_eval_propagates():
    net = Net()
    assert net.training and net.body[1].training
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_forward_backward_through_containers():
    net = Net()
    outs = net(pyconv.randn(5, 4))
    assert [o.shape for o in outs] == [(5, 2), (5, 3)]
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_state_dict_round_trip_and_dtype_conversion():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    a.double()
    assert all(p.dtype == np.float64 for p in a.parameters())
    b.load_state_dict(a.state_dict())  # values are cast to the destination dtype
    assert all(p.dtype == np.float32 for p in b.parameters())


def test_assignment_rules():
    m = nn.Module()
    m.w = nn.Parameter(pyconv.ones(2))
    with pytest.raises(TypeError, match="cannot assign ndarray as parameter 'w'"):
        m.w = np.ones(2)
    m.w = None
    assert list(m.named_parameters()) == []
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        m.missing

    class Broken(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()


def test_sequential_and_modulelist_behave_like_lists():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2
    seq.append(nn.Sigmoid())
    assert isinstance(seq[3], nn.Sigmoid)
    with pytest.raises(IndexError):
        seq[10]
    ml = nn.ModuleList()
    ml.extend([nn.ReLU(), nn.Tanh()])
    assert [type(m).__name__ for m in ml] == ["ReLU", "Tanh"]


def test_repr_matches_torch_layout():
    from torch_compare import require_torch

    torch = require_torch()
    for lib_model in (lambda L: L.nn.Sequential(L.nn.Linear(4, 8), L.nn.ReLU(), L.nn.Dropout(0.25),
                                                L.nn.Flatten(), L.nn.Identity(), L.nn.Sigmoid()),):
        assert repr(lib_model(pyconv)) == repr(lib_model(torch))


def test_linear_default_init_bounds_match_pytorch():
    pyconv.manual_seed(0)
    lin = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)
    w = lin.weight.detach().numpy()
    b = lin.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # U(-b, b) has std b/sqrt(3)


def test_zero_grad_and_requires_grad_():
    net = Net()
    net(pyconv.randn(2, 4))[0].sum().backward()
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
