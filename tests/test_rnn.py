"""Recurrent cells and layers: gradcheck, PyTorch comparison (outputs, final states and every
gradient), state_dict layout, initialisation, repr, long sequences and argument errors."""

import math

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
from pyconv import nn
from pyconv.backends import numpy_ref
from pyconv.testing import assert_close, gradcheck
from torch_compare import DEFAULT_TOL, compare_with_torch, require_torch

GATES = {"rnn_tanh_cell": 1, "rnn_relu_cell": 1, "lstm_cell": 4, "gru_cell": 3}
CELLS = sorted(GATES)
MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]
DTYPES = [np.float64, np.float32]
# float32 recurrences accumulate rounding over the steps and layers
LAYER_TOL = {np.float64: DEFAULT_TOL[np.float64], np.float32: (1e-4, 1e-3)}


def _cell_arrays(name, batch, input_size, hidden, biases, seed):
    """[input, h, (c,) w_ih, w_hh, (b_ih, b_hh)] as float64 arrays; biases 'both', 'none' or
    'ih' (b_ih only)."""
    rng = np.random.default_rng(seed)
    rows = GATES[name] * hidden
    arrays = [rng.standard_normal((batch, input_size)), rng.standard_normal((batch, hidden))]
    if name == "lstm_cell":
        arrays.append(rng.standard_normal((batch, hidden)))
    arrays += [rng.standard_normal((rows, input_size)) * 0.6, rng.standard_normal((rows, hidden)) * 0.6]
    if biases == "both":
        arrays += [rng.standard_normal(rows), rng.standard_normal(rows)]
    elif biases == "ih":
        arrays += [rng.standard_normal(rows), None]
    return arrays


def _cell_fn(lib, name):
    """The cell as a function of flat positional arguments (LSTM's hx becomes (h, c))."""
    fn = getattr(lib, name)
    if name == "lstm_cell":
        return lambda x, h, c, *rest: fn(x, (h, c), *rest)
    return fn


# ---------------------------------------------------------------------------------------------
# cells: functional API
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("biases", ["both", "none"])
@pytest.mark.parametrize("name", CELLS)
def test_cell_gradcheck(name, biases):
    arrays = _cell_arrays(name, 2, 3, 2, biases, seed=1)
    tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]
    assert gradcheck(_cell_fn(F, name), tensors)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("biases", ["both", "none", "ih"])
@pytest.mark.parametrize("shape", [(3, 5, 4), (1, 1, 1), (4, 2, 7), (0, 3, 2)])
@pytest.mark.parametrize("name", CELLS)
def test_cell_matches_torch(name, shape, biases, dtype):
    torch = require_torch()
    arrays = _cell_arrays(name, *shape, biases, seed=sum(shape) + len(biases))
    compare_with_torch(_cell_fn(F, name), _cell_fn(torch, name), arrays, dtype=dtype, name=name)


def test_lstm_cell_gradient_through_h_only_and_c_only():
    torch = require_torch()
    arrays = _cell_arrays("lstm_cell", 3, 4, 5, "both", seed=7)
    for pick in (0, 1):
        compare_with_torch(lambda *a: _cell_fn(F, "lstm_cell")(*a)[pick],
                           lambda *a: _cell_fn(torch, "lstm_cell")(*a)[pick],
                           arrays, name=f"lstm_cell output {pick}")


def test_relu_cell_gradient_is_zero_where_clamped():
    x = pyconv.tensor([[1.0, -1.0]], dtype=np.float64, requires_grad=True)
    h = pyconv.zeros(1, 2, dtype=np.float64)
    w_ih = pyconv.tensor(np.eye(2), requires_grad=True)
    w_hh = pyconv.tensor(np.zeros((2, 2)))
    out = F.rnn_relu_cell(x, h, w_ih, w_hh)
    out.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), [[1.0, 0.0]])
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 0.0]])


@pytest.mark.parametrize("name", CELLS)
def test_kernels_keep_float32(name):
    arrays = [None if a is None else a.astype(np.float32)
              for a in _cell_arrays(name, 3, 4, 2, "both", seed=3)]
    fwd = getattr(numpy_ref, name + "_forward")(*arrays)
    fwd = fwd if isinstance(fwd, tuple) else (fwd,)
    x, h = arrays[0], arrays[1]
    weights = arrays[-4:-2]
    if name == "lstm_cell":
        h_new, c_new, gates = fwd
        grads = numpy_ref.lstm_cell_backward(h_new, c_new, x, h, arrays[2], *weights, gates, c_new)
    elif name == "gru_cell":
        grads = numpy_ref.gru_cell_backward(fwd[0], x, h, *weights, fwd[1])
    else:
        grads = getattr(numpy_ref, name + "_backward")(fwd[0], x, h, *weights, fwd[0])
    for array in fwd + tuple(grads):
        assert array.dtype == np.float32


def test_gru_workspace_holds_gates_and_hidden_projection():
    """workspace = [r, z, n, W_hn h + b_hn], recomputed here independently in float64."""
    x, h, w_ih, w_hh, b_ih, b_hh = _cell_arrays("gru_cell", 2, 3, 4, "both", seed=5)
    h_new, workspace = numpy_ref.gru_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh)
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    r, z = sig(gi[:, :4] + gh[:, :4]), sig(gi[:, 4:8] + gh[:, 4:8])
    n = np.tanh(gi[:, 8:] + r * gh[:, 8:])
    np.testing.assert_allclose(workspace, np.concatenate([r, z, n, gh[:, 8:]], axis=1), rtol=1e-12)
    np.testing.assert_allclose(h_new, (1 - z) * n + z * h, rtol=1e-12)


def test_cell_function_errors_name_the_argument():
    x, h, w, u = pyconv.randn(2, 3), pyconv.randn(2, 4), pyconv.randn(4, 3), pyconv.randn(4, 4)
    with pytest.raises(ValueError, match=r"rnn_tanh_cell: expected input with 2 dimensions"):
        F.rnn_tanh_cell(pyconv.randn(3), h, w, u)
    with pytest.raises(ValueError, match=r"input has 5 features .* but w_ih expects 3"):
        F.rnn_tanh_cell(pyconv.randn(2, 5), h, w, u)
    with pytest.raises(ValueError, match=r"expected hx of shape \(2, 4\), got \(2, 3\)"):
        F.rnn_relu_cell(x, pyconv.randn(2, 3), w, u)
    with pytest.raises(ValueError, match=r"expected hx of shape \(2, 4\), got \(3, 4\)"):
        F.gru_cell(x, pyconv.randn(3, 4), pyconv.randn(12, 3), pyconv.randn(12, 4))
    with pytest.raises(ValueError, match=r"gru_cell: expected w_hh of shape .* = \(12, 4\).*got \(8, 4\)"):
        F.gru_cell(x, h, pyconv.randn(12, 3), pyconv.randn(8, 4))
    with pytest.raises(ValueError, match=r"lstm_cell: expected w_ih with 16 rows.*got shape \(12, 3\)"):
        F.lstm_cell(x, (h, h), pyconv.randn(12, 3), pyconv.randn(16, 4))
    with pytest.raises(ValueError, match=r"expected b_hh of shape \(4,\), got \(3,\)"):
        F.rnn_tanh_cell(x, h, w, u, pyconv.randn(4), pyconv.randn(3))
    with pytest.raises(ValueError, match=r"expected hx\[1\] of shape \(2, 4\), got \(2, 5\)"):
        F.lstm_cell(x, (h, pyconv.randn(2, 5)), pyconv.randn(16, 3), pyconv.randn(16, 4))
    with pytest.raises(TypeError, match=r"lstm_cell: hx must be a pair"):
        F.lstm_cell(x, h, pyconv.randn(16, 3), pyconv.randn(16, 4))
    with pytest.raises(TypeError, match=r"hx must be a pyconv Tensor"):
        F.rnn_tanh_cell(x, None, w, u)
    with pytest.raises(TypeError, match=r"input must be a floating-point tensor.*int64"):
        F.rnn_tanh_cell(pyconv.tensor([[1, 2, 3]]), h[:1], w, u)
    with pytest.raises(TypeError, match=r"w_ih has dtype float32 but input has dtype float64"):
        F.rnn_tanh_cell(x.double(), h.double(), w, u.double())
    with pytest.raises(TypeError, match=r"hx has dtype float64 but input has dtype float32"):
        F.rnn_tanh_cell(x, h.double(), w, u)
    with pytest.raises(ValueError, match=r"expected w_hh with 2 dimensions"):
        F.rnn_tanh_cell(x, h, w, pyconv.randn(16))


# ---------------------------------------------------------------------------------------------
# cells: modules
# ---------------------------------------------------------------------------------------------

CELL_MODULES = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}),
                ("GRUCell", {}), ("GRUCell", {"bias": False})]


def _load_from_torch(pc_module, torch_module):
    pc_module.load_state_dict({k: v.detach().numpy() for k, v in torch_module.state_dict().items()})


def _torch_dtype(torch, dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def _compare_modules(pc_module, th_module, inputs, dtype, name):
    """Run both modules on the same inputs (arrays, tuples of arrays or None; all but None
    require grad), compare every output, then the gradients of the inputs and of every
    parameter by name after one backward with shared random upstream gradients."""
    torch = require_torch()
    atol, rtol = LAYER_TOL[dtype]
    pc_args, th_args, pc_leaves, th_leaves = [], [], [], []

    def convert(a):
        if a is None:
            return None, None
        if isinstance(a, tuple):
            pairs = [convert(v) for v in a]
            return tuple(p for p, _ in pairs), tuple(t for _, t in pairs)
        p = pyconv.tensor(a.astype(dtype), requires_grad=True)
        t = torch.tensor(a.astype(dtype), requires_grad=True)
        pc_leaves.append(p)
        th_leaves.append(t)
        return p, t

    for a in inputs:
        p, t = convert(a)
        pc_args.append(p)
        th_args.append(t)

    def flat(out):
        return [v for o in out for v in flat(o)] if isinstance(out, (tuple, list)) else [out]

    pc_out, th_out = flat(pc_module(*pc_args)), flat(th_module(*th_args))
    assert len(pc_out) == len(th_out)
    rng = np.random.default_rng(0)
    pc_loss = th_loss = 0
    for k, (p, t) in enumerate(zip(pc_out, th_out)):
        assert p.dtype == np.dtype(dtype), f"{name}: output {k} has dtype {p.dtype}"
        assert_close(p.detach().numpy(), t.detach().numpy(), atol, rtol, name=f"{name} output {k}")
        w = rng.standard_normal(tuple(t.shape)).astype(dtype)
        pc_loss = pc_loss + (p * pyconv.tensor(w)).sum()
        th_loss = th_loss + (t * torch.tensor(w)).sum()
    pc_loss.backward()
    th_loss.backward()
    for k, (p, t) in enumerate(zip(pc_leaves, th_leaves)):
        assert_close(p.grad, t.grad.numpy(), atol, rtol, name=f"{name} grad of input {k}")
    pc_params = dict(pc_module.named_parameters())
    for pname, t in th_module.named_parameters():
        assert pc_params[pname].grad is not None, f"{name}: no gradient for {pname}"
        assert_close(pc_params[pname].grad, t.grad.numpy(), atol, rtol, name=f"{name} grad of {pname}")


def _states(cls_name, shape, rng):
    if cls_name.startswith("LSTM"):
        return (rng.standard_normal(shape), rng.standard_normal(shape))
    return rng.standard_normal(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [3, None])
@pytest.mark.parametrize("with_hx", [True, False])
@pytest.mark.parametrize("cls_name, kwargs", CELL_MODULES)
def test_cell_module_matches_torch(cls_name, kwargs, with_hx, batch, dtype):
    torch = require_torch()
    torch.manual_seed(1)
    th = getattr(torch.nn, cls_name)(5, 4, **kwargs).to(_torch_dtype(torch, dtype))
    pc = getattr(nn, cls_name)(5, 4, dtype=dtype, **kwargs)
    _load_from_torch(pc, th)
    rng = np.random.default_rng(2)
    lead = () if batch is None else (batch,)
    hx = _states(cls_name, lead + (4,), rng) if with_hx else None
    _compare_modules(pc, th, [rng.standard_normal(lead + (5,)), hx], dtype, cls_name)


def test_cell_module_errors():
    cell, lstm = nn.RNNCell(3, 4), nn.LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"RNNCell: expected input with 1 .* or 2 .* got 3"):
        cell(pyconv.randn(2, 2, 3))
    with pytest.raises(ValueError, match=r"RNNCell: input has 5 features .* but input_size=3"):
        cell(pyconv.randn(2, 5))
    with pytest.raises(ValueError, match=r"RNNCell: expected hx of shape \(2, 4\), got \(2, 5\)"):
        cell(pyconv.randn(2, 3), pyconv.randn(2, 5))
    with pytest.raises(ValueError, match=r"hx should be 1-D with shape \(4,\), got 2-D"):
        cell(pyconv.randn(3), pyconv.randn(1, 4))
    with pytest.raises(ValueError, match=r"LSTMCell: expected hx\[1\] of shape \(2, 4\)"):
        lstm(pyconv.randn(2, 3), (pyconv.randn(2, 4), pyconv.randn(1, 4)))
    with pytest.raises(TypeError, match=r"LSTMCell: hx must be a pair"):
        lstm(pyconv.randn(2, 3), pyconv.randn(2, 4))
    with pytest.raises(TypeError, match=r"input has dtype float64 but the module's parameters have dtype float32"):
        cell(pyconv.randn(2, 3, dtype=np.float64))
    with pytest.raises(TypeError, match=r"input must be a floating-point tensor"):
        cell(pyconv.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match=r"RNNCell: unknown nonlinearity 'gelu'"):
        nn.RNNCell(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"GRUCell: hidden_size must be >= 1, got 0"):
        nn.GRUCell(3, 0)


# ---------------------------------------------------------------------------------------------
# sequence layers
# ---------------------------------------------------------------------------------------------


def _layer_kwargs(mode, **kwargs):
    """(class name, constructor kwargs) for a mode."""
    if mode.startswith("RNN_"):
        kwargs["nonlinearity"] = mode[4:].lower()
        return "RNN", kwargs
    return mode, kwargs


def _make_layers(mode, dtype, seed=0, **kwargs):
    torch = require_torch()
    cls_name, kwargs = _layer_kwargs(mode, **kwargs)
    torch.manual_seed(seed)
    th = getattr(torch.nn, cls_name)(3, 4, **kwargs).to(_torch_dtype(torch, dtype))
    pc = getattr(nn, cls_name)(3, 4, dtype=dtype, **kwargs)
    _load_from_torch(pc, th)
    return cls_name, pc, th


LAYER_CONFIGS = [
    # (constructor kwargs, input shape, provide initial state)
    ({}, (5, 2, 3), False),
    ({}, (5, 2, 3), True),
    ({"batch_first": True}, (2, 5, 3), True),
    ({"batch_first": True}, (2, 5, 3), False),
    ({"bidirectional": True}, (4, 3, 3), True),
    ({"num_layers": 2}, (4, 2, 3), True),
    ({"num_layers": 2, "bidirectional": True, "batch_first": True}, (3, 4, 3), True),
    ({"num_layers": 2, "bidirectional": True}, (4, 1, 3), False),
    ({"bias": False}, (4, 2, 3), True),
    ({}, (6, 3), True),  # unbatched
    ({"num_layers": 2, "bidirectional": True, "batch_first": True}, (5, 3), False),  # unbatched
    ({}, (1, 1, 3), True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", range(len(LAYER_CONFIGS)))
@pytest.mark.parametrize("mode", MODES)
def test_layer_matches_torch(mode, config, dtype):
    kwargs, shape, with_hx = LAYER_CONFIGS[config]
    cls_name, pc, th = _make_layers(mode, dtype, seed=config, **kwargs)
    rng = np.random.default_rng(config)
    states = pc.num_layers * (2 if pc.bidirectional else 1)
    batch = () if len(shape) == 2 else (shape[0] if pc.batch_first else shape[1],)
    hx = _states(cls_name, (states,) + batch + (4,), rng) if with_hx else None
    _compare_modules(pc, th, [rng.standard_normal(shape), hx], dtype, f"{cls_name} {kwargs}")


@pytest.mark.parametrize("mode", MODES)
def test_layer_gradcheck(mode):
    cls_name, kwargs = _layer_kwargs(mode, num_layers=2, bidirectional=True)
    pyconv.manual_seed(4)
    layer = getattr(nn, cls_name)(2, 2, dtype=np.float64, **kwargs)
    rng = np.random.default_rng(5)
    x = pyconv.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    states = [pyconv.tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
              for _ in range(2 if mode == "LSTM" else 1)]
    params = list(layer.parameters())

    def run(x, *rest):
        hx = tuple(rest[:2]) if mode == "LSTM" else rest[0]
        return layer(x, hx)

    assert gradcheck(run, [x, *states, *params])


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_layer_output_only_loss_matches_torch(mode):
    """Only `output` enters the loss: the last step's h_n (and c_n) get no gradient."""
    torch = require_torch()
    cls_name, pc, th = _make_layers(mode, np.float64, num_layers=2)
    x = np.random.default_rng(1).standard_normal((4, 2, 3))
    px, tx = pyconv.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    pc(px)[0].sum().backward()
    th(tx)[0].sum().backward()
    assert_close(px.grad, tx.grad.numpy(), 1e-9, 1e-7, name="grad of input")
    for name, p in th.named_parameters():
        assert_close(getattr(pc, name).grad, p.grad.numpy(), 1e-9, 1e-7, name=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_dropout_in_eval_mode_matches_torch(mode, dtype):
    cls_name, pc, th = _make_layers(mode, dtype, num_layers=3, dropout=0.5)
    pc.eval()
    th.eval()
    x = np.random.default_rng(2).standard_normal((4, 2, 3))
    _compare_modules(pc, th, [x, None], dtype, f"{cls_name} eval dropout")


@pytest.mark.parametrize("mode", ["RNN_TANH", "LSTM"])
def test_dropout_acts_between_layers_in_training(mode):
    """With p=1 every layer but the first sees zeros and the last layer's output is not
    dropped, whatever the random masks: pyconv must then agree with PyTorch exactly."""
    cls_name, pc, th = _make_layers(mode, np.float64, num_layers=2, dropout=1.0, bidirectional=True)
    assert pc.training and th.training
    x = np.random.default_rng(3).standard_normal((4, 2, 3))
    _compare_modules(pc, th, [x, None], np.float64, f"{cls_name} train dropout=1")


def test_dropout_in_training_changes_deeper_layers_only():
    pyconv.manual_seed(0)
    layer = nn.GRU(3, 4, num_layers=2, dropout=0.5)
    x = pyconv.randn(5, 2, 3)
    _, h_train = layer(x)
    layer.eval()
    _, h_eval = layer(x)
    np.testing.assert_array_equal(h_train.detach().numpy()[0], h_eval.detach().numpy()[0])
    assert not np.allclose(h_train.detach().numpy()[1], h_eval.detach().numpy()[1])


def test_zero_batch_matches_torch():
    torch = require_torch()
    _, pc, th = _make_layers("LSTM", np.float64, bidirectional=True)
    x = np.zeros((3, 0, 3))
    out, (h, c) = pc(pyconv.tensor(x))
    t_out, (t_h, t_c) = th(torch.tensor(x))
    assert out.shape == tuple(t_out.shape) and h.shape == tuple(t_h.shape) == c.shape


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kwargs", [{}, {"bias": False}, {"num_layers": 3, "bidirectional": True}])
def test_state_dict_keys_and_shapes_equal_torch(mode, kwargs):
    _, pc, th = _make_layers(mode, np.float32, **kwargs)
    assert list(pc.state_dict()) == list(th.state_dict())
    assert [p.shape for p in pc.state_dict().values()] == [tuple(p.shape) for p in th.state_dict().values()]
    assert [n for n, _ in pc.named_parameters()] == [n for n, _ in th.named_parameters()]


@pytest.mark.parametrize("cls_name, kwargs", CELL_MODULES)
def test_cell_state_dict_keys_equal_torch(cls_name, kwargs):
    torch = require_torch()
    th, pc = getattr(torch.nn, cls_name)(3, 5, **kwargs), getattr(nn, cls_name)(3, 5, **kwargs)
    assert list(pc.state_dict()) == list(th.state_dict())
    assert [p.shape for p in pc.state_dict().values()] == [tuple(p.shape) for p in th.state_dict().values()]


@pytest.mark.parametrize("cls_name, kwargs", [
    ("RNN", {}), ("RNN", {"nonlinearity": "relu", "num_layers": 2}), ("LSTM", {"batch_first": True}),
    ("LSTM", {"num_layers": 2, "batch_first": True, "bias": False, "dropout": 0.25, "bidirectional": True}),
    ("GRU", {"bidirectional": True}), ("RNNCell", {"nonlinearity": "relu", "bias": False}),
    ("LSTMCell", {}), ("GRUCell", {"bias": False}),
])
def test_repr_matches_torch(cls_name, kwargs):
    torch = require_torch()
    assert repr(getattr(nn, cls_name)(10, 20, **kwargs)) == repr(getattr(torch.nn, cls_name)(10, 20, **kwargs))


@pytest.mark.parametrize("cls_name", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_initialisation_is_uniform_within_inverse_sqrt_hidden(cls_name):
    pyconv.manual_seed(11)
    layer = getattr(nn, cls_name)(8, 16)
    bound = 1 / math.sqrt(16)
    values = np.concatenate([p.detach().numpy().ravel() for p in layer.parameters()])
    assert values.dtype == np.float32
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.95 * bound
    n = values.size  # 5-sigma bounds for the sample mean and variance of U(-b, b)
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
    assert abs(values.var() - bound**2 / 3) < 5 * bound**2 * math.sqrt(4 / 45 / n)
    pyconv.manual_seed(11)
    again = np.concatenate([p.detach().numpy().ravel() for p in getattr(nn, cls_name)(8, 16).parameters()])
    np.testing.assert_array_equal(values, again)


def test_thousand_step_backward_matches_torch():
    """The iterative engine backpropagates a 1000-step sequence without RecursionError."""
    _, pc, th = _make_layers("RNN_TANH", np.float64)
    x = np.random.default_rng(4).standard_normal((1000, 1, 3))
    _compare_modules(pc, th, [x, None], np.float64, "RNN 1000 steps")


def test_layer_under_no_grad_records_nothing():
    layer = nn.LSTM(3, 4, num_layers=2)
    x = pyconv.randn(5, 2, 3)
    out, (h, c) = layer(x)
    with pyconv.no_grad():
        out2, (h2, c2) = layer(x)
    assert out.requires_grad and not out2.requires_grad and not h2.requires_grad
    np.testing.assert_array_equal(out.detach().numpy(), out2.numpy())


def test_layer_errors():
    rnn, lstm = nn.RNN(3, 4, num_layers=2), nn.LSTM(3, 4)
    with pytest.raises(ValueError, match=r"RNN: expected input with 2 .* or 3 .* got 4"):
        rnn(pyconv.randn(5, 2, 3, 1))
    with pytest.raises(ValueError, match=r"RNN: expected input with 2 .* or 3 .* got 1"):
        rnn(pyconv.randn(3))
    with pytest.raises(ValueError, match=r"RNN: input.size\(-1\) must be equal to input_size: expected 3, got 6"):
        rnn(pyconv.randn(5, 2, 6))
    with pytest.raises(ValueError, match=r"RNN: expected hx of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        rnn(pyconv.randn(5, 2, 3), pyconv.randn(1, 2, 4))
    with pytest.raises(ValueError, match=r"RNN: expected hx of shape \(2, 2, 4\), got \(2, 3, 4\)"):
        rnn(pyconv.randn(5, 2, 3), pyconv.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"RNN: for 2-D input, hx should be 2-D .*\(2, 4\), got 3-D"):
        rnn(pyconv.randn(5, 3), pyconv.randn(2, 1, 4))
    with pytest.raises(ValueError, match=r"LSTM: expected hx\[1\] of shape \(1, 2, 4\), got \(1, 2, 5\)"):
        lstm(pyconv.randn(5, 2, 3), (pyconv.randn(1, 2, 4), pyconv.randn(1, 2, 5)))
    with pytest.raises(TypeError, match=r"LSTM: hx must be a pair"):
        lstm(pyconv.randn(5, 2, 3), pyconv.randn(1, 2, 4))
    with pytest.raises(TypeError, match=r"hx has dtype float64 but input has dtype float32"):
        rnn(pyconv.randn(5, 2, 3), pyconv.randn(2, 2, 4, dtype=np.float64))
    with pytest.raises(TypeError, match=r"input has dtype float64 but the module's parameters have dtype float32"):
        rnn(pyconv.randn(5, 2, 3, dtype=np.float64))
    with pytest.raises(TypeError, match=r"input must be a floating-point tensor"):
        rnn(pyconv.zeros(5, 2, 3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"sequence length larger than 0"):
        rnn(pyconv.randn(0, 2, 3))


def test_layer_constructor_errors():
    with pytest.raises(ValueError, match=r"RNN: unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"GRU: dropout should be a number in range \[0, 1\].*1.5"):
        nn.GRU(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match=r"LSTM: hidden_size must be >= 1, got 0"):
        nn.LSTM(3, 0)
    with pytest.raises(TypeError, match=r"LSTM: hidden_size should be of type int, got float"):
        nn.LSTM(3, 2.5)
    with pytest.raises(ValueError, match=r"GRU: num_layers must be >= 1, got 0"):
        nn.GRU(3, 4, num_layers=0)
    with pytest.raises(NotImplementedError, match=r"proj_size"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.warns(UserWarning, match=r"non-zero dropout expects num_layers greater than 1"):
        nn.RNN(3, 4, dropout=0.2)
