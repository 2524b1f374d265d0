"""Launch glue shared by the ``cuda`` and ``simt`` backends.

For every contract kernel that has a CUDA implementation, a family module here
(``pool.py``, ``softmax.py``, ...) holds one function ``kernel(dev, *contract_args)`` that
checks what protects memory, allocates the outputs with ``dev.xp`` and launches the entry points
of ``kernels/<family>.cu``. Grid and block sizes, argument lists and workspace sizes are computed
here once, so the code that CI runs under the emulator is the code that runs on a GPU. What
differs is only the :class:`Device`:

- ``xp``: ``numpy`` (emulator) or ``cupy`` (GPU);
- ``function(family, entry)``: a callable with CuPy's launch convention
  ``f(grid, block, args, shared_mem=0)``, produced by one of three launchers: the SIMT emulator
  (:mod:`pyconv.simt`), CuPy ``RawModule`` (NVRTC at run time) or ``pyconv._cuda`` (nvcc ahead of
  time).
"""

from __future__ import annotations

import collections
import importlib
import time

import numpy as np

__all__ = [
    "FAMILIES", "Device", "as_contiguous", "ceil_div", "elementwise_grid", "glue_functions",
    "i32", "i64", "in_place_operand", "operand", "real", "suffix",
]

# The kernel families that have CUDA code: cuda_glue/<family>.py launches kernels/<family>.cu.
FAMILIES = ("pool", "softmax", "loss", "activation", "dropout", "normalization", "optim", "conv",
            "linear", "rnn")

_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


class Device:
    """One way of running kernels/*.cu: an array module plus a launcher.

    Subclasses set ``name``, ``xp`` and ``multiprocessors`` (used to size grid-stride grids) and
    implement :meth:`_load` returning a launchable function for ``(family, entry)``.
    """

    name = "abstract"
    xp = np
    multiprocessors = 1
    warp_size = 32
    max_threads_per_block = 1024

    # an autotune.Autotuner when variants are chosen by timing (set_autotune), else None
    autotuner = None

    def __init__(self):
        self._functions = {}
        # entry name -> number of launches; tests use it to prove which kernels ran
        self.launches = collections.Counter()

    def label(self) -> str:
        """The device model, naming its autotune cache file."""
        return self.name

    def time_call(self, fn) -> float:
        """Seconds one call of ``fn`` takes on this device (launches here are synchronous)."""
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def set_autotune(self, enabled: bool, *, timer=None, cache: bool = True, repeats: int = 3):
        """Choose kernel variants per shape by timing them (see :mod:`.autotune`) or not.

        ``timer(fn) -> seconds`` replaces :meth:`time_call`; ``cache=False`` keeps the choices in
        memory only."""
        from . import autotune

        if not enabled:
            self.autotuner = None
            return
        path = autotune.cache_file(self.label()) if cache else None
        self.autotuner = autotune.Autotuner(timer or self.time_call, path, repeats)

    def function(self, family: str, entry: str):
        """The kernel ``entry`` of ``kernels/<family>.cu`` as ``f(grid, block, args, shared_mem=0)``."""
        key = (family, entry)
        fn = self._functions.get(key)
        if fn is None:
            raw = self._load(family, entry)
            launches = self.launches

            def fn(grid, block, args, shared_mem=0, _raw=raw, _entry=entry):
                launches[_entry] += 1
                return _raw(grid, block, args, shared_mem=shared_mem)

            self._functions[key] = fn
        return fn

    def _load(self, family: str, entry: str):  # pragma: no cover - abstract
        raise NotImplementedError


def glue_functions() -> dict:
    """Contract kernel name -> glue function ``f(dev, *contract_args)``, over all families."""
    table = {}
    for family in FAMILIES:
        module = importlib.import_module(f"{__name__}.{family}")
        for name in module.__all__:
            table[name] = getattr(module, name)
    return table


def suffix(dtype) -> str:
    """The entry-point suffix for an element type: ``f32`` or ``f64``; TypeError otherwise."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return "f32"
    if dtype == np.float64:
        return "f64"
    raise TypeError(f"CUDA kernels take float32 or float64 arrays, got {dtype}")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def i32(value, what: str) -> np.int32:
    """``value`` as a kernel ``int`` argument; ValueError naming ``what`` if it does not fit."""
    value = int(value)
    if not -_INT32_MAX - 1 <= value <= _INT32_MAX:
        raise ValueError(f"{what}={value} does not fit the kernel's 32-bit int argument")
    return np.int32(value)


def i64(value, what: str) -> np.int64:
    """``value`` as a kernel ``long long`` argument."""
    value = int(value)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise ValueError(f"{what}={value} does not fit the kernel's 64-bit int argument")
    return np.int64(value)


def real(dtype, value):
    """``value`` as a NumPy scalar of the kernel's element type (float32 or float64)."""
    return np.dtype(dtype).type(value)


def as_contiguous(dev: Device, array):
    """A C-contiguous array of ``dev.xp`` with the same data and shape (no copy when it already
    is one; ``ascontiguousarray`` alone would turn a 0-d array into shape (1,)). NumPy scalars,
    which reductions of 0-d arrays return, become 0-d arrays."""
    array = dev.xp.asarray(array)
    if array.flags.c_contiguous:
        return array
    return dev.xp.ascontiguousarray(array).reshape(array.shape)


def elementwise_grid(dev: Device, n: int, threads: int = 256):
    """``((blocks,), (threads,))`` for a grid-stride loop over ``n`` elements.

    Blocks are capped at 8 per multiprocessor: more only adds scheduling cost, since every
    thread loops over its share of the elements.
    """
    blocks = max(1, min(ceil_div(n, threads), dev.multiprocessors * 8))
    return (blocks,), (threads,)


def in_place_operand(name: str, array, dtype, shape):
    """``array`` itself, checked to be a (shape, dtype) array the kernel can update in place."""
    operand(name, array, dtype, shape)
    flags = array.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name} is updated in place and must be C-contiguous "
                         f"(got strides {array.strides} for shape {array.shape})")
    if not getattr(flags, "writeable", True):  # CuPy arrays have no read-only flag
        raise ValueError(f"{name} is updated in place and must be writeable")
    return array


def operand(name: str, array, dtype, shape):
    """Check that ``array`` has the kernel's element type and the expected shape."""
    if array.dtype != dtype:
        raise TypeError(f"{name} has dtype {array.dtype}, expected {dtype}")
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(array.shape)}, expected {tuple(shape)}")
    return array
