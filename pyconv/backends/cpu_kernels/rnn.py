"""Recurrent cells on C++ (csrc/cpu/rnn.cpp): one packed GEMM for the gate pre-activations,
then one fused pointwise pass; backward a fused pass for the gate gradients, then GEMMs.
Shapes as pyconv/backends/contract.py: x (B, I); h, c (B, Hd); w_ih (G*Hd, I); w_hh (G*Hd, Hd);
biases (G*Hd,) or None."""

from __future__ import annotations

from ..._native import _C
from . import ready

__all__ = [
    "gru_cell_backward", "gru_cell_forward", "lstm_cell_backward", "lstm_cell_forward",
    "rnn_relu_cell_backward", "rnn_relu_cell_forward", "rnn_tanh_cell_backward",
    "rnn_tanh_cell_forward",
]


def rnn_tanh_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh):
    return _C.rnn_tanh_cell_forward(ready(x), ready(h), ready(w_ih), ready(w_hh), ready(b_ih),
                                    ready(b_hh))


def rnn_tanh_cell_backward(grad_h_new, x, h, w_ih, w_hh, h_new):
    return _C.rnn_tanh_cell_backward(ready(grad_h_new), ready(x), ready(h), ready(w_ih),
                                     ready(w_hh), ready(h_new))


def rnn_relu_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh):
    return _C.rnn_relu_cell_forward(ready(x), ready(h), ready(w_ih), ready(w_hh), ready(b_ih),
                                    ready(b_hh))


def rnn_relu_cell_backward(grad_h_new, x, h, w_ih, w_hh, h_new):
    return _C.rnn_relu_cell_backward(ready(grad_h_new), ready(x), ready(h), ready(w_ih),
                                     ready(w_hh), ready(h_new))


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh):
    return _C.lstm_cell_forward(ready(x), ready(h), ready(c), ready(w_ih), ready(w_hh),
                                ready(b_ih), ready(b_hh))


def lstm_cell_backward(grad_h_new, grad_c_new, x, h, c, w_ih, w_hh, gates, c_new):
    return _C.lstm_cell_backward(ready(grad_h_new), ready(grad_c_new), ready(x), ready(h),
                                 ready(c), ready(w_ih), ready(w_hh), ready(gates), ready(c_new))


def gru_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh):
    return _C.gru_cell_forward(ready(x), ready(h), ready(w_ih), ready(w_hh), ready(b_ih),
                               ready(b_hh))


def gru_cell_backward(grad_h_new, x, h, w_ih, w_hh, workspace):
    return _C.gru_cell_backward(ready(grad_h_new), ready(x), ready(h), ready(w_ih), ready(w_hh),
                                ready(workspace))
