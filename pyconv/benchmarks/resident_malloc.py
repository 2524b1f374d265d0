"""Keep freed heap memory resident for the other libraries in a benchmark (glibc ``mallopt``).

pyconv's cpu kernels take large outputs from a pool of recycled blocks (pyconv.memory), so in a
loop their outputs never page-fault. PyTorch's and NumPy's arrays come from glibc malloc, which
maps allocations above its (dynamic) mmap threshold freshly and trims freed heap back to the
kernel; depending on the allocation history, the same PyTorch call then runs fast or pays ~2.3 µs
per 4 KiB page of output (e.g. 2.5 vs 8 ms for the MNIST first layer). To compare with PyTorch
at its best rather than at the mercy of that history, ``pyconv bench`` by default raises the mmap
threshold to glibc's maximum (32 MiB on 64-bit) and the trim threshold to 1 GiB, so their freed
blocks below 32 MiB are reused resident. Outputs above 32 MiB still page-fault in PyTorch (glibc
cannot heap-allocate them), which the report states.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc's malloc.h parameter numbers
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc: 4 * 1024 * 1024 * sizeof(long) on 64-bit
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory_resident() -> str:
    """Applies the setting to this process; returns a one-line note for the report."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return "malloc: left at its defaults (no glibc mallopt here)"
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    if not ok:
        return "malloc: left at its defaults (mallopt refused the thresholds)"
    return ("malloc: freed blocks below 32 MiB stay resident for PyTorch and NumPy too "
            "(mallopt M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=1 GiB; --malloc default turns "
            "this off); larger outputs still page-fault outside pyconv's output pool")
