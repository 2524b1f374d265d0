"""Turn the glue functions ``f(dev, *args)`` into a backend's contract kernels ``f(*args)``."""

from __future__ import annotations

import inspect

from .. import contract
from . import glue_functions


def _bound(glue, dev, contract_fn):
    def kernel(*args, **kwargs):
        return glue(dev, *args, **kwargs)

    kernel.__name__ = kernel.__qualname__ = contract_fn.__name__
    kernel.__doc__ = contract_fn.__doc__
    kernel.__signature__ = inspect.signature(contract_fn)
    kernel.runs_on_reference = False
    return kernel


def _on_reference(reference_fn, to_host, to_device):
    """A contract kernel without CUDA code: run the reference on host copies of the arrays."""

    def kernel(*args, **kwargs):
        args = [to_host(a) for a in args]
        kwargs = {k: to_host(v) for k, v in kwargs.items()}
        return to_device(reference_fn(*args, **kwargs))

    kernel.__name__ = kernel.__qualname__ = reference_fn.__name__
    kernel.__doc__ = reference_fn.__doc__
    kernel.__signature__ = inspect.signature(reference_fn)
    kernel.runs_on_reference = True
    return kernel


def _identity(value):
    return value


def bind_contract(dev, reference, to_host=_identity, to_device=_identity) -> dict:
    """Every contract kernel for a backend on ``dev``: the CUDA glue where a family module
    implements it, else the reference backend's kernel (marked ``runs_on_reference``).

    ``to_host``/``to_device`` move arrays (and tuples of arrays) between the device and NumPy for
    those reference kernels; the emulator needs neither.
    """
    table = glue_functions()
    kernels = {}
    for name in contract.KERNELS:
        contract_fn = getattr(contract, name)
        if name in table:
            kernels[name] = _bound(table[name], dev, contract_fn)
        else:
            kernels[name] = _on_reference(getattr(reference, name), to_host, to_device)
    return kernels
