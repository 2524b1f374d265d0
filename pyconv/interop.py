"""Exchanging data with other array libraries: DLPack import (:func:`from_dlpack`; the export is
``Tensor.__dlpack__``) and loading a PyTorch ``state_dict`` into the equivalent pyconv model
(:func:`load_torch_state_dict`; pyconv's modules use PyTorch's parameter names and layouts)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from .tensor import Tensor

__all__ = ["from_dlpack", "load_torch_state_dict"]

# DLPack device types (dlpack.h, DLDeviceType)
_KDL_CPU = 1
_KDL_CUDA = 2
_KDL_CUDA_MANAGED = 13


def from_dlpack(ext) -> Tensor:
    """A tensor sharing memory with ``ext``: any object with ``__dlpack__`` and
    ``__dlpack_device__`` (a NumPy array, a CPU ``torch.Tensor``, a CuPy array, ...), as
    ``torch.from_dlpack``. CPU data becomes a NumPy-backed tensor (writes go through to
    ``ext``); CUDA data a CuPy-backed one (needs CuPy). A pyconv tensor is returned as is."""
    if isinstance(ext, Tensor):
        return ext
    if not (hasattr(ext, "__dlpack__") and hasattr(ext, "__dlpack_device__")):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and __dlpack_device__ "
                        f"(a NumPy, PyTorch or CuPy array), got {type(ext).__name__}")
    device_type = int(ext.__dlpack_device__()[0])
    if device_type == _KDL_CPU:
        return Tensor._wrap(np.from_dlpack(ext))
    if device_type in (_KDL_CUDA, _KDL_CUDA_MANAGED):
        try:
            import cupy
        except ImportError as exc:
            raise RuntimeError("from_dlpack: a CUDA array needs CuPy (pip install cupy-cuda12x)") \
                from exc
        return Tensor._wrap(cupy.from_dlpack(ext))
    raise BufferError(f"from_dlpack: DLPack device type {device_type} is not supported: expected "
                      f"CPU ({_KDL_CPU}) or CUDA ({_KDL_CUDA})")


def _read_state_dict(source):
    """The mapping behind ``source``: a path (read with ``torch.load(weights_only=True)``) or a
    mapping already."""
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"load_torch_state_dict: no file {os.fspath(source)!r}")
        try:
            import torch
        except ImportError as exc:
            raise ImportError("load_torch_state_dict: reading a torch.save file needs PyTorch "
                              "(pip install torch); or pass a dict of NumPy arrays") from exc
        state = torch.load(source, map_location="cpu", weights_only=True)
        where = os.fspath(source)
    else:
        state, where = source, "the given dict"
    if not isinstance(state, Mapping):
        raise TypeError(f"load_torch_state_dict: {where} holds a {type(state).__name__}, not a "
                        f"state_dict: save model.state_dict(), not the model")
    nested = [k for k, v in state.items() if isinstance(v, Mapping)]
    if nested:
        raise TypeError(f"load_torch_state_dict: {where} looks like a checkpoint holding several "
                        f"dicts ({nested}): pass the model's state_dict, e.g. "
                        f"source[{nested[0]!r}]")
    return state, where


def _as_numpy(key, value):
    if isinstance(value, Tensor):
        return np.asarray(value.detach())
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            value = value.float()
        return value.numpy()
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"load_torch_state_dict: {key!r} is a {type(value).__name__}, not a tensor")
    return array


def load_torch_state_dict(model, source, strict: bool = True):
    """Copy a PyTorch ``state_dict`` into ``model`` (the pyconv twin of the torch model:
    same module structure, so the same keys and shapes), batch-norm running statistics included.

    ``source``: a path to a ``torch.save(model.state_dict(), path)`` file (read with
    ``weights_only=True``; needs PyTorch) or a dict of torch tensors, NumPy arrays or pyconv
    tensors. Values are converted to each parameter's dtype. Shape mismatches always raise;
    with ``strict`` missing and unexpected keys raise too; the RuntimeError lists every one.
    Returns ``(missing_keys, unexpected_keys)`` as ``Module.load_state_dict``.
    """
    state, where = _read_state_dict(source)
    arrays = {key: _as_numpy(key, value) for key, value in state.items()}
    try:
        return model.load_state_dict(arrays, strict=strict)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n(loading {where} into {type(model).__name__}: the model "
                           f"expects {len(model.state_dict())} entries, the source has "
                           f"{len(arrays)})") from None
