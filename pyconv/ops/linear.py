"""``linear``: y = x @ weight.T + bias over any number of leading dimensions."""

from __future__ import annotations

from ..autograd import Function
from .validate import check_float, check_same_dtype


class Linear(Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(x2, weight)
        ctx.lead = lead
        y = ctx.backend.linear_forward(x2, weight, bias)
        return y.reshape(lead + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad_y):
        x2, weight = ctx.saved_arrays
        g2 = grad_y.reshape(-1, weight.shape[0])
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = ctx.backend.linear_backward_input(g2, weight).reshape(ctx.lead + (weight.shape[1],)) if need_x else None
        gw = ctx.backend.linear_backward_weight(g2, x2) if need_w else None
        gb = g2.sum(axis=0) if need_b else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    """input (*, in_features); weight (out_features, in_features); bias (out_features,) or None.
    Returns (*, out_features)."""
    check_float(input, "linear", "input")
    check_same_dtype(input, weight, "linear", "weight")
    check_same_dtype(input, bias, "linear", "bias")
    if weight.ndim != 2:
        raise ValueError(f"linear: expected weight with 2 dimensions (out_features, in_features), "
                         f"got shape {weight.shape}")
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input has {input.shape[-1] if input.ndim else 0} features in its last "
            f"dimension (shape {input.shape}) but weight expects {weight.shape[1]} "
            f"(weight.shape={weight.shape})"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: expected bias of shape ({weight.shape[0]},), got {bias.shape}")
    return Linear.apply(input, weight, bias)
