"""``Optimizer``: parameter groups, per-parameter state, zero_grad, step and state_dict in
PyTorch's format.

Subclasses give their hyperparameter defaults, check hyperparameters in
``_check_hyperparameters`` and update one parameter in ``_update`` by calling a kernel of the
current backend on raw arrays.
"""

from __future__ import annotations

import copy
import numbers
from collections import defaultdict

import numpy as np

from ..autograd import enable_grad, no_grad, zero_grads
from ..backends import current
from ..tensor import Tensor, _array_module

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyperparameter without default that every parameter group must set."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def check_hyperparameter(owner: str, name: str, value, *, minimum=0.0, below=None):
    """A real number in [minimum, below) (``below=None``: no upper bound); TypeError for
    non-numbers, ValueError naming the argument otherwise. Returns it as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    if value < minimum or (below is not None and value >= below) or value != value:
        bounds = f"in [{minimum}, {below})" if below is not None else f">= {minimum}"
        raise ValueError(f"{owner}: invalid {name} value: expected {bounds}, got {value}")
    return float(value)


def _to_state_value(value, param, key):
    """A loaded state entry as pyconv would have made it: 'step' as an int, arrays (pyconv,
    NumPy or PyTorch tensors) as fresh pyconv tensors of the parameter's dtype and device."""
    if isinstance(value, Tensor):
        value = value._data
    elif hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if key == "step":
        return int(np.asarray(value).item()) if hasattr(value, "shape") else int(value)
    if hasattr(value, "shape"):
        xp = _array_module(param._data)
        array = xp.array(value, dtype=param.dtype if np.dtype(value.dtype).kind == "f" else None,
                         copy=True)
        return Tensor._wrap(array)
    return copy.deepcopy(value)


def _snapshot(value):
    return Tensor._wrap(value._data.copy()) if isinstance(value, Tensor) else copy.deepcopy(value)


class Optimizer:
    """params: an iterable of tensors, or of dicts ``{'params': [...], 'lr': ..., ...}`` (parameter
    groups, each option overriding ``defaults``).

    Attributes: ``defaults``; ``param_groups`` (list of dicts); ``state`` (dict from parameter to
    its state dict, filled lazily by ``step``).
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self._check_hyperparameters(self.defaults)
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or "
                            f"dicts, got a single Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----- hooks for subclasses -----------------------------------------------------------------
    def _check_hyperparameters(self, options: dict) -> None:
        """Raise ValueError/TypeError for invalid values among ``options`` (a group or defaults)."""

    def _update(self, backend, param, group: dict) -> None:  # pragma: no cover - abstract
        """Apply one step to ``param`` (whose grad is not None) with ``group``'s options."""
        raise NotImplementedError

    # ----- groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group ``{'params': tensors, **options}``; missing options come from defaults."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: optimizer parameters need to be organized in ordered "
                            f"collections (a list), got a set")
        elif params is None:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry")
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: optimizer can only optimize Tensors, but one of the "
                                f"params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (shape {p.shape})")
        ids = {id(p) for p in params}
        if len(ids) != len(params):
            raise ValueError(f"{name}: a parameter appears more than once in the parameter group")
        if any(id(p) in ids for p in self._parameters()):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        group["params"] = params
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group didn't specify a value of required "
                                 f"optimization parameter {key}")
            group.setdefault(key, default)
        self._check_hyperparameters(group)
        self.param_groups.append(group)

    def _parameters(self):
        for group in self.param_groups:
            yield from group["params"]

    # ----- training ---------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset gradients: to None (default) or, with set_to_none=False, to zeros in place."""
        zero_grads(self._parameters(), set_to_none)

    def step(self, closure=None):
        """One update of every parameter that has a gradient. ``closure`` (optional) re-evaluates
        the model and returns the loss; it runs with gradients enabled and its result is
        returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        backend = current()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(backend, p, group)
        return loss

    # ----- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}``, PyTorch's
        layout: parameters are numbered in group order. Unlike PyTorch, the state arrays are
        copies, so the snapshot does not change as training continues."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {
            index[id(p)]: {k: _snapshot(v) for k, v in s.items()}
            for p, s in self.state.items() if id(p) in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore from ``state_dict()`` output (pyconv's, or a PyTorch optimizer's of the same
        kind): hyperparameters per group and per-parameter state, matched by position."""
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}: loaded state dict has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}: loaded state dict's parameter group {i} has "
                    f"{len(saved['params'])} parameters, the optimizer's has {len(group['params'])}"
                )
        by_index = {
            i: p
            for saved, group in zip(saved_groups, self.param_groups)
            for i, p in zip(saved["params"], group["params"])
        }
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            restored = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            restored["params"] = group["params"]
            self._check_hyperparameters(restored)
            new_groups.append(restored)
        state = defaultdict(dict)
        for key, values in state_dict["state"].items():
            param = by_index.get(key)
            if param is None:
                state[key] = copy.deepcopy(values)  # not ours: kept as is, as PyTorch does
            else:
                state[param] = {k: _to_state_value(v, param, k) for k, v in values.items()}
        self.param_groups = new_groups
        self.state = state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        return "\n".join(lines) + "\n)"
