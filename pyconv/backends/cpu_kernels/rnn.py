"""Recurrent cells on C++ (csrc/cpu/rnn.cpp): one packed GEMM for the gate pre-activations,
then one fused pointwise pass; backward a fused pass for the gate gradients, then GEMMs.
Whole sequences (csrc/cpu/rnn_sequence.cpp): the x side of all steps in one GEMM, W_hh packed
once per sequence, per step only h @ W_hh^T and the fused pass.
Shapes as pyconv/backends/contract.py: x (B, I) ((L, B, I) for sequences); h, c (B, Hd);
w_ih (G*Hd, I); w_hh (G*Hd, Hd); biases (G*Hd,) or None."""

from __future__ import annotations

from ..._native import _C
from . import ready

__all__ = [
    "gru_cell_backward", "gru_cell_forward", "lstm_cell_backward", "lstm_cell_forward",
    "rnn_relu_cell_backward", "rnn_relu_cell_forward", "rnn_tanh_cell_backward",
    "rnn_tanh_cell_forward", "gru_sequence_backward", "gru_sequence_forward",
    "lstm_sequence_backward", "lstm_sequence_forward", "rnn_relu_sequence_backward",
    "rnn_relu_sequence_forward", "rnn_tanh_sequence_backward", "rnn_tanh_sequence_forward",
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


def rnn_tanh_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    return _C.rnn_tanh_sequence_forward(ready(x), ready(h0), ready(w_ih), ready(w_hh), ready(b_ih),
                                        ready(b_hh), bool(reverse))


def rnn_tanh_sequence_backward(grad_out, grad_h_n, x, h0, w_ih, w_hh, out, reverse, input_grad):
    return _C.rnn_tanh_sequence_backward(ready(grad_out), ready(grad_h_n), ready(x), ready(h0),
                                         ready(w_ih), ready(w_hh), ready(out), bool(reverse),
                                         bool(input_grad))


def rnn_relu_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    return _C.rnn_relu_sequence_forward(ready(x), ready(h0), ready(w_ih), ready(w_hh), ready(b_ih),
                                        ready(b_hh), bool(reverse))


def rnn_relu_sequence_backward(grad_out, grad_h_n, x, h0, w_ih, w_hh, out, reverse, input_grad):
    return _C.rnn_relu_sequence_backward(ready(grad_out), ready(grad_h_n), ready(x), ready(h0),
                                         ready(w_ih), ready(w_hh), ready(out), bool(reverse),
                                         bool(input_grad))


def lstm_sequence_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    return _C.lstm_sequence_forward(ready(x), ready(h0), ready(c0), ready(w_ih), ready(w_hh),
                                    ready(b_ih), ready(b_hh), bool(reverse))


def lstm_sequence_backward(grad_out, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, out, gates, c_all,
                           reverse, input_grad):
    return _C.lstm_sequence_backward(ready(grad_out), ready(grad_h_n), ready(grad_c_n), ready(x),
                                     ready(h0), ready(c0), ready(w_ih), ready(w_hh), ready(out),
                                     ready(gates), ready(c_all), bool(reverse), bool(input_grad))


def gru_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    return _C.gru_sequence_forward(ready(x), ready(h0), ready(w_ih), ready(w_hh), ready(b_ih),
                                   ready(b_hh), bool(reverse))


def gru_sequence_backward(grad_out, grad_h_n, x, h0, w_ih, w_hh, out, workspace, reverse,
                          input_grad):
    return _C.gru_sequence_backward(ready(grad_out), ready(grad_h_n), ready(x), ready(h0),
                                    ready(w_ih), ready(w_hh), ready(out), ready(workspace),
                                    bool(reverse), bool(input_grad))
