"""The cpu backend's output pool: recycled memory for large kernel outputs.

A fresh 4 KiB page costs about 2.3 µs to fault in on our machines, so a kernel writing a new
16 MB output pays ~9 ms of page faults before any arithmetic. The C++ kernels therefore carve
outputs of 64 KiB and more from blocks that dead arrays gave back (csrc/cpu/output_pool.cpp),
keeping up to a limit of idle bytes: 1 GiB by default, ``PYCONV_CPU_CACHE_MB`` at start-up, or
:func:`set_cache_limit`. Like ``torch.cuda.empty_cache``, :func:`empty_cache` returns the idle
blocks to the system; arrays in use are never affected.

    >>> pyconv.memory.stats()        # doctest: +SKIP
    {'cached_bytes': ..., 'in_use_bytes': ..., 'limit_bytes': 1073741824, 'hits': ..., 'misses': ...}

Without ``pyconv._C`` there is no pool: :func:`stats` reports zeros and the setters do nothing.
"""

from __future__ import annotations

from ._native import _C

__all__ = ["empty_cache", "set_cache_limit", "stats"]


def stats() -> dict:
    """cached_bytes (idle, kept for reuse), in_use_bytes (owned by live arrays), limit_bytes,
    hits (outputs served from idle blocks) and misses (outputs that needed new memory)."""
    if _C is None:
        return {"cached_bytes": 0, "in_use_bytes": 0, "limit_bytes": 0, "hits": 0, "misses": 0}
    return dict(_C.output_pool_stats())


def set_cache_limit(nbytes: int) -> None:
    """Keep at most ``nbytes`` of idle blocks (0 turns caching off); frees any excess now."""
    if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
        raise ValueError(f"set_cache_limit: nbytes must be an int >= 0, got {nbytes!r}")
    if _C is not None:
        _C.output_pool_set_limit(nbytes)


def empty_cache() -> None:
    """Return every idle block to the system."""
    if _C is not None:
        _C.output_pool_clear()
