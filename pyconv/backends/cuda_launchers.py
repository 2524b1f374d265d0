"""The two ways the ``cuda`` backend launches kernels/*.cu on a GPU, on CuPy arrays.

- :class:`CupyDevice`: CuPy ``RawModule`` compiles each kernel file with NVRTC at first use (cached
  on disk by CuPy) for exactly the GPU present.
- :class:`NativeDevice`: the kernels nvcc compiled ahead of time into ``pyconv._cuda`` (setup.py),
  launched by name with ``cudaLaunchKernel``; needs no NVRTC at run time.

Both are :class:`~pyconv.backends.cuda_glue.Device` s, so the same launch glue drives them (and the
SIMT emulator). ``PYCONV_CUDA_LAUNCHER=cupy|native`` picks one; the default is ``cupy`` when NVRTC
loads, else ``native``. Nothing here touches the GPU at import.
"""

from __future__ import annotations

import hashlib
import os

from . import cuda_glue
from .._sources import kernel_path, kernels_dir

__all__ = [
    "CupyDevice", "LAUNCHERS", "NativeDevice", "default_launcher", "make_device", "native_module",
    "nvrtc_error", "nvrtc_options",
]

LAUNCHER_ENV = "PYCONV_CUDA_LAUNCHER"


class _GpuDevice(cuda_glue.Device):
    """A device on CuPy arrays of the current GPU."""

    def __init__(self):
        super().__init__()
        import cupy

        self.xp = cupy
        self.multiprocessors = int(cupy.cuda.Device().attributes["MultiProcessorCount"])
        from .cuda_glue import autotune

        if autotune.enabled_from_environment():
            self.set_autotune(True)

    def label(self) -> str:
        import cupy

        device = cupy.cuda.Device()
        name = cupy.cuda.runtime.getDeviceProperties(device.id)["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        return f"{name} sm_{device.compute_capability}"

    def time_call(self, fn) -> float:
        """Seconds of GPU time between two CUDA events around ``fn``'s launches."""
        import cupy

        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return cupy.cuda.get_elapsed_time(start, end) / 1000.0


def nvrtc_options() -> tuple[str, ...]:
    """NVRTC options for kernels/*.cu.

    CuPy's compile cache is keyed by the source text and the options, not by included files, so a
    hash of the headers goes into the options: editing compat.cuh recompiles every kernel file.
    """
    headers = hashlib.sha256()
    for path in sorted(kernels_dir().glob("*.cuh")):
        headers.update(path.read_bytes())
    return ("-I" + str(kernels_dir()), "--std=c++17", f"-DPYCONV_HEADERS_SHA256={headers.hexdigest()[:16]}")


class CupyDevice(_GpuDevice):
    """kernels/*.cu compiled at run time by CuPy (NVRTC) for the current GPU."""

    name = "cupy"

    def __init__(self):
        super().__init__()
        self._modules = {}

    def _load(self, family, entry):
        module = self._modules.get(family)
        if module is None:
            source = kernel_path(family).read_text()
            module = self._modules[family] = self.xp.RawModule(code=source, options=nvrtc_options())
        return module.get_function(entry)


def _dim3(value, what: str) -> tuple[int, int, int]:
    """CuPy's grid/block forms (an int, or a tuple of 1 to 3 ints) as three ints."""
    dims = (value,) if isinstance(value, int) else tuple(value)
    if not 1 <= len(dims) <= 3:
        raise ValueError(f"{what} must be an int or a tuple of 1 to 3 ints, got {value!r}")
    return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))


class NativeDevice(_GpuDevice):
    """kernels/*.cu compiled ahead of time by nvcc into ``pyconv._cuda``."""

    name = "native"

    def __init__(self):
        super().__init__()
        self._native = native_module()
        self._entries = self._native.entries()

    def _load(self, family, entry):
        if entry not in self._entries:
            raise LookupError(
                f"pyconv._cuda has no kernel {entry} (kernels/{family}.cu): the extension was built "
                f"before the kernel existed; rebuild it (pip install ., or python setup.py build_ext "
                f"--inplace in a checkout)"
            )
        cupy, launch = self.xp, self._native.launch

        def launch_on_current_stream(grid, block, args, shared_mem=0):
            # CuPy's current device and stream, so that the kernel is ordered with CuPy's work
            launch(entry, _dim3(grid, "grid"), _dim3(block, "block"), args, int(shared_mem),
                   cupy.cuda.get_current_stream().ptr, cupy.cuda.runtime.getDevice())

        return launch_on_current_stream


def native_module():
    """``pyconv._cuda``; ImportError saying how to build it when it is missing."""
    try:
        from .. import _cuda
    except ImportError as exc:
        raise ImportError(
            f"pyconv._cuda is not built ({exc}): setup.py builds it when nvcc is found; in a "
            f"checkout run `python setup.py build_ext --inplace`"
        ) from exc
    return _cuda


LAUNCHERS = {"cupy": CupyDevice, "native": NativeDevice}


def nvrtc_error() -> str | None:
    """Why CuPy cannot compile kernels here (None when NVRTC loads)."""
    try:
        import cupy

        cupy.cuda.nvrtc.getVersion()
    except Exception as exc:  # noqa: BLE001 - missing library, broken install, ...
        return f"{type(exc).__name__}: {exc}"
    return None


def default_launcher() -> str:
    """$PYCONV_CUDA_LAUNCHER if set, else ``cupy`` when NVRTC loads, else ``native``."""
    chosen = os.environ.get(LAUNCHER_ENV, "").strip().lower()
    if chosen:
        if chosen not in LAUNCHERS:
            raise ValueError(f"{LAUNCHER_ENV}={chosen!r}: expected one of {sorted(LAUNCHERS)}")
        return chosen
    return "cupy" if nvrtc_error() is None else "native"


def make_device(launcher: str | None = None) -> cuda_glue.Device:
    """A device for ``launcher`` (default: :func:`default_launcher`). Needs a GPU."""
    launcher = launcher or default_launcher()
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown CUDA launcher {launcher!r}: expected one of {sorted(LAUNCHERS)}")
    return LAUNCHERS[launcher]()
