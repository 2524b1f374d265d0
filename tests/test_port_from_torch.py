"""A PyTorch user's script ports by renaming ``torch`` to ``pyconv``: the same model code runs
on both libraries, and a PyTorch state_dict converted to NumPy loads unchanged and reproduces the
outputs, the gradients and a few optimizer steps."""

import numpy as np
import pytest

import pyconv
from pyconv.testing import assert_close
from torch_compare import require_torch


def lenet(lib):
    """The same source for both libraries (``lib`` is ``torch`` or ``pyconv``)."""
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
    )


def make_lstm_classifier(lib):
    nn = lib.nn

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True, bidirectional=True)
            self.head = nn.Linear(32, 5)

        def forward(self, x):
            out, (h, c) = self.lstm(x)
            return self.head(out[:, -1])

    return LSTMClassifier()


def _torch_state_as_numpy(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def _train_steps(lib, model, x, y, steps, opt_name):
    F = lib.nn.functional
    if opt_name == "sgd":
        opt = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _ported_pair(torch, make, seed):
    """The same model source built by both libraries in float64, torch's random weights loaded
    into pyconv through a NumPy state_dict with identical keys."""
    torch.manual_seed(seed)
    t_model = make(torch).double()
    p_model = make(pyconv).double()
    assert list(p_model.state_dict()) == list(t_model.state_dict())
    p_model.load_state_dict(_torch_state_as_numpy(t_model))
    return t_model, p_model


def _assert_same_training(torch, t_model, p_model, x, y, opt_name, steps=3):
    """Three optimizer steps on both libraries give the same losses and the same state."""
    t_losses = _train_steps(torch, t_model, torch.tensor(x), torch.tensor(y), steps, opt_name)
    p_losses = _train_steps(pyconv, p_model, pyconv.tensor(x), pyconv.tensor(y), steps, opt_name)
    np.testing.assert_allclose(p_losses, t_losses, rtol=1e-9)
    t_state = _torch_state_as_numpy(t_model)
    for k, v in p_model.state_dict().items():
        assert_close(v, t_state[k], atol=1e-9, rtol=1e-7, name=k)


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_lenet_port_matches_torch(opt_name):
    torch = require_torch()
    t_model, p_model = _ported_pair(torch, lenet, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 28, 28))
    y = rng.integers(0, 10, 8)

    t_model.eval()
    p_model.eval()
    assert_close(p_model(pyconv.tensor(x)).detach(), t_model(torch.tensor(x)).detach().numpy(),
                 atol=1e-10, rtol=1e-8, name="eval logits")

    t_model.train()
    p_model.train()
    t_model[10].p = p_model[10].p = 0.0  # dropout masks are library-specific random streams
    _assert_same_training(torch, t_model, p_model, x, y, opt_name)


def test_lstm_port_matches_torch():
    torch = require_torch()
    t_model, p_model = _ported_pair(torch, make_lstm_classifier, seed=1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 7, 8))
    y = rng.integers(0, 5, 4)
    _assert_same_training(torch, t_model, p_model, x, y, "adam")


def test_float32_state_dict_round_trip_between_libraries():
    torch = require_torch()
    torch.manual_seed(2)
    t_model = lenet(torch).eval()
    p_model = lenet(pyconv).eval()
    p_model.load_state_dict(_torch_state_as_numpy(t_model))
    x = np.random.default_rng(2).standard_normal((4, 1, 28, 28)).astype(np.float32)
    p_out = p_model(pyconv.tensor(x))
    assert p_out.dtype == np.float32
    assert_close(p_out.detach(), t_model(torch.tensor(x)).detach().numpy(), atol=1e-4, rtol=1e-4)
    # and back: pyconv's state_dict loads into torch
    t2 = lenet(torch).eval()
    t2.load_state_dict({k: torch.tensor(v.numpy()) for k, v in p_model.state_dict().items()})
    assert_close(t2(torch.tensor(x)).detach().numpy(), t_model(torch.tensor(x)).detach().numpy(), atol=0, rtol=0)


def test_load_state_dict_errors_are_clear():
    model = pyconv.nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias"'):
        model.load_state_dict({"weight": np.zeros((2, 3))})
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with shape \(3, 2\)"):
        model.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra"'):
        model.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(2), "extra": np.zeros(1)})
    missing, unexpected = model.load_state_dict({"weight": np.ones((2, 3))}, strict=False)
    assert missing == ["bias"] and unexpected == []
    assert model.weight.detach().numpy().sum() == 6
