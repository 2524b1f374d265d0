"""``Parameter``: a leaf tensor that a Module registers as trainable."""

from __future__ import annotations

from ..tensor import Tensor, as_array


class Parameter(Tensor):
    """A tensor that requires grad by default and is collected by ``Module.parameters()``."""

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = []
        super().__init__(data._data if isinstance(data, Tensor) else as_array(data))
        if requires_grad:
            self.requires_grad = True

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
