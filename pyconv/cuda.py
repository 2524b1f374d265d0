"""``pyconv.cuda``: the GPU as ported PyTorch scripts query it (``torch.cuda.is_available()``), and
the copy between host and GPU behind ``Tensor.to('cuda')`` / ``.cpu()``."""

from __future__ import annotations

import numpy as np

from . import autograd


def is_available() -> bool:
    """True when the ``cuda`` backend loads (CuPy, a driver and a GPU are present)."""
    from . import backends

    return "cuda" in backends.available()


def device_count() -> int:
    if not is_available():
        return 0
    import cupy

    return int(cupy.cuda.runtime.getDeviceCount())


def _copy(array, device: str):
    """``array`` as a NumPy (``'cpu'``) or CuPy (``'cuda'``) array."""
    on_host = isinstance(array, (np.ndarray, np.generic))
    if device == "cuda":
        import cupy

        return cupy.asarray(array) if on_host else array
    return array if on_host else array.get()


class _Move(autograd.Function):
    """A copy to another device; the gradient is copied back (like torch's ``Tensor.to``)."""

    @staticmethod
    def forward(ctx, x, device):
        ctx.source = "cpu" if isinstance(x, (np.ndarray, np.generic)) else "cuda"
        return _copy(x, device)

    @staticmethod
    def backward(ctx, g):
        return _copy(g, ctx.source)


def move(tensor, device: str):
    """``tensor`` copied to ``device`` (``'cpu'`` or ``'cuda'``), recorded for autograd."""
    return _Move.apply(tensor, device)


def set_autotune(enabled: bool = True, *, repeats: int = 3) -> None:
    """Let the ``cuda`` backend choose kernel variants (convolution tiles, the float4 weight path,
    GEMM row tiles) by timing each once per shape on the GPU, cached on disk per GPU model
    (``PYCONV_CUDA_AUTOTUNE=1`` does the same at start-up); False returns to the heuristics.
    RuntimeError with the reason when there is no usable GPU."""
    from .backends import cuda as cuda_backend

    cuda_backend.check_available()
    cuda_backend.device.set_autotune(bool(enabled), repeats=repeats)
