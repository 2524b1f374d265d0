"""Comparison of pyconv with PyTorch, forward and backward (tinygrad's helper_test_op idea).

Import in a test module with ``from torch_compare import require_torch, compare_with_torch``.
When PyTorch is missing the calling test is skipped, unless ``PYCONV_REQUIRE_TORCH=1`` (set by
``.ci/run``), which turns the skip into a failure so CI can never pass without the comparisons.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import pyconv
from pyconv.testing import assert_close

DEFAULT_TOL = {np.float64: (1e-9, 1e-7), np.float32: (2e-5, 2e-4)}


def require_torch():
    """The torch module, or skip (fail under PYCONV_REQUIRE_TORCH=1)."""
    try:
        import torch
    except ImportError:
        if os.environ.get("PYCONV_REQUIRE_TORCH") == "1":
            pytest.fail("PyTorch is required (PYCONV_REQUIRE_TORCH=1) but cannot be imported")
        pytest.skip("PyTorch is not installed; the comparison with PyTorch is skipped")
    torch.set_default_dtype(torch.float32)
    return torch


def _flatten(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def _to_numpy(t):
    if isinstance(t, pyconv.Tensor):
        return np.asarray(t.detach()._data)
    return t.detach().cpu().numpy()


def compare_with_torch(pyconv_fn, torch_fn, arrays, *, dtype=np.float64, grad=True,
                       no_grad_inputs=(), atol=None, rtol=None, seed=0, name="op"):
    """Run ``pyconv_fn(*tensors)`` and ``torch_fn(*tensors)`` on the same data and compare.

    ``arrays``: NumPy arrays (float arrays are cast to ``dtype`` and require grad unless their
    index is in ``no_grad_inputs``; integer arrays pass unchanged) or non-array arguments passed
    as they are. Both functions may return a tensor or nested tuples of tensors; floating outputs
    are compared, then one backward with the same random upstream gradients compares the
    gradients of every input that requires grad. Returns (pyconv outputs, torch outputs).
    """
    torch = require_torch()
    d_atol, d_rtol = DEFAULT_TOL[np.dtype(dtype).type]
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol

    pc_in, th_in = [], []
    for i, a in enumerate(arrays):
        if isinstance(a, np.ndarray):
            arr = a.astype(dtype) if a.dtype.kind == "f" else a
            needs = grad and a.dtype.kind == "f" and i not in no_grad_inputs
            pc_in.append(pyconv.tensor(arr, requires_grad=needs))
            th_in.append(torch.tensor(arr, requires_grad=needs))
        else:
            pc_in.append(a)
            th_in.append(a)

    pc_out = _flatten(pyconv_fn(*pc_in))
    th_out = _flatten(torch_fn(*th_in))
    assert len(pc_out) == len(th_out), f"{name}: {len(pc_out)} outputs vs torch {len(th_out)}"
    for k, (p, t) in enumerate(zip(pc_out, th_out)):
        assert tuple(p.shape) == tuple(t.shape), f"{name}: output {k} shape {p.shape} vs torch {tuple(t.shape)}"
        if np.dtype(p.dtype).kind == "f":
            assert p.dtype == np.dtype(dtype), f"{name}: output {k} dtype {p.dtype}, expected {np.dtype(dtype)}"
            assert_close(_to_numpy(p), _to_numpy(t), atol=atol, rtol=rtol, name=f"{name} output {k}")
        else:
            np.testing.assert_array_equal(_to_numpy(p), _to_numpy(t), err_msg=f"{name} output {k}")

    if not grad:
        return pc_out, th_out
    rng = np.random.default_rng(seed)
    pc_loss, th_loss = None, None
    for p, t in zip(pc_out, th_out):
        if np.dtype(p.dtype).kind != "f" or not t.requires_grad:
            continue
        w = rng.standard_normal(tuple(t.shape)).astype(dtype)
        pl = (p * pyconv.tensor(w)).sum()
        tl = (t * torch.tensor(w)).sum()
        pc_loss = pl if pc_loss is None else pc_loss + pl
        th_loss = tl if th_loss is None else th_loss + tl
    if th_loss is None:
        return pc_out, th_out
    pc_loss.backward()
    th_loss.backward()
    for i, (p, t) in enumerate(zip(pc_in, th_in)):
        if isinstance(p, pyconv.Tensor) and p.requires_grad:
            if t.grad is None:
                assert p.grad is None or not np.any(p.grad._data), f"{name}: torch has no grad for input {i}"
                continue
            assert p.grad is not None, f"{name}: pyconv produced no gradient for input {i}"
            assert_close(_to_numpy(p.grad), _to_numpy(t.grad), atol=atol, rtol=rtol, name=f"{name} grad of input {i}")
    return pc_out, th_out
