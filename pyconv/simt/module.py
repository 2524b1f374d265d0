"""``RawModule`` / ``Function``: CuPy's kernel-calling convention on top of the emulator.

``f(grid, block, args, shared_mem=0)`` checks every argument against the kernel's C++ parameter
types (exact NumPy scalar widths, C-contiguous arrays of the pointee's dtype, writeable arrays for
non-const pointers) and the launch against a GPU's limits, then runs the grid with the GIL
released. Failures inside the kernel raise :class:`SimtError`.
"""

from __future__ import annotations

import ctypes
import operator
from pathlib import Path

import numpy as np

from . import build, settings
from .errors import SimtError

MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK = (1024, 1024, 64)
MAX_GRID = (2**31 - 1, 65535, 65535)
DEFAULT_MAX_DYNAMIC_SMEM = 48 * 1024
OPT_IN_MAX_DYNAMIC_SMEM = 227 * 1024

# type code -> (C spelling, NumPy dtypes a pointer accepts, ctypes type of a scalar)
_TYPES = {
    "f32": ("float", (np.float32,), ctypes.c_float),
    "f64": ("double", (np.float64,), ctypes.c_double),
    "i8": ("signed char", (np.int8,), ctypes.c_int8),
    "u8": ("unsigned char", (np.uint8, np.bool_), ctypes.c_uint8),
    "b8": ("bool", (np.bool_, np.uint8), ctypes.c_bool),
    "i16": ("short", (np.int16,), ctypes.c_int16),
    "u16": ("unsigned short", (np.uint16,), ctypes.c_uint16),
    "i32": ("int", (np.int32,), ctypes.c_int32),
    "u32": ("unsigned int", (np.uint32,), ctypes.c_uint32),
    "i64": ("long long", (np.int64,), ctypes.c_int64),
    "u64": ("unsigned long long", (np.uint64,), ctypes.c_uint64),
}
# vector pointee -> (C spelling, element dtype, required byte alignment)
_VECTORS = {
    "f32x2": ("float2", np.float32, 8), "f32x3": ("float3", np.float32, 4), "f32x4": ("float4", np.float32, 16),
    "f64x2": ("double2", np.float64, 16), "f64x4": ("double4", np.float64, 16),
    "i32x2": ("int2", np.int32, 8), "i32x4": ("int4", np.int32, 16), "u32x2": ("uint2", np.uint32, 8),
    "u32x4": ("uint4", np.uint32, 16), "i64x2": ("longlong2", np.int64, 16), "u8x4": ("uchar4", np.uint8, 4),
    "i8x4": ("char4", np.int8, 4),
}
_SCHEDULE_CODES = settings.SCHEDULE_KINDS


def _c_type(kind: str, code: str) -> str:
    if code in _VECTORS:
        base = _VECTORS[code][0]
    elif code == "void":
        base = "void"
    else:
        base = _TYPES[code][0] if code in _TYPES else "<unsupported type>"
    if kind == "s":
        return base
    return f"const {base}*" if kind == "cp" else f"{base}*"


def _dims(value, what: str, limits: tuple[int, int, int], kernel: str) -> tuple[int, int, int]:
    items = value if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(items) <= 3:
        raise TypeError(f"{kernel}: {what} must be an int or a tuple of 1 to 3 ints, got {value!r}")
    dims = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise TypeError(f"{kernel}: {what} must hold ints, got {value!r}")
        try:
            dims.append(operator.index(item))
        except TypeError:
            raise TypeError(f"{kernel}: {what} must be an int or a tuple of 1 to 3 ints, got {value!r}") from None
    if any(d < 1 for d in dims):
        raise ValueError(f"{kernel}: {what} dimensions must be positive, got {value!r}")
    dims += [1] * (3 - len(dims))
    for axis, (d, limit) in enumerate(zip(dims, limits)):
        if d > limit:
            raise SimtError(f"{kernel}: {what}.{'xyz'[axis]} = {d} exceeds the device limit {limit}")
    return dims[0], dims[1], dims[2]


class Function:
    """One kernel entry point; call it like a CuPy ``RawKernel``."""

    def __init__(self, library: build.Library, index: int):
        self._library = library
        self._index = index
        self.name = library.names[index]
        self.params = library.signatures[index]
        source = library.sources.get(self.name)
        self.launch_bounds = source.launch_bounds if source else None
        names = source.param_names if source else ()
        self.param_names = names if len(names) == len(self.params) else tuple(f"arg{i}" for i in range(len(self.params)))
        self._max_dynamic_smem = DEFAULT_MAX_DYNAMIC_SMEM

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        """Dynamic shared memory a launch may request (48 KiB unless raised, at most 227 KiB)."""
        return self._max_dynamic_smem

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, n: int) -> None:
        n = operator.index(n)
        if not 0 <= n <= OPT_IN_MAX_DYNAMIC_SMEM:
            raise SimtError(f"{self.name}: max_dynamic_shared_size_bytes {n} is outside [0, {OPT_IN_MAX_DYNAMIC_SMEM}]")
        self._max_dynamic_smem = n

    def __repr__(self) -> str:
        params = ", ".join(f"{_c_type(k, c)} {n}" for (k, c), n in zip(self.params, self.param_names))
        return f"<pyconv.simt.Function {self.name}({params})>"

    def _describe(self, i: int) -> str:
        kind, code = self.params[i]
        return f"{self.name}: argument {i} ({_c_type(kind, code)} {self.param_names[i]})"

    def _pointer(self, i: int, value) -> ctypes.c_void_p:
        kind, code = self.params[i]
        if type(value) is np.ndarray and code in _TYPES and value.dtype.type is _TYPES[code][1][0] and (
            value.flags.c_contiguous and (kind == "cp" or value.flags.writeable)
        ):
            return ctypes.c_void_p(value.ctypes.data)  # the common case, checked without building messages
        where = self._describe(i)
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{where}: expected a C-contiguous numpy.ndarray, got {type(value).__name__}")
        if code in _VECTORS:
            _, dtype, alignment = _VECTORS[code]
            allowed = (dtype,)
        elif code == "void":
            allowed, alignment = None, 1
        elif code in _TYPES:
            allowed, alignment = _TYPES[code][1], 1
        else:
            raise TypeError(f"{where}: the emulator cannot pass arrays to this parameter type")
        if allowed is not None and value.dtype.type not in allowed:
            names = " or ".join(np.dtype(t).name for t in allowed)
            raise TypeError(f"{where}: expected an array of dtype {names}, got {value.dtype}")
        if not value.flags.c_contiguous:
            raise ValueError(f"{where}: the array must be C-contiguous (use numpy.ascontiguousarray)")
        if kind == "p" and not value.flags.writeable:
            raise ValueError(f"{where}: the kernel writes through this pointer but the array is read-only")
        address = value.ctypes.data
        if address % alignment:
            raise ValueError(f"{where}: the array's address is not {alignment}-byte aligned")
        return ctypes.c_void_p(address)

    def _scalar(self, i: int, value):
        _, code = self.params[i]
        if code not in _TYPES:
            raise TypeError(f"{self._describe(i)}: the emulator cannot pass this parameter type")
        _, dtypes, ctype = _TYPES[code]
        want = dtypes[0]
        if not isinstance(value, np.generic) or value.dtype != np.dtype(want):
            where = self._describe(i)
            got = f"numpy.{value.dtype}" if isinstance(value, np.generic) else f"Python {type(value).__name__}"
            raise TypeError(
                f"{where}: expected a numpy.{np.dtype(want).name} scalar (exact width, as CuPy requires), "
                f"got {got} {value!r}; wrap it as numpy.{np.dtype(want).name}(...)"
            )
        return ctype(value.item())

    def __call__(self, grid, block, args, *, shared_mem=0) -> None:
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"{self.name}: args must be a tuple or list, got {type(args).__name__}")
        if len(args) != len(self.params):
            raise TypeError(f"{self.name}: expected {len(self.params)} arguments, got {len(args)}")
        grid3 = _dims(grid, "grid", MAX_GRID, self.name)
        block3 = _dims(block, "block", MAX_BLOCK, self.name)
        threads = block3[0] * block3[1] * block3[2]
        if threads > MAX_THREADS_PER_BLOCK:
            raise SimtError(f"{self.name}: a block of {threads} threads exceeds the device limit of 1024")
        if self.launch_bounds is not None and threads > self.launch_bounds:
            raise SimtError(f"{self.name}: a block of {threads} threads exceeds the kernel's "
                            f"__launch_bounds__({self.launch_bounds})")
        if isinstance(shared_mem, (bool, np.bool_)):
            raise TypeError(f"{self.name}: shared_mem must be an int")
        shared_mem = operator.index(shared_mem)
        if shared_mem < 0:
            raise ValueError(f"{self.name}: shared_mem must be >= 0, got {shared_mem}")
        if shared_mem > self._max_dynamic_smem:
            raise SimtError(
                f"{self.name}: {shared_mem} bytes of dynamic shared memory exceed the limit of "
                f"{self._max_dynamic_smem} (raise Function.max_dynamic_shared_size_bytes, at most "
                f"{OPT_IN_MAX_DYNAMIC_SMEM}, to opt in)"
            )
        holders = [
            self._scalar(i, a) if kind == "s" else self._pointer(i, a)
            for i, (a, (kind, _)) in enumerate(zip(args, self.params))
        ]
        pointers = (ctypes.c_void_p * max(1, len(holders)))(*[ctypes.addressof(h) for h in holders])
        kind, seed = settings.get_schedule()
        lib = self._library.handle
        failed = lib.pyconv_simt_launch(
            self._index, (ctypes.c_uint * 3)(*grid3), (ctypes.c_uint * 3)(*block3), shared_mem, pointers,
            _SCHEDULE_CODES[kind], seed, settings.get_workers(),
        )
        if failed:
            raise SimtError(lib.pyconv_simt_last_error().decode(errors="replace"))


class RawModule:
    """A kernel source compiled for the emulator: ``RawModule(code=...)`` or ``RawModule(path=...)``.

    ``options`` are extra g++ flags (``-DNAME=1``, ``-g``, ``-fsanitize=...``); ``name_expressions``
    registers template instantiations (``"scale<float>"``) as entry points, like CuPy's.
    """

    def __init__(self, code: str | None = None, path=None, options=(), name_expressions=None):
        if (code is None) == (path is None):
            raise TypeError("RawModule needs exactly one of code= or path=")
        if isinstance(options, str):
            options = (options,)
        self._library = build.build(source=Path(path) if path is not None else None, code=code, options=options,
                                    name_expressions=name_expressions)
        self._functions: dict[str, Function] = {}

    @property
    def entry_names(self) -> list[str]:
        return list(self._library.names)

    def get_function(self, name: str) -> Function:
        fn = self._functions.get(name)
        if fn is None:
            try:
                index = self._library.names.index(name)
            except ValueError:
                raise KeyError(f"no kernel entry {name!r} in this module; available: {self._library.names}") from None
            fn = self._functions[name] = Function(self._library, index)
        return fn
