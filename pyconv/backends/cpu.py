"""The ``cpu`` backend: pyconv's C++ kernels (``pyconv._C``, built from ``csrc/cpu/``) on NumPy
arrays.

The kernels live in :mod:`pyconv.backends.cpu_kernels`, one module per family. Contract kernels
that have no C++ code yet run on the NumPy reference and carry ``runs_on_reference = True``; the
native ones carry ``False``. :data:`REFERENCE_KERNELS` lists the former.
"""

from __future__ import annotations

import functools

from .. import _native
from . import contract, numpy_ref

name = "cpu"


def check_available():
    if _native._C is None:
        raise RuntimeError(f"pyconv._C is not available: {_native.IMPORT_ERROR}")
    from .cpu_kernels import native_kernels

    missing = [k for k in native_kernels() if not hasattr(_native._C, k)]
    if missing:
        raise RuntimeError(f"pyconv._C was built without {missing}: rebuild it "
                           f"(pip install . or python setup.py build_ext --inplace)")


def _mark(fn, runs_on_reference):
    @functools.wraps(fn)
    def kernel(*args, **kwargs):
        return fn(*args, **kwargs)

    kernel.__doc__ = getattr(contract, fn.__name__).__doc__
    kernel.runs_on_reference = runs_on_reference
    return kernel


def _bind():
    kernels = {}
    native = {}
    if _native._C is not None:
        from .cpu_kernels import native_kernels

        native = native_kernels()
    for kernel_name in contract.KERNELS:
        if kernel_name in native:
            kernels[kernel_name] = _mark(native[kernel_name], False)
        else:
            kernels[kernel_name] = _mark(getattr(numpy_ref, kernel_name), True)
    return kernels


globals().update(_bind())
REFERENCE_KERNELS = tuple(sorted(k for k in contract.KERNELS if globals()[k].runs_on_reference))
