"""Placeholder: replaced by the layer family's implementation."""

from .module import Module


class GRU(Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("GRU")


class LSTM(Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("LSTM")


class RNN(Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("RNN")


class GRUCell(Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("GRUCell")


class LSTMCell(Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("LSTMCell")


class RNNCell(Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("RNNCell")
