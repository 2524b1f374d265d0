"""How launches run: the thread schedule inside a block and the number of worker OS threads.

The process-wide schedule comes from ``set_schedule`` or the environment variable
``PYCONV_SIMT_SCHEDULE`` (``inorder``, ``reverse`` or ``random:SEED``); ``with schedule(...)``
overrides it for the current Python thread only. The worker count comes from ``set_workers`` or
``PYCONV_SIMT_WORKERS`` (default: the number of CPU cores).
"""

from __future__ import annotations

import contextlib
import os
import threading

SCHEDULE_KINDS = {"inorder": 0, "reverse": 1, "random": 2}


def parse_schedule(text: str) -> tuple[str, int]:
    """``"random:3"`` -> ``("random", 3)``; ValueError naming the accepted forms otherwise."""
    kind, _, seed = text.strip().partition(":")
    kind = kind.lower()
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"unknown SIMT schedule {text!r}: expected inorder, reverse or random:SEED")
    try:
        return kind, int(seed) if seed else 0
    except ValueError:
        raise ValueError(f"SIMT schedule {text!r}: the seed after ':' must be an integer") from None


def _checked(kind: str, seed) -> tuple[str, int]:
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"unknown SIMT schedule {kind!r}: expected one of {sorted(SCHEDULE_KINDS)}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"SIMT schedule seed {seed} is not in [0, 2**64)")
    return kind, seed


_default = parse_schedule(os.environ.get("PYCONV_SIMT_SCHEDULE", "inorder"))
_local = threading.local()


def set_schedule(kind: str, seed: int = 0) -> None:
    """Set the process-wide schedule: ``"inorder"``, ``"reverse"`` or ``"random"`` with ``seed``."""
    global _default
    _default = _checked(kind, seed)


def get_schedule() -> tuple[str, int]:
    """The schedule launches from this Python thread use, as ``(kind, seed)``."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else _default


@contextlib.contextmanager
def schedule(kind: str, seed: int = 0):
    """Run the launches inside the ``with`` block (this Python thread) under ``kind``/``seed``."""
    entry = _checked(kind, seed)
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(entry)
    try:
        yield entry
    finally:
        stack.pop()


def _default_workers() -> int:
    text = os.environ.get("PYCONV_SIMT_WORKERS")
    return int(text) if text else max(1, os.cpu_count() or 1)


_workers = _default_workers()


def set_workers(n: int | None) -> None:
    """Number of OS threads that run blocks concurrently (None: the number of CPU cores)."""
    global _workers
    if n is None:
        _workers = max(1, os.cpu_count() or 1)
        return
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"set_workers expects a positive integer or None, got {n!r}")
    _workers = int(n)


def get_workers() -> int:
    return _workers
