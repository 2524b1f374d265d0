"""``dropout``: a seeded keep-mask from the backend; the seed comes from pyconv's global
generator, so ``pyconv.manual_seed`` makes masks reproducible."""

from __future__ import annotations

from .. import random as _random
from ..autograd import Function
from .validate import check_float


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p, seed):
        y, mask = ctx.backend.dropout_forward(x, p, seed)
        ctx.save_for_backward(mask)
        ctx.p = p
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (mask,) = ctx.saved_arrays
        return ctx.backend.dropout_backward(grad_y, mask, ctx.p), None, None


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero elements with probability ``p`` and scale the rest by 1/(1-p) when ``training``;
    identity otherwise (and for p == 0)."""
    check_float(input, "dropout", "input")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return Dropout.apply(input, float(p), _random.next_seed())
