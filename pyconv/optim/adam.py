"""``Adam`` and ``AdamW`` (torch.optim's algorithms, arguments and defaults), incl. amsgrad and
maximize. AdamW is Adam with decoupled weight decay and weight_decay=1e-2 by default."""

from __future__ import annotations

from ..tensor import Tensor, _array_module
from .optimizer import Optimizer, check_hyperparameter

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Per step t (1-based), with g the gradient (negated if maximize):
    Adam: g += weight_decay * param; AdamW (decoupled): param *= 1 - lr * weight_decay;
    m = beta1 * m + (1 - beta1) * g; v = beta2 * v + (1 - beta2) * g**2;
    amsgrad: v_max = max(v_max, v) replaces v below;
    param -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps).

    State per parameter: 'step' (int), 'exp_avg', 'exp_avg_sq', and 'max_exp_avg_sq' (amsgrad).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, options):
        name = type(self).__name__
        for key in ("lr", "eps", "weight_decay"):
            if key in options:
                check_hyperparameter(name, key, options[key])
        if "betas" in options:
            betas = options["betas"]
            if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
            for i, beta in enumerate(betas):
                check_hyperparameter(name, f"betas[{i}]", beta, below=1.0)

    def _update(self, backend, param, group):
        state = self.state[param]
        amsgrad = bool(group["amsgrad"])
        xp = _array_module(param._data)
        if not state:
            state["step"] = 0
            state["exp_avg"] = Tensor._wrap(xp.zeros_like(param._data))
            state["exp_avg_sq"] = Tensor._wrap(xp.zeros_like(param._data))
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = Tensor._wrap(xp.zeros_like(param._data))
        state["step"] += 1
        beta1, beta2 = (float(b) for b in group["betas"])
        backend.adam_step(
            param._data, param.grad._data, state["exp_avg"]._data, state["exp_avg_sq"]._data,
            state["max_exp_avg_sq"]._data if amsgrad else None, state["step"],
            float(group["lr"]), beta1, beta2, float(group["eps"]), float(group["weight_decay"]),
            amsgrad, bool(group["maximize"]), bool(group["decoupled_weight_decay"]),
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (param *= 1 - lr * weight_decay before the Adam update)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
