"""The ``cuda`` backend: pyconv's CUDA kernels (``kernels/*.cu``) on an NVIDIA GPU, on CuPy arrays.

Kernels launch through the launch glue shared with the ``simt`` backend
(:mod:`pyconv.backends.cuda_glue`) on a device from :mod:`pyconv.backends.cuda_launchers`: CuPy
``RawModule`` (NVRTC at run time) or the nvcc-built ``pyconv._cuda``, chosen by
``PYCONV_CUDA_LAUNCHER``. Contract kernels without CUDA code (:data:`REFERENCE_KERNELS`) run on
the NumPy reference on host copies of their arguments; what such a kernel updates in place is
copied back to the GPU.

Without CuPy, a driver or a GPU this module still imports, defines no kernels, and
:func:`check_available` raises RuntimeError saying why.
"""

from __future__ import annotations

import functools

from . import numpy_ref
from .cuda_glue.binding import bind_contract
from .cuda_launchers import make_device

name = "cuda"


def unavailable_reason() -> str | None:
    """Why CUDA kernels cannot run here, or None. Never raises, never crashes without a GPU."""
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001 - ImportError, or a CuPy that fails to load its libraries
        return (f"CuPy is not importable ({type(exc).__name__}: {exc}): install cupy-cuda13x "
                f"(or the cupy-cuda12x wheel matching your CUDA driver)")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CUDARuntimeError: cudaErrorInsufficientDriver, NoDevice ...
        return f"no CUDA GPU: {exc}"
    if count == 0:
        return "no CUDA GPU: the CUDA driver reports 0 devices"
    return None


def to_host(value):
    """CuPy arrays (also inside tuples and lists) as NumPy arrays; anything else unchanged."""
    if isinstance(value, (tuple, list)):
        return type(value)(to_host(v) for v in value)
    if type(value).__module__.startswith("cupy"):
        return value.get()
    return value


def to_device(value):
    """NumPy arrays (also inside tuples and lists) as CuPy arrays; anything else unchanged."""
    import cupy
    import numpy

    if isinstance(value, (tuple, list)):
        return type(value)(to_device(v) for v in value)
    if isinstance(value, numpy.ndarray):
        return cupy.asarray(value)
    return value


def _on_host_copies(reference, bound):
    """``reference`` run on host copies of its CuPy arguments, with the result moved to the GPU
    and in-place updates (optimizer steps, batch-norm running statistics) copied back into the
    caller's GPU arrays; named and documented like ``bound``, bind_contract's stand-in."""

    @functools.wraps(bound)
    def run(*args, **kwargs):
        copies = []

        def host(value):
            if type(value).__module__.startswith("cupy"):
                array = value.get()
                copies.append((value, array, array.tobytes()))
                return array
            return value

        out = reference(*[host(a) for a in args], **{k: host(v) for k, v in kwargs.items()})
        for device_array, array, before in copies:
            if array.tobytes() != before:
                device_array[...] = to_device(array)
        return to_device(out)

    run.runs_on_reference = True
    return run


def bind_kernels(device) -> dict:
    """Every contract kernel on ``device`` (a launcher's device): what this module exports for
    its own device; tests call it to run the launchers side by side."""
    kernels = bind_contract(device, numpy_ref)
    for kernel_name, kernel in kernels.items():
        if kernel.runs_on_reference:
            kernels[kernel_name] = _on_host_copies(getattr(numpy_ref, kernel_name), kernel)
    return kernels


_REASON = unavailable_reason()
device = None
if _REASON is None:
    try:
        device = make_device()
    except Exception as exc:  # noqa: BLE001 - e.g. PYCONV_CUDA_LAUNCHER=native without pyconv._cuda
        _REASON = f"cannot set up the CUDA launcher: {type(exc).__name__}: {exc}"
if device is not None:
    globals().update(bind_kernels(device))
REFERENCE_KERNELS = tuple(sorted(n for n, f in globals().items() if getattr(f, "runs_on_reference", False)))


def check_available():
    if _REASON is not None:
        raise RuntimeError(_REASON)


def launcher_name() -> str | None:
    """The launcher this backend uses (``cupy`` or ``native``), None when it is unavailable."""
    return device.name if device is not None else None

