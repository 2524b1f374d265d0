"""The SIMT emulator: CUDA kernels compiled with g++ and run on the CPU, one fiber per CUDA thread.

Same calling convention as CuPy::

    mod = pyconv.simt.RawModule(path="kernels/pool.cu")
    f = mod.get_function("max_pool2d_forward_f32")
    f((blocks,), (threads,), (y, x, np.int32(n)), shared_mem=nbytes)

Schedules (``with schedule("random", seed=3):``, ``set_schedule``, ``PYCONV_SIMT_SCHEDULE``) and the
worker count (``set_workers``) are in :mod:`pyconv.simt.settings`. See docs/simt.md.
"""

from .errors import SimtCompileError, SimtError
from .module import Function, RawModule
from .settings import get_schedule, get_workers, schedule, set_schedule, set_workers

__all__ = [
    "Function", "RawModule", "SimtCompileError", "SimtError", "get_schedule", "get_workers", "schedule",
    "set_schedule", "set_workers",
]
