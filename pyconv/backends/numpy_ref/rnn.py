"""Reference recurrent cells: Elman RNN (tanh, relu), LSTM and GRU, one time step each.

Every cell does one GEMM for all gates of x (``x @ w_ih.T``) and one for h (``h @ w_hh.T``),
then vectorised pointwise math. Gate orders are PyTorch's: LSTM i, f, g, o; GRU r, z, n.
Shapes: x (B, I); h, c (B, Hd); w_ih (G*Hd, I); w_hh (G*Hd, Hd); biases (G*Hd,) or None, with
G = 1 (RNN), 4 (LSTM) or 3 (GRU). Results keep the inputs' dtype.
"""

from __future__ import annotations

import numpy as np

from .activation import sigmoid_forward

__all__ = [
    "gru_cell_backward", "gru_cell_forward", "lstm_cell_backward", "lstm_cell_forward",
    "rnn_relu_cell_backward", "rnn_relu_cell_forward", "rnn_tanh_cell_backward",
    "rnn_tanh_cell_forward", "gru_sequence_backward", "gru_sequence_forward",
    "lstm_sequence_backward", "lstm_sequence_forward", "rnn_relu_sequence_backward",
    "rnn_relu_sequence_forward", "rnn_tanh_sequence_backward", "rnn_tanh_sequence_forward",
]


def _project(v, w, b):
    """v @ w.T (+ b): (B, K) x (G*Hd, K) -> (B, G*Hd)."""
    y = v @ w.T
    if b is not None:
        y += b
    return y


def _gate_gradients(grad_pre_ih, grad_pre_hh, x, h, w_ih, w_hh):
    """Given the gradients of the x-side (B, G*Hd) and h-side pre-activations, the gradients of
    x, h, w_ih, w_hh, b_ih, b_hh (the h-side pre-activation includes b_hh)."""
    return (
        grad_pre_ih @ w_ih,
        grad_pre_hh @ w_hh,
        grad_pre_ih.T @ x,
        grad_pre_hh.T @ h,
        grad_pre_ih.sum(axis=0),
        grad_pre_hh.sum(axis=0),
    )


# ---------------------------------------------------------------------------------------------
# Elman RNN
# ---------------------------------------------------------------------------------------------


def rnn_tanh_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh):
    """h' = tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh). Returns h' (B, Hd)."""
    pre = _project(x, w_ih, b_ih)
    pre += _project(h, w_hh, b_hh)
    return np.tanh(pre, out=pre)


def rnn_tanh_cell_backward(grad_h_new, x, h, w_ih, w_hh, h_new):
    """Returns (grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    grad_pre = grad_h_new * (1 - h_new * h_new)
    return _gate_gradients(grad_pre, grad_pre, x, h, w_ih, w_hh)


def rnn_relu_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh):
    """h' = relu(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh). Returns h' (B, Hd)."""
    pre = _project(x, w_ih, b_ih)
    pre += _project(h, w_hh, b_hh)
    return np.maximum(pre, 0, out=pre)


def rnn_relu_cell_backward(grad_h_new, x, h, w_ih, w_hh, h_new):
    """Returns (grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh). The derivative at a
    pre-activation of exactly 0 is 0, as PyTorch's."""
    grad_pre = np.where(h_new > 0, grad_h_new, 0).astype(grad_h_new.dtype, copy=False)
    return _gate_gradients(grad_pre, grad_pre, x, h, w_ih, w_hh)


# ---------------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------------


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """[i f g o] = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh; i, f, o = sigmoid, g = tanh;
    c' = f * c + i * g; h' = o * tanh(c').

    Returns (h' (B, Hd), c' (B, Hd), gates (B, 4Hd) = activated [i f g o])."""
    gates = _project(x, w_ih, b_ih)
    gates += _project(h, w_hh, b_hh)
    hd = h.shape[1]
    gates[:, :2 * hd] = sigmoid_forward(gates[:, :2 * hd])
    gates[:, 2 * hd:3 * hd] = np.tanh(gates[:, 2 * hd:3 * hd])
    gates[:, 3 * hd:] = sigmoid_forward(gates[:, 3 * hd:])
    i, f, g, o = (gates[:, k * hd:(k + 1) * hd] for k in range(4))
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return h_new, c_new, gates


def lstm_cell_backward(grad_h_new, grad_c_new, x, h, c, w_ih, w_hh, gates, c_new):
    """Returns (grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    hd = h.shape[1]
    i, f, g, o = (gates[:, k * hd:(k + 1) * hd] for k in range(4))
    tanh_c = np.tanh(c_new)
    grad_c_total = grad_c_new + grad_h_new * o * (1 - tanh_c * tanh_c)
    grad_pre = np.empty_like(gates)
    grad_pre[:, :hd] = grad_c_total * g * i * (1 - i)
    grad_pre[:, hd:2 * hd] = grad_c_total * c * f * (1 - f)
    grad_pre[:, 2 * hd:3 * hd] = grad_c_total * i * (1 - g * g)
    grad_pre[:, 3 * hd:] = grad_h_new * tanh_c * o * (1 - o)
    grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh = _gate_gradients(
        grad_pre, grad_pre, x, h, w_ih, w_hh)
    return grad_x, grad_h, grad_c_total * f, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh


# ---------------------------------------------------------------------------------------------
# GRU
# ---------------------------------------------------------------------------------------------


def gru_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh):
    """r = sigmoid(W_ir x + b_ir + W_hr h + b_hr); z = sigmoid(W_iz x + b_iz + W_hz h + b_hz);
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) * n + z * h.

    Returns (h' (B, Hd), workspace (B, 4Hd) = [r, z, n, W_hn h + b_hn])."""
    hd = h.shape[1]
    pre_ih = _project(x, w_ih, b_ih)
    pre_hh = _project(h, w_hh, b_hh)
    workspace = np.empty((h.shape[0], 4 * hd), dtype=pre_ih.dtype)
    workspace[:, :2 * hd] = sigmoid_forward(pre_ih[:, :2 * hd] + pre_hh[:, :2 * hd])
    workspace[:, 3 * hd:] = pre_hh[:, 2 * hd:]
    r, z = workspace[:, :hd], workspace[:, hd:2 * hd]
    n = np.tanh(pre_ih[:, 2 * hd:] + r * pre_hh[:, 2 * hd:])
    workspace[:, 2 * hd:3 * hd] = n
    h_new = n + z * (h - n)
    return h_new, workspace


def gru_cell_backward(grad_h_new, x, h, w_ih, w_hh, workspace):
    """Returns (grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    hd = h.shape[1]
    r, z, n, hn = (workspace[:, k * hd:(k + 1) * hd] for k in range(4))
    grad_pre_n = grad_h_new * (1 - z) * (1 - n * n)
    grad_pre_ih = np.empty((h.shape[0], 3 * hd), dtype=workspace.dtype)
    grad_pre_ih[:, :hd] = grad_pre_n * hn * r * (1 - r)
    grad_pre_ih[:, hd:2 * hd] = grad_h_new * (h - n) * z * (1 - z)
    grad_pre_ih[:, 2 * hd:] = grad_pre_n
    # r and z see x and h through the same sum; only n's h-side is scaled by r
    grad_pre_hh = grad_pre_ih.copy()
    grad_pre_hh[:, 2 * hd:] = grad_pre_n * r
    grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh = _gate_gradients(
        grad_pre_ih, grad_pre_hh, x, h, w_ih, w_hh)
    return grad_x, grad_h + grad_h_new * z, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh


# ---------------------------------------------------------------------------------------------
# whole sequences, one layer and direction: the cells above, step by step
# ---------------------------------------------------------------------------------------------


def _order(length, reverse):
    """Time steps in processing order."""
    return range(length - 1, -1, -1) if reverse else range(length)


def _previous(t, length, reverse):
    """The step whose state step t starts from, or None for the initial state."""
    p = t + 1 if reverse else t - 1
    return p if 0 <= p < length else None


def _state_before(t, length, reverse, all_states, initial):
    p = _previous(t, length, reverse)
    return initial if p is None else all_states[p]


def _elman_sequence_forward(cell, x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    out = np.empty(x.shape[:2] + (h0.shape[1],), dtype=x.dtype)
    h = h0
    for t in _order(x.shape[0], reverse):
        h = out[t] = cell(x[t], h, w_ih, w_hh, b_ih, b_hh)
    return out, np.array(h, dtype=x.dtype)


def _sequence_backward(cell_backward, grad_out, grad_states, x, initials, w_ih, w_hh, saved,
                       all_states, reverse, input_grad):
    """Steps in reverse processing order; ``grad_states`` are the gradients of the final states
    (h_n, and c_n for LSTM), ``initials`` the initial states, ``saved(t)`` the step's saved
    arrays after (x, states...), ``all_states`` the per-step states (L, B, Hd) each. The weight
    gradients sum in the order autograd would accumulate the per-step ones."""
    length = x.shape[0]
    grad_x = np.empty_like(x) if input_grad else None
    grad_weights = [np.zeros_like(w_ih), np.zeros_like(w_hh),
                    np.zeros(w_ih.shape[0], dtype=x.dtype), np.zeros(w_ih.shape[0], dtype=x.dtype)]
    carry = list(grad_states)
    for t in reversed(_order(length, reverse)):
        states = [_state_before(t, length, reverse, s, s0) for s, s0 in zip(all_states, initials)]
        carry[0] = grad_out[t] + carry[0]
        grads = cell_backward(*carry, x[t], *states, w_ih, w_hh, *saved(t))
        count = len(carry)
        if input_grad:
            grad_x[t] = grads[0]
        carry = list(grads[1:1 + count])
        for acc, g in zip(grad_weights, grads[1 + count:]):
            acc += g
    return (grad_x, *carry, *grad_weights)


def rnn_tanh_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    """rnn_tanh_cell_forward over the steps of x (L, B, I). Returns (out (L, B, Hd), h_n)."""
    return _elman_sequence_forward(rnn_tanh_cell_forward, x, h0, w_ih, w_hh, b_ih, b_hh, reverse)


def rnn_tanh_sequence_backward(grad_out, grad_h_n, x, h0, w_ih, w_hh, out, reverse, input_grad):
    """Returns (grad_x or None, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    return _sequence_backward(rnn_tanh_cell_backward, grad_out, (grad_h_n,), x, (h0,), w_ih,
                              w_hh, lambda t: (out[t],), (out,), reverse, input_grad)


def rnn_relu_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    """rnn_relu_cell_forward over the steps of x (L, B, I). Returns (out (L, B, Hd), h_n)."""
    return _elman_sequence_forward(rnn_relu_cell_forward, x, h0, w_ih, w_hh, b_ih, b_hh, reverse)


def rnn_relu_sequence_backward(grad_out, grad_h_n, x, h0, w_ih, w_hh, out, reverse, input_grad):
    """Returns (grad_x or None, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    return _sequence_backward(rnn_relu_cell_backward, grad_out, (grad_h_n,), x, (h0,), w_ih,
                              w_hh, lambda t: (out[t],), (out,), reverse, input_grad)


def lstm_sequence_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """lstm_cell_forward over the steps of x (L, B, I).
    Returns (out (L, B, Hd), h_n, c_n, gates (L, B, 4Hd), c_all (L, B, Hd))."""
    length, batch = x.shape[:2]
    hd = h0.shape[1]
    out = np.empty((length, batch, hd), dtype=x.dtype)
    c_all = np.empty_like(out)
    gates = np.empty((length, batch, 4 * hd), dtype=x.dtype)
    h, c = h0, c0
    for t in _order(length, reverse):
        h, c, gates[t] = lstm_cell_forward(x[t], h, c, w_ih, w_hh, b_ih, b_hh)
        out[t], c_all[t] = h, c
    return out, np.array(h, dtype=x.dtype), np.array(c, dtype=x.dtype), gates, c_all


def lstm_sequence_backward(grad_out, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, out, gates, c_all,
                           reverse, input_grad):
    """Returns (grad_x or None, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    return _sequence_backward(
        lstm_cell_backward, grad_out, (grad_h_n, grad_c_n), x, (h0, c0), w_ih, w_hh,
        lambda t: (gates[t], c_all[t]), (out, c_all), reverse, input_grad)


def gru_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    """gru_cell_forward over the steps of x (L, B, I).
    Returns (out (L, B, Hd), h_n, workspace (L, B, 4Hd))."""
    length, batch = x.shape[:2]
    hd = h0.shape[1]
    out = np.empty((length, batch, hd), dtype=x.dtype)
    workspace = np.empty((length, batch, 4 * hd), dtype=x.dtype)
    h = h0
    for t in _order(length, reverse):
        h, workspace[t] = gru_cell_forward(x[t], h, w_ih, w_hh, b_ih, b_hh)
        out[t] = h
    return out, np.array(h, dtype=x.dtype), workspace


def gru_sequence_backward(grad_out, grad_h_n, x, h0, w_ih, w_hh, out, workspace, reverse,
                          input_grad):
    """Returns (grad_x or None, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    return _sequence_backward(gru_cell_backward, grad_out, (grad_h_n,), x, (h0,), w_ih, w_hh,
                              lambda t: (workspace[t],), (out,), reverse, input_grad)
