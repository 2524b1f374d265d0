"""kernels/rnn.cu (+ the GEMMs of kernels/gemm.cu) on the SIMT emulator against the NumPy
reference: every cell forward and backward with and without biases, B or Hd = 1; the sequence
kernels forward and reverse, with and without the input gradient; and nn.RNNCell, nn.LSTMCell,
nn.GRUCell, a 2-layer bidirectional nn.RNN, nn.LSTM and nn.GRU on the simt backend."""

import numpy as np
import pytest

import pyconv
import pyconv.nn as nn
from pyconv import backends
from simt_support import ref, require_simt, schedule, simt  # noqa: F401 - ref, schedule, simt are fixtures

pytestmark = require_simt()

DTYPES = [np.float64, np.float32]
TOLERANCES = {np.float64: dict(rtol=1e-11, atol=1e-12), np.float32: dict(rtol=1e-5, atol=2e-5)}
CELLS = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
# (B, I, Hd): B = 1, Hd = 1, and sizes past one 64-wide GEMM tile
SIZES = [(3, 5, 7), (1, 4, 6), (4, 3, 1), (2, 9, 17)]


def _assert_matches(actual, expected, dtype, what=""):
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for k, (a, e) in enumerate(zip(actual, expected)):
            _assert_matches(a, e, dtype, f"{what}[{k}]")
        return
    if expected is None:
        assert actual is None, what
        return
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    np.testing.assert_allclose(actual, expected, err_msg=what, **TOLERANCES[dtype])


def _launched(simt, fn):
    """fn's result and the kernels it launched, without the dtype suffix and with every GEMM
    variant as "gemm"."""
    before = simt.device.launches.copy()
    result = fn()
    names = {name.rsplit("_", 1)[0] for name in simt.device.launches - before}
    return result, {"gemm" if name.startswith("gemm") else name for name in names}


def _weights(rng, cell, batch, inputs, hidden, with_bias, dtype):
    rows = CELLS[cell] * hidden
    arrays = [rng.standard_normal((rows, inputs)), rng.standard_normal((rows, hidden)) * 0.5]
    arrays += [rng.standard_normal(rows), rng.standard_normal(rows)] if with_bias else [None, None]
    return [None if a is None else a.astype(dtype) for a in arrays]


def _states(rng, batch, hidden, dtype, count=2):
    return [rng.standard_normal((batch, hidden)).astype(dtype) for _ in range(count)]


# ----- cells -------------------------------------------------------------------------------------


def _cell_results(backend, cell, x, h, c, weights, grads):
    """(forward outputs, backward outputs) of one cell on ``backend``, the backward fed with the
    reference's saved arrays so that both sides differentiate the same point."""
    w_ih, w_hh, b_ih, b_hh = weights
    forward = getattr(backend, f"{cell}_cell_forward")
    backward = getattr(backend, f"{cell}_cell_backward")
    if cell == "lstm":
        out = forward(x, h, c, *weights)
        return out, (lambda saved: backward(grads[0], grads[1], x, h, c, w_ih, w_hh, saved[2],
                                            saved[1]))
    out = forward(x, h, *weights)
    saved = (lambda s: s[1]) if cell == "gru" else (lambda s: s)
    return out, (lambda s: backward(grads[0], x, h, w_ih, w_hh, saved(s)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_cells_match_the_reference(simt, ref, cell, sizes, with_bias, dtype, schedule):
    batch, inputs, hidden = sizes
    rng = np.random.default_rng(batch * 100 + hidden)
    x = rng.standard_normal((batch, inputs)).astype(dtype)
    h, c = _states(rng, batch, hidden, dtype)
    weights = _weights(rng, cell, batch, inputs, hidden, with_bias, dtype)
    grads = _states(rng, batch, hidden, dtype)
    expected, expected_backward = _cell_results(ref, cell, x, h, c, weights, grads)
    (ours, ours_backward), launched = _launched(
        simt, lambda: _cell_results(simt, cell, x, h, c, weights, grads))
    _assert_matches(ours, expected, dtype, "forward")
    saved = expected
    grads_expected = expected_backward(saved)
    grads_ours, launched_backward = _launched(simt, lambda: ours_backward(saved))
    _assert_matches(grads_ours, grads_expected, dtype, "backward")
    assert launched == {"gemm", f"{cell}_cell_forward"}
    assert {f"{cell}_cell_backward", "bias_column_sum"} <= launched_backward


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_relu_and_saturated_gates_at_extreme_pre_activations(simt, ref, cell):
    # pre-activations of +-1e3: sigmoids of exactly 0 and 1, tanh of +-1, relu cut-offs
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 4)) * 1e3).round()
    h, c = _states(rng, 3, 5, np.float64)
    weights = _weights(rng, cell, 3, 4, 5, True, np.float64)
    grads = _states(rng, 3, 5, np.float64)
    expected, expected_backward = _cell_results(ref, cell, x, h, c, weights, grads)
    ours, ours_backward = _cell_results(simt, cell, x, h, c, weights, grads)
    _assert_matches(ours, expected, np.float64)
    _assert_matches(ours_backward(expected), expected_backward(expected), np.float64)


def test_cell_glue_rejects_mismatched_shapes_and_dtypes(simt):
    x, h = np.ones((2, 3)), np.ones((2, 4))
    w_ih, w_hh = np.ones((16, 3)), np.ones((16, 4))
    with pytest.raises(ValueError, match=r"w_ih has shape \(16, 3\), expected \(12, 3\)"):
        simt.gru_cell_forward(x, h, w_ih, np.ones((12, 4)), None, None)
    with pytest.raises(ValueError, match=r"c has shape \(2, 5\), expected \(2, 4\)"):
        simt.lstm_cell_forward(x, h, np.ones((2, 5)), w_ih, w_hh, None, None)
    with pytest.raises(TypeError, match="b_ih has dtype float32"):
        simt.lstm_cell_forward(x, h, h, w_ih, w_hh, np.ones(16, np.float32), None)
    with pytest.raises(TypeError, match="float32 or float64"):
        simt.rnn_tanh_cell_forward(x.astype(np.int64), h, np.ones((4, 3)), np.ones((4, 4)), None,
                                   None)


# ----- sequence kernels --------------------------------------------------------------------------


def _sequence_case(rng, cell, length, batch, inputs, hidden, with_bias, dtype):
    x = rng.standard_normal((length, batch, inputs)).astype(dtype)
    h0, c0 = _states(rng, batch, hidden, dtype)
    return x, h0, c0, _weights(rng, cell, batch, inputs, hidden, with_bias, dtype)


def _sequence_run(backend, cell, x, h0, c0, weights, reverse, grads, input_grad, saved=None):
    forward = getattr(backend, f"{cell}_sequence_forward")
    backward = getattr(backend, f"{cell}_sequence_backward")
    w_ih, w_hh = weights[:2]
    if cell == "lstm":
        out = forward(x, h0, c0, *weights, reverse)
        s = saved or out
        grad = backward(grads[0], grads[1], grads[2], x, h0, c0, w_ih, w_hh, s[0], s[3], s[4],
                        reverse, input_grad)
    elif cell == "gru":
        out = forward(x, h0, *weights, reverse)
        s = saved or out
        grad = backward(grads[0], grads[1], x, h0, w_ih, w_hh, s[0], s[2], reverse, input_grad)
    else:
        out = forward(x, h0, *weights, reverse)
        s = saved or out
        grad = backward(grads[0], grads[1], x, h0, w_ih, w_hh, s[0], reverse, input_grad)
    return out, grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse, input_grad, with_bias", [(False, True, True),
                                                            (True, True, False),
                                                            (True, False, True)])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_sequences_match_the_reference(simt, ref, cell, reverse, input_grad, with_bias, dtype,
                                       schedule):
    rng = np.random.default_rng(20)
    length, batch, inputs, hidden = 4, 2, 3, 5
    x, h0, c0, weights = _sequence_case(rng, cell, length, batch, inputs, hidden, with_bias, dtype)
    grads = [rng.standard_normal((length, batch, hidden)).astype(dtype),
             *_states(rng, batch, hidden, dtype)]
    expected = _sequence_run(ref, cell, x, h0, c0, weights, reverse, grads, input_grad)
    ours, launched = _launched(simt, lambda: _sequence_run(simt, cell, x, h0, c0, weights,
                                                           reverse, grads, input_grad,
                                                           saved=expected[0]))
    _assert_matches(ours[0], expected[0], dtype, "forward")
    _assert_matches(ours[1], expected[1], dtype, "backward")
    assert {f"{cell}_cell_forward", f"{cell}_cell_backward", "bias_column_sum"} <= launched


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_sequences_of_length_zero_and_one(simt, ref, cell):
    rng = np.random.default_rng(21)
    for length in (0, 1):
        x, h0, c0, weights = _sequence_case(rng, cell, length, 2, 3, 4, True, np.float64)
        grads = [rng.standard_normal((length, 2, 4)), *_states(rng, 2, 4, np.float64)]
        expected = _sequence_run(ref, cell, x, h0, c0, weights, False, grads, True)
        ours = _sequence_run(simt, cell, x, h0, c0, weights, False, grads, True,
                             saved=expected[0])
        _assert_matches(ours[0], expected[0], np.float64, "forward")
        _assert_matches(ours[1], expected[1], np.float64, "backward")


# ----- autograd on the simt backend --------------------------------------------------------------


def _module_results(module, inputs, backend):
    """Outputs, input gradients and parameter gradients of sum(out**2) over the outputs."""
    module.zero_grad()
    tensors = [pyconv.tensor(a, requires_grad=True) for a in inputs]
    with backends.use(backend):
        out = module(*tensors)
        flat = []
        stack = [out]
        while stack:
            item = stack.pop()
            if isinstance(item, tuple):
                stack.extend(item)
            else:
                flat.append(item)
        loss = sum((o * o).sum() for o in flat)
        loss.backward()
    return ([o.detach().numpy() for o in flat] + [t.grad.numpy() for t in tensors]
            + [p.grad.numpy() for p in module.parameters()])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_nn_cells_on_the_simt_backend(simt, name, dtype, schedule):
    rng = np.random.default_rng(30)
    module = getattr(nn, name)(4, 6, dtype=dtype)
    x = rng.standard_normal((3, 4)).astype(dtype)
    expected = _module_results(module, [x], "numpy")
    ours, launched = _launched(simt, lambda: _module_results(module, [x], "simt"))
    for a, e in zip(ours, expected):
        _assert_matches(a, e, dtype)
    kind = {"RNNCell": "rnn_tanh", "LSTMCell": "lstm", "GRUCell": "gru"}[name]
    assert {f"{kind}_cell_forward", f"{kind}_cell_backward", "bias_column_sum"} <= launched
    assert "gemm" in launched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kind, batch_first", [("RNN", "rnn_tanh", False),
                                                     ("LSTM", "lstm", True),
                                                     ("GRU", "gru", False)])
def test_two_layer_bidirectional_layers_on_the_simt_backend(simt, name, kind, batch_first, dtype,
                                                            schedule):
    rng = np.random.default_rng(31)
    module = getattr(nn, name)(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first,
                               dtype=dtype)
    x = rng.standard_normal((2, 5, 3) if batch_first else (5, 2, 3)).astype(dtype)
    expected = _module_results(module, [x], "numpy")
    ours, launched = _launched(simt, lambda: _module_results(module, [x], "simt"))
    for a, e in zip(ours, expected):
        _assert_matches(a, e, dtype)
    assert {f"{kind}_cell_forward", f"{kind}_cell_backward", "bias_column_sum"} <= launched
