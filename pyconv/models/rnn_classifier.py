"""``rnn_classifier``: an image read row by row as a sequence through an RNN, LSTM or GRU."""

from __future__ import annotations

from .. import nn
from .common import check_common, check_positive_int, model_config
from .registry import register

__all__ = ["RNNClassifier"]

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@register("rnn_classifier", task="classification",
          description="image rows as a sequence through an RNN/LSTM/GRU (hidden 128), "
                      "final hidden state -> linear")
class RNNClassifier(nn.Module):
    """(N, C, H, W) -> (N, num_classes) logits; defaults (N, 1, 28, 28) -> (N, 10).

    The H image rows are the time steps: x -> (H, N, C*W) (each step holds one row of every
    channel) -> ``rnn`` = nn.RNN/LSTM/GRU(C*W, hidden_size, num_layers, bidirectional) ->
    final hidden state of the last layer (N, D*hidden_size), D = 2 if bidirectional else 1
    (for one direction that is the output at the last time step; bidirectional concatenates the
    forward direction's state after the last row and the backward one's after the first) ->
    ``fc`` linear D*hidden_size -> num_classes. The width W is fixed by input_size; the number of
    rows may differ from input_size's H.

    cell: "rnn" (tanh), "lstm" or "gru".
    """

    def __init__(self, in_channels=1, num_classes=10, input_size=(28, 28), cell="lstm",
                 hidden_size=128, num_layers=1, bidirectional=False):
        name = type(self).__name__
        in_channels, num_classes, input_size = check_common(
            name, in_channels, num_classes, input_size)
        if cell not in _CELLS:
            raise ValueError(f"{name}: cell must be one of {', '.join(map(repr, _CELLS))}, "
                             f"got {cell!r}")
        hidden_size = check_positive_int(name, "hidden_size", hidden_size)
        num_layers = check_positive_int(name, "num_layers", num_layers)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"{name}: bidirectional must be a bool, got {bidirectional!r}")
        super().__init__()
        self.rnn = _CELLS[cell](in_channels * input_size[1], hidden_size, num_layers,
                                bidirectional=bidirectional)
        self.fc = nn.Linear((2 if bidirectional else 1) * hidden_size, num_classes)
        self._directions = 2 if bidirectional else 1
        self._row_shape = (in_channels, input_size[1])
        self.config = model_config(self, in_channels=in_channels, num_classes=num_classes,
                                   input_size=input_size, cell=cell, hidden_size=hidden_size,
                                   num_layers=num_layers, bidirectional=bidirectional)

    def forward(self, x):
        if x.ndim != 4 or (x.shape[1], x.shape[3]) != self._row_shape:
            raise ValueError(f"RNNClassifier: expected input (N, {self._row_shape[0]}, H, "
                             f"{self._row_shape[1]}) (in_channels, rows, input_size's W), "
                             f"got {tuple(x.shape)}")
        n, c, h, w = x.shape
        sequence = x.permute(2, 0, 1, 3).reshape(h, n, c * w)
        _, state = self.rnn(sequence)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
        final = h_n[-self._directions:].permute(1, 0, 2).reshape(n, -1)
        return self.fc(final)
