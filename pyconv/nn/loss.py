"""Loss layers: thin modules over :mod:`pyconv.ops.loss` with PyTorch's names and defaults.

``weight`` and ``pos_weight`` are registered buffers, as in PyTorch, so they follow ``.to()`` and
appear in ``state_dict`` when given. PyTorch's deprecated ``size_average``/``reduce`` arguments
are not supported; every argument after ``weight`` is keyword-only, so a PyTorch call that passed
them positionally fails loudly instead of binding to the wrong parameter.
"""

from __future__ import annotations

from .. import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """input (C,), (N, C) or (N, C, d1, ...) logits; target int64 class indices (input's shape
    without C) or class probabilities (input's shape). See :func:`pyconv.functional.cross_entropy`."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """input (C,), (N, C) or (N, C, d1, ...) log-probabilities; target int64 (input's shape
    without C). See :func:`pyconv.functional.nll_loss`."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """(input - target)**2, reduced; input and target of one shape."""

    def __init__(self, *, reduction: str = "mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross entropy of probabilities in [0, 1]; weight broadcastable to input."""

    def __init__(self, weight=None, *, reduction: str = "mean"):
        super().__init__(weight, reduction)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross entropy of sigmoid(input), computed stably from logits; weight and
    pos_weight (applied along the last, class, dim) broadcastable to input."""

    def __init__(self, weight=None, *, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
