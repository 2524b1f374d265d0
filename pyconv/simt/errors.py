"""Exceptions of the SIMT emulator."""

from __future__ import annotations


class SimtError(RuntimeError):
    """A kernel failed: deadlock, warp-op misuse, device assert, launch limit, ..."""


class SimtCompileError(SimtError):
    """g++ rejected a kernel source; ``stderr`` holds the compiler's messages."""

    def __init__(self, message: str, stderr: str = ""):
        super().__init__(message)
        self.stderr = stderr
