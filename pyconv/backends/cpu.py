"""The ``cpu`` backend: pyconv's C++ kernels (``pyconv._C``, built from ``csrc/cpu/``) on NumPy
arrays.

The native code reads its arrays in place and rejects anything that is not C-contiguous and
aligned, so every kernel here first makes its inputs so (a copy only when needed). Contract
kernels that have no C++ code yet run on the NumPy reference and carry
``runs_on_reference = True``; the native ones carry ``False``. :data:`REFERENCE_KERNELS` lists
the former.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from .. import _native
from . import contract, numpy_ref

name = "cpu"
device = "cpu"

_C = _native._C

# The kernels below call into _C; check_available verifies the build has them.
NATIVE_KERNELS = (
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
    "linear_forward", "linear_backward_input", "linear_backward_weight",
)


def check_available():
    if _C is None:
        raise RuntimeError(f"pyconv._C is not available: {_native.IMPORT_ERROR}")
    missing = [k for k in NATIVE_KERNELS if not hasattr(_C, k)]
    if missing:
        raise RuntimeError(f"pyconv._C was built without {missing}: rebuild it "
                           f"(python setup.py build_ext --inplace)")


def _ready(a):
    """a as a C-contiguous, aligned array (itself when it already is); None stays None."""
    if a is None:
        return None
    return np.require(a, requirements=("C_CONTIGUOUS", "ALIGNED"))


def _native_kernel(fn):
    """Marks a contract kernel implemented here and checks its parameters match the contract."""
    want = list(inspect.signature(getattr(contract, fn.__name__)).parameters)
    assert list(inspect.signature(fn).parameters) == want, fn.__name__
    fn.__doc__ = getattr(contract, fn.__name__).__doc__
    fn.runs_on_reference = False
    return fn


@_native_kernel
def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    return _C.conv2d_forward(_ready(x), _ready(weight), _ready(bias), tuple(stride), tuple(padding),
                             tuple(dilation), int(groups))


@_native_kernel
def conv2d_backward_input(grad_y, weight, input_shape, stride, padding, dilation, groups):
    return _C.conv2d_backward_input(_ready(grad_y), _ready(weight), tuple(input_shape), tuple(stride),
                                    tuple(padding), tuple(dilation), int(groups))


@_native_kernel
def conv2d_backward_weight(grad_y, x, weight_shape, stride, padding, dilation, groups):
    return _C.conv2d_backward_weight(_ready(grad_y), _ready(x), tuple(weight_shape), tuple(stride),
                                     tuple(padding), tuple(dilation), int(groups))


@_native_kernel
def linear_forward(x, weight, bias):
    return _C.linear_forward(_ready(x), _ready(weight), _ready(bias))


@_native_kernel
def linear_backward_input(grad_y, weight):
    return _C.linear_backward_input(_ready(grad_y), _ready(weight))


@_native_kernel
def linear_backward_weight(grad_y, x):
    return _C.linear_backward_weight(_ready(grad_y), _ready(x))


def _on_reference(reference_fn):
    """A contract kernel without C++ code: the NumPy reference's, marked as such."""

    @functools.wraps(reference_fn)
    def kernel(*args, **kwargs):
        return reference_fn(*args, **kwargs)

    kernel.runs_on_reference = True
    return kernel


for _name in contract.KERNELS:
    if _name not in globals():
        globals()[_name] = _on_reference(getattr(numpy_ref, _name))
del _name

REFERENCE_KERNELS = tuple(sorted(k for k in contract.KERNELS if globals()[k].runs_on_reference))
