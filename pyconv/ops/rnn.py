"""Recurrent cells (one time step) with autograd: ``rnn_tanh_cell``, ``rnn_relu_cell``,
``lstm_cell`` and ``gru_cell`` with the signatures and semantics of PyTorch's ``torch._VF``
functions, and the whole-sequence Functions the layers of :mod:`pyconv.nn.rnn` run (one per
layer and direction).

Shapes: input (B, I); h, c (B, Hd); w_ih (G*Hd, I); w_hh (G*Hd, Hd); b_ih, b_hh (G*Hd,) or None
with G = 1 (RNN), 4 (LSTM, gates i, f, g, o) or 3 (GRU, gates r, z, n).
"""

from __future__ import annotations

from ..autograd import Function
from .validate import check_float, check_ndim, check_same_dtype, check_shape

__all__ = [
    "GRUCell", "GRUSequence", "LSTMCell", "LSTMSequence", "RNNReLUCell", "RNNReLUSequence",
    "RNNTanhCell", "RNNTanhSequence", "check_cell_arguments",
    "gru_cell", "lstm_cell", "rnn_relu_cell", "rnn_tanh_cell",
]


def _weight_and_bias_grads(ctx, grads):
    """Drop the gradients (x, h, ..., w_ih, w_hh, b_ih, b_hh) of arguments that need none
    (in particular biases that are None)."""
    return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad))


class _ElmanCell(Function):
    """h' = act(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh); subclasses name the kernels."""

    forward_kernel = backward_kernel = ""

    @classmethod
    def forward(cls, ctx, x, h, w_ih, w_hh, b_ih, b_hh):
        h_new = getattr(ctx.backend, cls.forward_kernel)(x, h, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(x, h, w_ih, w_hh, h_new)
        return h_new

    @classmethod
    def backward(cls, ctx, grad_h_new):
        grads = getattr(ctx.backend, cls.backward_kernel)(grad_h_new, *ctx.saved_arrays)
        return _weight_and_bias_grads(ctx, grads)


class RNNTanhCell(_ElmanCell):
    forward_kernel, backward_kernel = "rnn_tanh_cell_forward", "rnn_tanh_cell_backward"


class RNNReLUCell(_ElmanCell):
    forward_kernel, backward_kernel = "rnn_relu_cell_forward", "rnn_relu_cell_backward"


class LSTMCell(Function):
    """Two differentiable outputs (h', c'); the engine passes zeros for one without gradient."""

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih, b_hh):
        h_new, c_new, gates = ctx.backend.lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(x, h, c, w_ih, w_hh, gates, c_new)
        return h_new, c_new

    @staticmethod
    def backward(ctx, grad_h_new, grad_c_new):
        grads = ctx.backend.lstm_cell_backward(grad_h_new, grad_c_new, *ctx.saved_arrays)
        return _weight_and_bias_grads(ctx, grads)


class GRUCell(Function):
    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih, b_hh):
        h_new, workspace = ctx.backend.gru_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(x, h, w_ih, w_hh, workspace)
        return h_new

    @staticmethod
    def backward(ctx, grad_h_new):
        grads = ctx.backend.gru_cell_backward(grad_h_new, *ctx.saved_arrays)
        return _weight_and_bias_grads(ctx, grads)


# ---------------------------------------------------------------------------------------------
# whole sequences (one layer, one direction): x (L, B, I), states (B, Hd), out (L, B, Hd)
# ---------------------------------------------------------------------------------------------


def _sequence_grads(ctx, grads):
    """The kernel's gradients for (x, states..., w_ih, w_hh, b_ih, b_hh), None for reverse."""
    return _weight_and_bias_grads(ctx, tuple(grads) + (None,))


class _SingleStateSequence(Function):
    """(out, h_n) = the cell over every step of x; subclasses name the kernels. GRU saves its
    workspace too (``saves_workspace``)."""

    forward_kernel = backward_kernel = ""

    @classmethod
    def forward(cls, ctx, x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
        out, h_n, *workspace = getattr(ctx.backend, cls.forward_kernel)(
            x, h0, w_ih, w_hh, b_ih, b_hh, reverse)
        ctx.save_for_backward(x, h0, w_ih, w_hh, out, *workspace)
        ctx.reverse = reverse
        return out, h_n

    @classmethod
    def backward(cls, ctx, grad_out, grad_h_n):
        grads = getattr(ctx.backend, cls.backward_kernel)(
            grad_out, grad_h_n, *ctx.saved_arrays, ctx.reverse, ctx.needs_input_grad[0])
        return _sequence_grads(ctx, grads)


class RNNTanhSequence(_SingleStateSequence):
    forward_kernel, backward_kernel = "rnn_tanh_sequence_forward", "rnn_tanh_sequence_backward"


class RNNReLUSequence(_SingleStateSequence):
    forward_kernel, backward_kernel = "rnn_relu_sequence_forward", "rnn_relu_sequence_backward"


class GRUSequence(_SingleStateSequence):
    forward_kernel, backward_kernel = "gru_sequence_forward", "gru_sequence_backward"


class LSTMSequence(Function):
    """(out, h_n, c_n) = lstm_cell over every step of x."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
        out, h_n, c_n, gates, c_all = ctx.backend.lstm_sequence_forward(
            x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse)
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, out, gates, c_all)
        ctx.reverse = reverse
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, grad_out, grad_h_n, grad_c_n):
        grads = ctx.backend.lstm_sequence_backward(
            grad_out, grad_h_n, grad_c_n, *ctx.saved_arrays, ctx.reverse, ctx.needs_input_grad[0])
        return _sequence_grads(ctx, grads)


# ---------------------------------------------------------------------------------------------
# argument checks and public functions
# ---------------------------------------------------------------------------------------------


def check_cell_arguments(op: str, gates: int, input, hiddens, w_ih, w_hh, b_ih, b_hh):
    """Validate one cell step. ``hiddens`` maps argument names (``"hx"``, ``"hx[0]"``, ...) to
    the hidden-state tensors, each expected (B, Hd) with Hd = w_hh.shape[1]."""
    check_float(input, op, "input")
    check_ndim(input, 2, op, "input", " (batch, input_size)")
    for name, value in (("w_ih", w_ih), ("w_hh", w_hh)):
        check_float(value, op, name)
        check_same_dtype(input, value, op, name)
        check_ndim(value, 2, op, name)
    hidden_size = w_hh.shape[1]
    rows = gates * hidden_size
    if w_hh.shape[0] != rows:
        raise ValueError(
            f"{op}: expected w_hh of shape ({gates}*hidden_size, hidden_size) = {(rows, hidden_size)} "
            f"(hidden_size={hidden_size} from w_hh.shape[1]), got {w_hh.shape}"
        )
    if w_ih.shape[0] != rows:
        raise ValueError(
            f"{op}: expected w_ih with {rows} rows ({gates}*hidden_size, hidden_size={hidden_size}), "
            f"got shape {w_ih.shape}"
        )
    if input.shape[1] != w_ih.shape[1]:
        raise ValueError(
            f"{op}: input has {input.shape[1]} features (input.shape={input.shape}) but w_ih "
            f"expects {w_ih.shape[1]} (w_ih.shape={w_ih.shape})"
        )
    for name, value in (("b_ih", b_ih), ("b_hh", b_hh)):
        check_same_dtype(input, value, op, name)
        check_shape(value, (rows,), op, name)
    for name, value in hiddens.items():
        check_float(value, op, name)
        check_same_dtype(input, value, op, name)
        check_shape(value, (input.shape[0], hidden_size), op, name)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh). input (B, I), hx (B, Hd),
    w_ih (Hd, I), w_hh (Hd, Hd), biases (Hd,) or None. Returns h' (B, Hd)."""
    check_cell_arguments("rnn_tanh_cell", 1, input, {"hx": hx}, w_ih, w_hh, b_ih, b_hh)
    return RNNTanhCell.apply(input, hx, w_ih, w_hh, b_ih, b_hh)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = relu(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh). Shapes as :func:`rnn_tanh_cell`."""
    check_cell_arguments("rnn_relu_cell", 1, input, {"hx": hx}, w_ih, w_hh, b_ih, b_hh)
    return RNNReLUCell.apply(input, hx, w_ih, w_hh, b_ih, b_hh)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step. input (B, I); hx = (h, c), each (B, Hd); w_ih (4Hd, I); w_hh (4Hd, Hd);
    biases (4Hd,) or None. Returns (h', c')."""
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(f"lstm_cell: hx must be a pair (h, c) of tensors, got {type(hx).__name__}"
                        + (f" of length {len(hx)}" if isinstance(hx, (tuple, list)) else ""))
    h, c = hx
    check_cell_arguments("lstm_cell", 4, input, {"hx[0]": h, "hx[1]": c}, w_ih, w_hh, b_ih, b_hh)
    return LSTMCell.apply(input, h, c, w_ih, w_hh, b_ih, b_hh)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step. input (B, I); hx (B, Hd); w_ih (3Hd, I); w_hh (3Hd, Hd); biases (3Hd,) or
    None. Returns h' (B, Hd)."""
    check_cell_arguments("gru_cell", 3, input, {"hx": hx}, w_ih, w_hh, b_ih, b_hh)
    return GRUCell.apply(input, hx, w_ih, w_hh, b_ih, b_hh)
