"""Reference linear layer (GEMM) kernels."""

from __future__ import annotations

__all__ = ["linear_backward_input", "linear_backward_weight", "linear_forward"]


def linear_forward(x, weight, bias):
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_backward_input(grad_y, weight):
    return grad_y @ weight


def linear_backward_weight(grad_y, x):
    return grad_y.T @ x
