"""Activation functions: argument checks, then backend kernels with autograd."""

from __future__ import annotations

from ..autograd import Function
from .validate import check_float


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.relu_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_arrays
        return ctx.backend.relu_backward(grad_y, y)


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.negative_slope = negative_slope
        return ctx.backend.leaky_relu_forward(x, negative_slope)

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_arrays
        return ctx.backend.leaky_relu_backward(grad_y, x, ctx.negative_slope), None


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.sigmoid_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_arrays
        return ctx.backend.sigmoid_backward(grad_y, y)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = ctx.backend.tanh_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_arrays
        return ctx.backend.tanh_backward(grad_y, y)


class GELU(Function):
    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        return ctx.backend.gelu_forward(x, approximate)

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_arrays
        return ctx.backend.gelu_backward(grad_y, x, ctx.approximate), None


def relu(input, inplace: bool = False):
    """max(input, 0). ``inplace`` is accepted for PyTorch compatibility; pyconv returns a new tensor."""
    return ReLU.apply(check_float(input, "relu", "input"))


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    check_float(input, "leaky_relu", "input")
    return LeakyReLU.apply(input, float(negative_slope))


def sigmoid(input):
    return Sigmoid.apply(check_float(input, "sigmoid", "input"))


def tanh(input):
    return Tanh.apply(check_float(input, "tanh", "input"))


def gelu(input, approximate: str = "none"):
    check_float(input, "gelu", "input")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(input, approximate)
