"""The whole-sequence recurrent Functions (pyconv.ops.rnn.*Sequence: one layer and direction per
call, kernels ``*_sequence_forward/backward``) that nn.RNN / nn.LSTM / nn.GRU run: against the
step-by-step composition of the cell Functions (outputs, final states and every gradient) on the
numpy backend and, when built, the cpu backend; against PyTorch's one-layer modules in both
directions; and nn.LSTM on the simt backend (which runs the reference sequence kernels)."""

import numpy as np
import pytest

import pyconv
from pyconv import backends, nn
from pyconv.ops import rnn as rnn_ops
from pyconv.ops.shape import stack
from torch_compare import require_torch

MODES = {  # mode: (sequence Function, cell Function, gates)
    "RNN_TANH": (rnn_ops.RNNTanhSequence, rnn_ops.RNNTanhCell, 1),
    "RNN_RELU": (rnn_ops.RNNReLUSequence, rnn_ops.RNNReLUCell, 1),
    "LSTM": (rnn_ops.LSTMSequence, rnn_ops.LSTMCell, 4),
    "GRU": (rnn_ops.GRUSequence, rnn_ops.GRUCell, 3),
}
BACKENDS = [b for b in ("numpy", "cpu") if b in backends.available()]
# relative to each result's scale (its largest magnitude, at least 1)
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
# (L, B, I, Hd, bias): L = 1, sizes of 1, non-multiples of 8, no bias
SIZES = [(5, 3, 4, 5, True), (1, 2, 3, 4, True), (4, 1, 1, 1, False), (3, 7, 9, 13, False),
         (6, 5, 17, 9, True)]


def _arrays(mode, size, seed):
    """[x (L, B, I), h0 (, c0), w_ih, w_hh, b_ih, b_hh] in float64 (biases None without bias)."""
    length, batch, in_size, hidden, bias = size
    rows = MODES[mode][2] * hidden
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((length, batch, in_size))]
    arrays += [rng.standard_normal((batch, hidden)) for _ in range(2 if mode == "LSTM" else 1)]
    arrays += [rng.standard_normal((rows, in_size)) * 0.5, rng.standard_normal((rows, hidden)) * 0.5]
    arrays += [rng.standard_normal(rows) * 0.5 if bias else None for _ in range(2)]
    return arrays


def _leaves(arrays, dtype):
    return [None if a is None else pyconv.tensor(a.astype(dtype), requires_grad=True) for a in arrays]


def _by_cells(mode, tensors, reverse):
    """The per-step composition: (out (L, B, Hd), final states...)."""
    cell, states = MODES[mode][1], 2 if mode == "LSTM" else 1
    x, state, weights = tensors[0], tuple(tensors[1:1 + states]), tensors[1 + states:]
    outputs = [None] * x.shape[0]
    for t in (reversed(range(x.shape[0])) if reverse else range(x.shape[0])):
        result = cell.apply(x[t], *state, *weights)
        state = result if isinstance(result, tuple) else (result,)
        outputs[t] = state[0]
    return (stack(outputs), *state)


def _by_sequence(mode, tensors, reverse):
    return MODES[mode][0].apply(*tensors, reverse)


def _run(run, mode, arrays, reverse, dtype, backend, upstream):
    """Results and the gradients of every input after one backward of sum(result * upstream)."""
    tensors = _leaves(arrays, dtype)
    with backends.use(backend):
        results = run(mode, tensors, reverse)
        loss = sum((r * pyconv.tensor(u.astype(dtype))).sum() for r, u in zip(results, upstream))
        loss.backward()
    return [r.detach().numpy() for r in results] + [t.grad.numpy() for t in tensors if t is not None]


def _assert_matches(got, want, dtype, what):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == dtype, f"{what} result {k}"
        scale = max(1.0, float(np.abs(w.astype(np.float64)).max(initial=0.0)))
        err = float(np.abs(g.astype(np.float64) - w).max(initial=0.0)) / scale
        assert err <= TOLERANCE[dtype], f"{what} result {k}: relative error {err:.3g}"


def _upstream(mode, size, seed):
    length, batch, _, hidden, _ = size
    rng = np.random.default_rng(seed + 1)
    shapes = [(length, batch, hidden)] + [(batch, hidden)] * (2 if mode == "LSTM" else 1)
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("mode", sorted(MODES))
def test_sequence_matches_the_cells_step_by_step(mode, size, reverse, backend, dtype):
    seed = sum(size[:4]) + 10 * reverse
    arrays, upstream = _arrays(mode, size, seed), _upstream(mode, size, seed)
    want = _run(_by_cells, mode, arrays, reverse, dtype, "numpy", upstream)
    got = _run(_by_sequence, mode, arrays, reverse, dtype, backend, upstream)
    _assert_matches(got, want, dtype, f"{mode} on {backend}")


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_gradient_through_the_final_state_only(mode):
    """No gradient reaches out (the engine passes zeros), only h_n (and c_n)."""
    size = (4, 3, 2, 5, True)
    arrays = _arrays(mode, size, 5)
    upstream = [np.zeros((4, 3, 5))] + _upstream(mode, size, 5)[1:]
    want = _run(_by_cells, mode, arrays, False, np.float64, "numpy", upstream)
    for backend in BACKENDS:
        got = _run(_by_sequence, mode, arrays, False, np.float64, backend, upstream)
        _assert_matches(got, want, np.float64, f"{mode} final state on {backend}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_sequence_matches_torch_one_layer(mode, reverse, backend):
    """One direction against torch's one-layer module (reverse: on the flipped sequence)."""
    torch = require_torch()
    size = (5, 3, 4, 6, True)
    arrays, upstream = _arrays(mode, size, 21), _upstream(mode, size, 21)
    got = _run(_by_sequence, mode, arrays, reverse, np.float64, backend, upstream)
    cls = "RNN" if mode.startswith("RNN") else mode
    kwargs = {"nonlinearity": mode[4:].lower()} if cls == "RNN" else {}
    module = getattr(torch.nn, cls)(4, 6, **kwargs).double()
    states = 2 if mode == "LSTM" else 1
    with torch.no_grad():
        for name, a in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                           arrays[1 + states:]):
            getattr(module, name).copy_(torch.from_numpy(a))
    x, *init = [torch.tensor(a, requires_grad=True) for a in arrays[:1 + states]]
    hx = tuple(s[None] for s in init) if mode == "LSTM" else init[0][None]
    out, finals = module(x.flip(0) if reverse else x, hx)
    out = out.flip(0) if reverse else out
    finals = finals if isinstance(finals, tuple) else (finals,)
    results = [out] + [f[0] for f in finals]
    sum((r * torch.from_numpy(u)).sum() for r, u in zip(results, upstream)).backward()
    want = ([r.detach().numpy() for r in results] + [x.grad.numpy()] + [s.grad.numpy() for s in init]
            + [p.grad.numpy() for p in (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0,
                                        module.bias_hh_l0)])
    _assert_matches(got, want, np.float64, f"{mode} vs torch on {backend}")


def test_lstm_on_the_simt_backend_matches_numpy():
    if "simt" not in backends.available():
        pytest.skip("the simt backend is not available")

    def run(backend):
        pyconv.manual_seed(2)
        layer = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
        x = pyconv.tensor(np.random.default_rng(3).standard_normal((5, 2, 3)), requires_grad=True)
        with backends.use(backend):
            out, (h_n, c_n) = layer(x)
            ((out * out).sum() + h_n.sum() + c_n.sum()).backward()
        return [out.detach().numpy(), h_n.detach().numpy(), c_n.detach().numpy(), x.grad.numpy()] + [
            p.grad.numpy() for p in layer.parameters()]

    _assert_matches(run("simt"), run("numpy"), np.float64, "nn.LSTM on simt")
