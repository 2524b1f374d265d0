"""Optional native extension ``pyconv._C`` (built by setup.py when a C++ compiler is present)."""

from __future__ import annotations

import warnings

try:
    from . import _C  # type: ignore[attr-defined]

    IMPORT_ERROR = None
except ImportError as exc:  # pure-NumPy install: everything still works on the reference backend
    import importlib.util as _util

    _C = None
    if _util.find_spec(__package__ + "._C") is None:
        IMPORT_ERROR = ("the extension was not compiled (no C++ compiler at install time, or "
                        "pyconv imported from a source tree that was not built)")
    else:
        IMPORT_ERROR = f"the compiled extension failed to load: {exc}"

_num_threads = None


def build_info() -> dict:
    """What the native extension was built with (compiler, ISA, OpenMP) and what this CPU
    supports; ``{'native': False, ...}`` on a pure-NumPy install."""
    if _C is None:
        return {"native": False, "reason": IMPORT_ERROR}
    info = dict(_C.build_info())
    info["native"] = True
    return info


def set_num_threads(n: int) -> None:
    """Threads used by native kernels (OpenMP); the NumPy backend is unaffected."""
    global _num_threads
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _num_threads = n
    if _C is not None:
        _C.set_num_threads(n)


def get_num_threads() -> int:
    if _C is not None:
        return int(_C.get_num_threads())
    return _num_threads or 1


def warn_if_missing() -> None:
    if _C is None:
        warnings.warn(f"pyconv._C is not built ({IMPORT_ERROR}); only the NumPy backend is available",
                      RuntimeWarning, stacklevel=2)
