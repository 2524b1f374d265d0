"""Test utilities users can call too: finite-difference gradient checks and array comparison."""

from __future__ import annotations

import numpy as np

from .autograd import no_grad
from .tensor import Tensor

__all__ = ["assert_close", "gradcheck"]


def _flat_outputs(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat_outputs(o)]
    return []


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              projections: int = 1, seed: int = 0, raise_exception: bool = True) -> bool:
    """Compare autograd gradients of ``fn(*inputs)`` with central finite differences.

    ``inputs`` is a sequence; its float64 tensors with ``requires_grad=True`` are checked (other
    entries are passed through). Every floating output of ``fn`` (a tensor or nested tuples of
    tensors) is projected on fixed random weights ``v`` so one backward gives the analytic
    gradient of ``sum(v * out)``, which is compared element by element with
    ``(L(x + eps e_i) - L(x - eps e_i)) / (2 eps)``. Cost: two forwards per checked element.

    Returns True, or raises AssertionError naming the input, the worst element, and both values
    (returns False instead if ``raise_exception=False``).
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input tensor has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise ValueError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences need float64"
            )
    rng = np.random.default_rng(seed)

    for _ in range(projections):
        outs = [o for o in _flat_outputs(fn(*inputs)) if o.dtype.kind == "f"]
        weights = [rng.standard_normal(o.shape) for o in outs]

        def loss_value():
            with no_grad():
                values = [o for o in _flat_outputs(fn(*inputs)) if o.dtype.kind == "f"]
            return float(sum(np.sum(np.asarray(o._data, dtype=np.float64) * w) for o, w in zip(values, weights)))

        for i in checked:
            inputs[i].grad = None
        total = None
        for o, w in zip(outs, weights):
            if not o.requires_grad:
                continue
            term = (o * Tensor(w.astype(o.dtype))).sum()
            total = term if total is None else total + term
        if total is not None:
            total.backward()

        for i in checked:
            t = inputs[i]
            analytic = np.zeros(t.shape) if t.grad is None else np.asarray(t.grad._data, dtype=np.float64)
            numeric = np.zeros(t.shape)
            flat = t._data.reshape(-1)  # a view: perturb in place
            if not np.shares_memory(flat, t._data):
                raise ValueError(f"gradcheck: input {i} must be contiguous")
            for j in range(flat.size):
                orig = flat[j]
                flat[j] = orig + eps
                plus = loss_value()
                flat[j] = orig - eps
                minus = loss_value()
                flat[j] = orig
                numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
            bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
            if bad.any():
                k = np.unravel_index(np.argmax(np.abs(analytic - numeric) - rtol * np.abs(numeric)), t.shape)
                msg = (
                    f"gradcheck: gradient of input {i} (shape {t.shape}) differs from finite "
                    f"differences at {bad.sum()} of {bad.size} elements; worst at index {tuple(int(v) for v in k)}: "
                    f"analytic {analytic[k]:.10g}, numeric {numeric[k]:.10g} (atol={atol}, rtol={rtol})"
                )
                if raise_exception:
                    raise AssertionError(msg)
                return False
    return True


def assert_close(actual, expected, atol: float = 1e-6, rtol: float = 1e-5, name: str = "value"):
    """``|actual - expected| <= atol + rtol * |expected|`` elementwise (llm.c's tolerance), with a
    message showing the first mismatches. Accepts tensors, arrays and scalars."""
    a = np.asarray(actual._data if isinstance(actual, Tensor) else actual, dtype=np.float64)
    e = np.asarray(expected._data if isinstance(expected, Tensor) else expected, dtype=np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {a.shape} != expected {e.shape}")
    same = (np.isnan(a) & np.isnan(e)) | (a == e)  # equal infinities are close
    with np.errstate(invalid="ignore"):
        close = np.isfinite(a) & np.isfinite(e) & (np.abs(a - e) <= atol + rtol * np.abs(e))
    bad = ~same & ~close
    if bad.any():
        idx = np.argwhere(bad)[:5]
        rows = ", ".join(f"{tuple(int(v) for v in i)}: {a[tuple(i)]:.8g} vs {e[tuple(i)]:.8g}" for i in idx)
        raise AssertionError(
            f"{name}: {bad.sum()} of {bad.size} elements differ (atol={atol}, rtol={rtol}, "
            f"max abs diff {np.max(np.abs(a - e)[bad]):.3g}); first: {rows}"
        )
