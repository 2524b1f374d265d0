"""Backend registry and selection.

A backend is a module implementing every kernel of :mod:`pyconv.backends.contract`. The current
backend is, in order of precedence: the innermost ``with pyconv.backends.use(name):`` block, the
``PYCONV_BACKEND`` environment variable (read at first use), then the default: ``cpu`` (the C++
kernels of ``pyconv._C``) when it is built, else ``numpy`` (the reference). The op layer
resolves the backend once per call and stores it on the autograd context, so a backward pass
runs on the backend its forward ran on.
"""

from __future__ import annotations

import importlib
import os
import threading
from contextlib import contextmanager

from . import contract

__all__ = ["available", "current", "get", "register", "use", "KERNELS"]

KERNELS = contract.KERNELS

# name -> module path; modules import lazily so that an unavailable backend costs nothing.
_REGISTRY: dict[str, str] = {
    "numpy": "pyconv.backends.numpy_ref",
    "cpu": "pyconv.backends.cpu",
    "simt": "pyconv.backends.simt",
    "cuda": "pyconv.backends.cuda",
}
_loaded: dict[str, object] = {}
_errors: dict[str, str] = {}
_local = threading.local()
DEFAULT = "numpy"


def register(name: str, module_path: str) -> None:
    """Make a backend selectable by ``name`` (``module_path`` is imported on first use)."""
    global _default_module
    _default_module = None
    _REGISTRY[name] = module_path
    _loaded.pop(name, None)
    _errors.pop(name, None)


def get(name: str):
    """The backend module called ``name``; ValueError for unknown names, RuntimeError (with the
    reason) for known backends that cannot run here."""
    if name in _loaded:
        return _loaded[name]
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown backend {name!r}: expected one of {sorted(_REGISTRY)} "
            f"(available here: {available()})"
        )
    if name in _errors:
        raise RuntimeError(f"backend {name!r} is not available: {_errors[name]}")
    try:
        module = importlib.import_module(_REGISTRY[name])
        check = getattr(module, "check_available", None)
        if check is not None:
            check()
    except Exception as exc:  # noqa: BLE001 - any import/probe failure makes it unavailable
        _errors[name] = f"{type(exc).__name__}: {exc}"
        raise RuntimeError(f"backend {name!r} is not available: {_errors[name]}") from exc
    _loaded[name] = module
    return module


def available() -> list[str]:
    """Names of the backends that load on this machine."""
    names = []
    for name in _REGISTRY:
        try:
            get(name)
        except RuntimeError:
            continue
        names.append(name)
    return names


def _default_name() -> str:
    """``PYCONV_BACKEND`` if set, else ``cpu`` when the C++ extension is built, else ``numpy``."""
    chosen = os.environ.get("PYCONV_BACKEND", "").strip()
    if chosen:
        return chosen
    try:
        get("cpu")
    except RuntimeError:
        return DEFAULT
    return "cpu"


_default_module = None


def current():
    """The backend module that ops called now will use."""
    global _default_module
    stack = getattr(_local, "stack", None)
    if stack:
        return stack[-1]
    if _default_module is None:
        _default_module = get(_default_name())
    return _default_module


@contextmanager
def use(name: str):
    """``with pyconv.backends.use("numpy"): ...`` runs the block's ops on that backend."""
    module = get(name)
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(module)
    try:
        yield module
    finally:
        stack.pop()


def transfer(tensor, device: str):
    """``tensor`` copied to ``device`` (``'cpu'`` or ``'cuda'``) for ``Tensor.to``, ``.cuda()`` and
    ``.cpu()``; gradients flow back through the copy. RuntimeError with the reason when the
    ``cuda`` backend is unavailable (no CuPy, driver or GPU)."""
    if device not in ("cpu", "cuda"):
        raise RuntimeError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    if device == "cuda":
        try:
            get("cuda")
        except RuntimeError as exc:
            raise RuntimeError(f"device 'cuda' is not supported here: {exc}") from exc
    from ..cuda import move

    return move(tensor, device)
