"""``pyconv.cuda``: the few queries ported PyTorch scripts make (``torch.cuda.is_available()``)."""

from __future__ import annotations


def is_available() -> bool:
    """True when the ``cuda`` backend is registered and loads (a GPU and CuPy are present)."""
    from . import backends

    return "cuda" in backends.available()


def device_count() -> int:
    return 1 if is_available() else 0
