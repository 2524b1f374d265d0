"""Python side of the cpu backend's C++ kernels: one module per family (``conv.py``,
``linear.py``, ...), each exposing contract kernels (exact contract signatures) that prepare
their arrays and call ``pyconv._C``. :mod:`pyconv.backends.cpu` binds every function listed in a
family module's ``__all__``; contract kernels no family implements run on the NumPy reference.
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np

from .. import contract

__all__ = ["FAMILIES", "native_kernels", "ready"]

# cpu_kernels/<family>.py calls the C++ code of csrc/cpu/<family>.cpp
FAMILIES = ("conv", "linear", "pool", "softmax", "loss", "activation", "dropout", "normalization",
            "optim", "rnn")


def ready(a):
    """``a`` as a C-contiguous, aligned array (itself when it already is); None stays None.
    The C++ side reads arrays in place and rejects anything else."""
    if a is None:
        return None
    # the common case, ~4x cheaper than np.require (NumPy scalars have flags too: not arrays)
    if type(a) is np.ndarray and a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.require(a, requirements=("C_CONTIGUOUS", "ALIGNED"))


def native_kernels() -> dict:
    """Contract kernel name -> native implementation, over all families; each is checked to take
    exactly the contract's parameters."""
    table = {}
    for family in FAMILIES:
        module = importlib.import_module(f"{__name__}.{family}")
        for name in module.__all__:
            fn = getattr(module, name)
            want = list(inspect.signature(getattr(contract, name)).parameters)
            got = list(inspect.signature(fn).parameters)
            if got != want:
                raise TypeError(f"cpu_kernels.{family}.{name}{tuple(got)} differs from the "
                                f"contract {tuple(want)}")
            table[name] = fn
    return table
