"""pyconv: convolution and RNN kernels behind a small PyTorch-style autograd API.

    import pyconv
    import pyconv.nn as nn
    import pyconv.nn.functional as F      # also available as pyconv.functional
"""

from __future__ import annotations

import numpy as _np

from . import backends
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import (
    arange, empty, eye, from_numpy, full, full_like, linspace, ones, ones_like, rand, rand_like,
    randint, randn, randn_like, randperm, tensor, zeros, zeros_like,
)
from .random import initial_seed, manual_seed
from .tensor import Tensor, device, is_tensor
from ._native import build_info, get_num_threads, set_num_threads
from .ops.math import where
from .ops.shape import cat, split, stack, unbind
from . import cuda, functional, memory, nn, optim  # noqa: E402  (nn/optim import the names above)
from .interop import from_dlpack
from .checkpoint import load, save  # noqa: E402

__version__ = "0.1.0"

float32 = _np.dtype(_np.float32)
float64 = _np.dtype(_np.float64)
float = float32
double = float64
int32 = _np.dtype(_np.int32)
int64 = _np.dtype(_np.int64)
long = int64
uint8 = _np.dtype(_np.uint8)
bool = _np.dtype(_np.bool_)


def exp(input):
    return input.exp()


def log(input):
    return input.log()


def sqrt(input):
    return input.sqrt()


def abs(input):
    return input.abs()


def clamp(input, min=None, max=None):
    return input.clamp(min, max)


def sum(input, dim=None, keepdim=False):
    return input.sum(dim, keepdim)


def mean(input, dim=None, keepdim=False):
    return input.mean(dim, keepdim)


def max(input, dim=None, keepdim=False):
    return input.max(dim, keepdim)


def min(input, dim=None, keepdim=False):
    return input.min(dim, keepdim)


def var(input, dim=None, unbiased=None, keepdim=False, correction=None):
    return input.var(dim, unbiased, keepdim, correction)


def argmax(input, dim=None, keepdim=False):
    return input.argmax(dim, keepdim)


def matmul(input, other):
    return input @ other


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)


def reshape(input, shape):
    return input.reshape(shape)


def transpose(input, dim0, dim1):
    return input.transpose(dim0, dim1)


def permute(input, dims):
    return input.permute(*dims)


def squeeze(input, dim=None):
    return input.squeeze(dim)


def unsqueeze(input, dim):
    return input.unsqueeze(dim)


def relu(input):
    return functional.relu(input)


def sigmoid(input):
    return functional.sigmoid(input)


def tanh(input):
    return functional.tanh(input)


def softmax(input, dim):
    return functional.softmax(input, dim)


def log_softmax(input, dim):
    return functional.log_softmax(input, dim)
