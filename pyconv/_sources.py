"""Where the device-code sources live: ``kernels/*.cu`` and the SIMT emulator header.

In a source checkout they are the repository's ``kernels/`` and ``csrc/simt/``; an installed
pyconv carries copies in ``pyconv/_device/`` (setup.py copies them at build time), because the
emulator and CuPy compile them at run time.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _pick(installed: Path, in_checkout: Path) -> Path:
    if installed.is_dir():
        return installed
    if in_checkout.is_dir():
        return in_checkout
    raise FileNotFoundError(
        f"pyconv's device sources are missing: looked for {installed} (installed copy) and "
        f"{in_checkout} (source checkout); reinstall pyconv"
    )


def kernels_dir() -> Path:
    """The directory holding ``compat.cuh`` and the ``<family>.cu`` kernel files."""
    return _pick(_PACKAGE / "_device" / "kernels", _PACKAGE.parent / "kernels")


def simt_include_dir() -> Path:
    """The directory holding the emulator header ``simt.h``."""
    return _pick(_PACKAGE / "_device" / "simt", _PACKAGE.parent / "csrc" / "simt")


def kernel_path(family: str) -> Path:
    """``kernels/<family>.cu``; ValueError naming the families that exist otherwise."""
    path = kernels_dir() / f"{family}.cu"
    if not path.is_file():
        known = sorted(p.stem for p in kernels_dir().glob("*.cu"))
        raise ValueError(f"no kernel file {family}.cu: expected one of {known}")
    return path
