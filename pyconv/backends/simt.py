"""The ``simt`` backend: pyconv's CUDA kernels (``kernels/*.cu``) run on the CPU by the SIMT
emulator, on NumPy arrays.

This is how CI executes every CUDA kernel without a GPU: the launch glue
(:mod:`pyconv.backends.cuda_glue`) is the same code the ``cuda`` backend runs, only the device
differs. Contract kernels that have no CUDA code yet are listed in :data:`REFERENCE_KERNELS` and
run on the NumPy reference; nothing else falls back.

``PYCONV_SIMT_OPTIONS`` adds g++ flags to every kernel module this backend builds (for example
``"-g -fsanitize=address"``: the sanitizer job of ``tests/test_simt_kernel_sanitizers.py`` runs
the model kernels this way, in a subprocess with the sanitizer runtime preloaded).
"""

from __future__ import annotations

import os
import shlex
import shutil

from . import cuda_glue, numpy_ref
from .cuda_glue.binding import bind_contract

name = "simt"


class SimtDevice(cuda_glue.Device):
    """kernels/*.cu compiled with g++ against the emulator header, on NumPy arrays."""

    name = "simt"

    def __init__(self):
        super().__init__()
        import numpy

        self.xp = numpy
        # Sizes grid-stride grids like a small GPU so that multi-block paths are exercised.
        self.multiprocessors = max(2, os.cpu_count() or 1)
        self._modules = {}

    def _load(self, family, entry):
        from .. import simt
        from .._sources import kernel_path

        module = self._modules.get(family)
        if module is None:
            options = tuple(shlex.split(os.environ.get("PYCONV_SIMT_OPTIONS", "")))
            module = self._modules[family] = simt.RawModule(path=str(kernel_path(family)),
                                                            options=options)
        return module.get_function(entry)


def check_available():
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"the SIMT emulator needs a C++20 compiler: {compiler!r} was not found")


device = SimtDevice()
globals().update(bind_contract(device, numpy_ref))
REFERENCE_KERNELS = tuple(sorted(n for n, f in globals().items() if getattr(f, "runs_on_reference", False)))
