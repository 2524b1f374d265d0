"""``SGD``: stochastic gradient descent with momentum, dampening, Nesterov momentum, weight decay
and maximize (torch.optim.SGD's algorithm, arguments and defaults)."""

from __future__ import annotations

from ..tensor import Tensor, _array_module
from .optimizer import Optimizer, check_hyperparameter

__all__ = ["SGD"]


class SGD(Optimizer):
    """Per step, with g the gradient: d = (-g if maximize else g) + weight_decay * param; with
    momentum, buf = d on the first step and momentum * buf + (1 - dampening) * d after, and
    d = d + momentum * buf (nesterov) or buf; then param -= lr * d.

    State per parameter: 'momentum_buffer' (only when momentum != 0).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, options):
        for key in ("lr", "momentum", "weight_decay"):
            if key in options:
                check_hyperparameter(type(self).__name__, key, options[key])
        if "dampening" in options:
            check_hyperparameter(type(self).__name__, "dampening", options["dampening"],
                                 minimum=float("-inf"))
        if options.get("nesterov") and (options.get("momentum", 0) <= 0
                                        or options.get("dampening", 0) != 0):
            raise ValueError(
                f"{type(self).__name__}: Nesterov momentum requires a momentum and zero dampening "
                f"(nesterov=True needs momentum > 0 and dampening == 0), got "
                f"momentum={options.get('momentum')}, "
                f"dampening={options.get('dampening')}"
            )

    def _update(self, backend, param, group):
        momentum = float(group["momentum"])
        buffer, first_step = None, False
        if momentum != 0:
            state = self.state[param]
            if "momentum_buffer" not in state:
                zeros = _array_module(param._data).zeros_like(param._data)
                state["momentum_buffer"] = Tensor._wrap(zeros)
                first_step = True
            buffer = state["momentum_buffer"]._data
        backend.sgd_step(param._data, param.grad._data, buffer, float(group["lr"]), momentum,
                         float(group["dampening"]), bool(group["nesterov"]),
                         float(group["weight_decay"]), bool(group["maximize"]), first_step)
