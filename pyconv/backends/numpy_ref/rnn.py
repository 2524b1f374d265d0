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
    "rnn_tanh_cell_forward",
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
