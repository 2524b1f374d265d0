"""Placeholder: replaced by the op family's implementation."""


def rnn_tanh_cell(*args, **kwargs):
    raise NotImplementedError("rnn_tanh_cell")


def rnn_relu_cell(*args, **kwargs):
    raise NotImplementedError("rnn_relu_cell")


def lstm_cell(*args, **kwargs):
    raise NotImplementedError("lstm_cell")


def gru_cell(*args, **kwargs):
    raise NotImplementedError("gru_cell")

