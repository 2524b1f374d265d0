"""PyTorch-named functional API (``import pyconv.functional as F``).

Each function lives in its op family module under :mod:`pyconv.ops`, which validates the
arguments and calls the backend kernels; this module only gathers the public names.
"""

from .ops.activation import gelu, leaky_relu, relu, sigmoid, tanh
from .ops.conv import conv2d, conv_transpose2d
from .ops.dropout import dropout
from .ops.linear import linear
from .ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from .ops.normalization import batch_norm
from .ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .ops.rnn import gru_cell, lstm_cell, rnn_relu_cell, rnn_tanh_cell
from .ops.softmax import log_softmax, softmax

__all__ = [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "conv2d", "conv_transpose2d", "cross_entropy",
    "dropout", "gelu", "gru_cell", "leaky_relu", "linear", "log_softmax", "lstm_cell",
    "max_pool2d", "mse_loss", "nll_loss", "relu", "rnn_relu_cell", "rnn_tanh_cell", "sigmoid",
    "softmax", "tanh",
]
