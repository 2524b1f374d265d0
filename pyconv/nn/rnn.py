"""Recurrent layers with PyTorch's signatures, parameter names and initialisation: the one-step
cells RNNCell, LSTMCell, GRUCell and the sequence layers RNN, LSTM, GRU.

The sequence layers run one autograd Function per layer and direction over the whole sequence
(:mod:`pyconv.ops.rnn`, kernels ``*_sequence_forward/backward``), so a backend can pack the
weights once per sequence and do the input projections for all steps in one GEMM.
Parameters are ``weight_ih``/``weight_hh``/``bias_ih``/``bias_hh`` for the cells and
``weight_ih_l{k}[_reverse]`` etc. for the layers, registered in PyTorch's order, so converted
PyTorch state_dicts load unchanged. Gate rows: LSTM i, f, g, o; GRU r, z, n.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .. import functional as F
from ..ops import rnn as rnn_ops
from ..ops.shape import cat, stack, unbind
from ..ops.validate import check_float, check_shape
from ..tensor import Tensor, _array_module
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_NONLINEARITY_MODES = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}


# ---------------------------------------------------------------------------------------------
# shared checks and helpers
# ---------------------------------------------------------------------------------------------


def _check_int(op: str, name: str, value, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{op}: {name} should be of type int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")
    return int(value)


def _mode_for(op: str, nonlinearity) -> str:
    if nonlinearity not in _NONLINEARITY_MODES:
        raise ValueError(f"{op}: unknown nonlinearity {nonlinearity!r}; select from 'tanh' or 'relu'")
    return _NONLINEARITY_MODES[nonlinearity]


def _new_parameter(shape, dtype) -> Parameter:
    return Parameter(np.empty(shape, dtype=np.dtype(dtype or np.float32)))


def _reset_uniform(module, hidden_size: int) -> None:
    """PyTorch's recurrent initialisation: every parameter from U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def _check_input_dtype(op: str, input, parameter) -> None:
    check_float(input, op, "input")
    if input.dtype != parameter.dtype:
        raise TypeError(
            f"{op}: input has dtype {input.dtype} but the module's parameters have dtype "
            f"{parameter.dtype}; convert one of them (input.to({parameter.dtype}) or "
            f"module.to({input.dtype}))"
        )


def _check_state(op: str, name: str, state, input, expected_shape) -> None:
    check_float(state, op, name)
    if state.dtype != input.dtype:
        raise TypeError(f"{op}: {name} has dtype {state.dtype} but input has dtype {input.dtype}")
    if state.ndim != len(expected_shape):
        raise ValueError(
            f"{op}: for {input.ndim}-D input, {name} should be {len(expected_shape)}-D with shape "
            f"{tuple(expected_shape)}, got {state.ndim}-D (shape {state.shape})"
        )
    check_shape(state, expected_shape, op, name)


def _state_tuple(op: str, hx, count: int):
    """hx as a tuple of ``count`` states (None stays None); LSTM states come as a pair (h, c)."""
    if hx is None:
        return None
    if count == 1:
        return (hx,)
    if not isinstance(hx, (tuple, list)) or len(hx) != count:
        raise TypeError(f"{op}: hx must be a pair (h_0, c_0) of tensors, got {type(hx).__name__}")
    return tuple(hx)


def _state_names(count: int):
    return ("hx",) if count == 1 else tuple(f"hx[{i}]" for i in range(count))


def _zeros(like: Tensor, shape) -> Tensor:
    return Tensor._wrap(_array_module(like._data).zeros(shape, dtype=like.dtype))


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------


class _CellBase(Module):
    """Parameters weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh (G*H,)."""

    _state_count = 1

    def __init__(self, input_size, hidden_size, bias, mode, device=None, dtype=None):
        super().__init__()
        op = type(self).__name__
        self.input_size = _check_int(op, "input_size", input_size, 0)
        self.hidden_size = _check_int(op, "hidden_size", hidden_size, 1)
        self.bias = bool(bias)
        rows = _GATES[mode] * self.hidden_size
        self.weight_ih = _new_parameter((rows, self.input_size), dtype)
        self.weight_hh = _new_parameter((rows, self.hidden_size), dtype)
        if self.bias:
            self.bias_ih = _new_parameter((rows,), dtype)
            self.bias_hh = _new_parameter((rows,), dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        _reset_uniform(self, self.hidden_size)

    def _prepare(self, input, hx):
        """Validate; returns (input (B, I), states each (B, H), batched)."""
        op = type(self).__name__
        _check_input_dtype(op, input, self.weight_ih)
        if input.ndim not in (1, 2):
            raise ValueError(f"{op}: expected input with 1 (input_size) or 2 (batch, input_size) "
                             f"dimensions, got {input.ndim} (shape {input.shape})")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{op}: input has {input.shape[-1]} features (input.shape={input.shape}) "
                             f"but input_size={self.input_size}")
        batched = input.ndim == 2
        expected = input.shape[:-1] + (self.hidden_size,)
        states = _state_tuple(op, hx, self._state_count)
        if states is None:
            states = tuple(_zeros(input, expected) for _ in range(self._state_count))
        else:
            for name, state in zip(_state_names(self._state_count), states):
                _check_state(op, name, state, input, expected)
        if not batched:
            input = input.unsqueeze(0)
            states = tuple(s.unsqueeze(0) for s in states)
        return input, states, batched

    def _weights(self):
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(_CellBase):
    """h' = tanh or relu(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh).

    forward(input (B, I) or (I,), hx (B, H) or (H,) or None = zeros) -> h' (B, H) or (H,)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        mode = _mode_for("RNNCell", nonlinearity)
        super().__init__(input_size, hidden_size, bias, mode, device, dtype)
        self.nonlinearity = nonlinearity
        self._fn = rnn_ops.RNNTanhCell if mode == "RNN_TANH" else rnn_ops.RNNReLUCell

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, hx)
        h_new = self._fn.apply(x, h, *self._weights())
        return h_new if batched else h_new.squeeze(0)


class LSTMCell(_CellBase):
    """One LSTM step (gates i, f, g, o). forward(input (B, I) or (I,), hx = (h, c) each (B, H)
    or (H,), or None = zeros) -> (h', c')."""

    _state_count = 2

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, "LSTM", device, dtype)

    def forward(self, input, hx=None):
        x, (h, c), batched = self._prepare(input, hx)
        h_new, c_new = rnn_ops.LSTMCell.apply(x, h, c, *self._weights())
        return (h_new, c_new) if batched else (h_new.squeeze(0), c_new.squeeze(0))


class GRUCell(_CellBase):
    """One GRU step (gates r, z, n). forward(input (B, I) or (I,), hx (B, H) or (H,) or None)
    -> h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, "GRU", device, dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, hx)
        h_new = rnn_ops.GRUCell.apply(x, h, *self._weights())
        return h_new if batched else h_new.squeeze(0)


# ---------------------------------------------------------------------------------------------
# sequence layers
# ---------------------------------------------------------------------------------------------


def _lstm_sequence(x, state, weights, reverse):
    out, h_n, c_n = rnn_ops.LSTMSequence.apply(x, state[0], state[1], *weights, reverse)
    return out, (h_n, c_n)


def _single_state_sequence(fn):
    def run(x, state, weights, reverse):
        out, h_n = fn.apply(x, state[0], *weights, reverse)
        return out, (h_n,)

    return run


# Run one layer in one direction over x (L, N, I): (out (L, N, H) in time order, final states).
_SEQUENCES = {
    "RNN_TANH": _single_state_sequence(rnn_ops.RNNTanhSequence),
    "RNN_RELU": _single_state_sequence(rnn_ops.RNNReLUSequence),
    "GRU": _single_state_sequence(rnn_ops.GRUSequence),
    "LSTM": _lstm_sequence,
}


class _RNNBase(Module):
    """Multi-layer, optionally bidirectional recurrent layer; see RNN, LSTM, GRU."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        op = type(self).__name__
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError(f"{op}: dropout should be a number in range [0, 1] representing the "
                             f"probability of an element being zeroed, got {dropout!r}")
        self.mode = mode
        self.input_size = _check_int(op, "input_size", input_size, 0)
        self.hidden_size = _check_int(op, "hidden_size", hidden_size, 1)
        self.num_layers = _check_int(op, "num_layers", num_layers, 1)
        self.proj_size = _check_int(op, "proj_size", proj_size, 0)
        if self.proj_size:
            raise NotImplementedError(f"{op}: proj_size > 0 (LSTM with projections) is not "
                                      f"supported by pyconv, got proj_size={proj_size}")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(
                f"dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}", UserWarning, stacklevel=3)

        rows = _GATES[mode] * self.hidden_size
        directions = 2 if self.bidirectional else 1
        self._all_weights = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {f"weight_ih{suffix}": (rows, layer_input),
                          f"weight_hh{suffix}": (rows, self.hidden_size)}
                if self.bias:
                    shapes.update({f"bias_ih{suffix}": (rows,), f"bias_hh{suffix}": (rows,)})
                for name, shape in shapes.items():
                    setattr(self, name, _new_parameter(shape, dtype))
                self._all_weights.append(list(shapes))
        self._flat_weights_names = [name for names in self._all_weights for name in names]
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        _reset_uniform(self, self.hidden_size)

    def flatten_parameters(self):
        """PyTorch compacts cuDNN weights here; pyconv's weights need nothing."""

    @property
    def all_weights(self):
        """Per layer and direction, the list [weight_ih, weight_hh(, bias_ih, bias_hh)]."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def _state_count(self) -> int:
        return 2 if self.mode == "LSTM" else 1

    def _prepare(self, input, hx):
        """Validate; returns (input (L, N, I), per layer-direction state tuples, batched)."""
        op = type(self).__name__
        _check_input_dtype(op, input, self.weight_ih_l0)
        if input.ndim not in (2, 3):
            layout = "(batch, seq_len, input_size)" if self.batch_first else "(seq_len, batch, input_size)"
            raise ValueError(f"{op}: expected input with 2 (seq_len, input_size) or 3 {layout} "
                             f"dimensions, got {input.ndim} (shape {input.shape})")
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        seq_len, batch, features = input.shape
        if features != self.input_size:
            raise ValueError(f"{op}: input.size(-1) must be equal to input_size: expected "
                             f"{self.input_size}, got {features} (input shape "
                             f"{input.shape if batched else input.squeeze(1).shape})")
        if seq_len == 0:
            raise ValueError(f"{op}: expected a sequence length larger than 0, got input of shape "
                             f"{input.shape if batched else input.squeeze(1).shape}")
        layers_dirs = self.num_layers * (2 if self.bidirectional else 1)
        states = _state_tuple(op, hx, self._state_count)
        if states is None:
            zero = _zeros(input, (batch, self.hidden_size))
            return input, [(zero,) * self._state_count] * layers_dirs, batched
        expected = (layers_dirs, batch, self.hidden_size) if batched else (layers_dirs, self.hidden_size)
        for name, state in zip(_state_names(self._state_count), states):
            _check_state(op, name, state, input if batched else input.squeeze(1), expected)
        if not batched:
            states = tuple(s.unsqueeze(1) for s in states)
        per_state = [unbind(s) for s in states]
        return input, list(zip(*per_state)), batched

    def forward(self, input, hx=None):
        """input (L, N, I), (N, L, I) with batch_first, or unbatched (L, I); hx (D*num_layers,
        N, H) or (D*num_layers, H), a pair of those for LSTM, or None (zeros).

        Returns (output, h_n) — (output, (h_n, c_n)) for LSTM — with output (L, N, D*H)
        ((N, L, D*H) with batch_first, (L, D*H) unbatched) and h_n, c_n shaped like hx."""
        x, initial_states, batched = self._prepare(input, hx)
        run_direction = _SEQUENCES[self.mode]
        directions = 2 if self.bidirectional else 1
        # fetch every parameter once per forward, not once per time step
        weights = [[getattr(self, name) for name in names] + [None] * (4 - len(names))
                   for names in self._all_weights]
        layer_input = x
        final_states = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                out, state = run_direction(layer_input, initial_states[k], weights[k],
                                           direction == 1)
                outputs.append(out)
                final_states.append(state)
            layer_output = outputs[0] if directions == 1 else cat(outputs, dim=2)
            if layer + 1 < self.num_layers:
                if self.dropout > 0 and self.training:
                    layer_output = F.dropout(layer_output, self.dropout, True)
                layer_input = layer_output

        finals = tuple(stack([s[i] for s in final_states]) for i in range(self._state_count))
        if not batched:
            layer_output = layer_output.squeeze(1)
            finals = tuple(s.squeeze(1) for s in finals)
        elif self.batch_first:
            layer_output = layer_output.transpose(0, 1)
        return layer_output, (finals if self.mode == "LSTM" else finals[0])

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(_RNNBase):
    """Elman RNN: h_t = tanh or relu(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh) per layer."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None):
        mode = _mode_for("RNN", nonlinearity)
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    """Multi-layer LSTM (gates i, f, g, o); forward returns (output, (h_n, c_n)).
    ``proj_size`` must be 0 (projections are not implemented)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(_RNNBase):
    """Multi-layer GRU (gates r, z, n with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)
