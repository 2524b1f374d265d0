"""Test utilities users can call too: finite-difference gradient checks, array comparison, and
:func:`compare`, which runs a user's function on every backend against a float64 reference."""

from __future__ import annotations

import numpy as np

from .autograd import no_grad
from .tensor import Tensor

__all__ = ["assert_close", "compare", "gradcheck"]


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


# (atol, rtol) per dtype for compare(): looser than a single kernel's (pyconv.check.TOLERANCES)
# because a user's function chains several kernels.
COMPARE_TOLERANCES = {np.dtype(np.float32): (2e-5, 2e-4), np.dtype(np.float64): (1e-9, 1e-7)}


def _prepare_inputs(inputs, dtype):
    """Float arrays (and tensors) rounded to ``dtype``; other entries unchanged."""
    out = []
    for value in inputs:
        if isinstance(value, Tensor):
            value = np.asarray(value.detach())
        if isinstance(value, (list, np.ndarray)) and np.asarray(value).dtype.kind == "f":
            value = np.asarray(value).astype(dtype)
        out.append(value)
    return out


def _run_on(backend, fn, arrays, grad, seed):
    """fn on ``backend`` with float arrays as tensors; returns (outputs, grads) as host arrays,
    grads None unless ``grad`` (then (position, gradient) per float input: the gradient of a
    fixed random projection of the outputs)."""
    from . import backends

    with backends.use(backend):
        tensors = []
        for a in arrays:
            if isinstance(a, np.ndarray):
                t = Tensor(a.copy(), requires_grad=grad and a.dtype.kind == "f")
                if backend == "cuda":
                    t = t.detach().cuda().requires_grad_(t.requires_grad)
                a = t
            tensors.append(a)
        returned = fn(*tensors)
        outs = _flat_outputs(returned)
        if not outs:
            raise TypeError(f"compare: fn must return a pyconv tensor or tuples of them, got "
                            f"{type(returned).__name__}")
        values = [np.asarray(o.detach()) for o in outs]
        if not grad:
            return values, None
        rng = np.random.default_rng(seed)
        total = None
        for o in outs:
            w = rng.standard_normal(o.shape).astype(o.dtype)
            if o.requires_grad and o.dtype.kind == "f":
                term = (o * Tensor(w).to(o.device)).sum()
                total = term if total is None else total + term
        if total is not None:
            total.backward()
        grads = [(i, np.zeros(t.shape) if t.grad is None else np.asarray(t.grad))
                 for i, t in enumerate(tensors) if isinstance(t, Tensor) and t.dtype.kind == "f"]
        return values, grads


def compare(fn, inputs, reference=None, *, backends=None, atol=None, rtol=None,
            dtype=np.float32, grad=False, seed=0, raise_on_failure=False):
    """Run ``fn`` (taking pyconv tensors, returning a tensor or nested tuples of them) on every
    backend and compare its outputs with a float64 reference, as ``pyconv check`` does for the
    kernels.

    ``inputs``: NumPy arrays (float ones are rounded to each ``dtype`` and become tensors;
    integer ones become tensors unchanged) or other values passed as they are. ``reference``: a
    callable taking the same inputs as float64 NumPy arrays (the rounded values) and returning an
    array or a tuple of arrays; default: ``fn`` itself on the ``numpy`` backend in float64.
    ``grad=True`` also compares the gradients with respect to the float inputs (of a fixed
    random projection of the outputs) with those of ``fn`` on the numpy backend in float64.
    ``backends``: names (default: every available one); ``dtype``: one dtype or a sequence;
    ``atol``/``rtol`` default to ``COMPARE_TOLERANCES`` per dtype.

    Returns a :class:`pyconv.check.Table` (rows like ``pyconv check``'s, ``.ok``, ``.failures``,
    ``str()`` is the table); with ``raise_on_failure`` a failing row raises AssertionError
    with the table.
    """
    from . import backends as _backends
    from .check import Row, Table, _select_backends, errors

    usable, unavailable = _select_backends(_backends.available() if backends is None else backends)
    name = getattr(fn, "__name__", type(fn).__name__)
    dtypes = [np.dtype(d) for d in (dtype if isinstance(dtype, (tuple, list)) else (dtype,))]
    for d in dtypes:
        if d not in COMPARE_TOLERANCES:
            raise ValueError(f"compare: dtype must be float32 or float64, got {d}")
    rows = []
    for d in dtypes:
        d_atol, d_rtol = COMPARE_TOLERANCES[d]
        tol = (d_atol if atol is None else atol, d_rtol if rtol is None else rtol)
        rounded = _prepare_inputs(inputs, d)
        as64 = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                for a in rounded]
        expected, expected_grads = _run_on("numpy", fn, as64, grad, seed)
        if reference is not None:
            found = reference(*[a.copy() if isinstance(a, np.ndarray) else a for a in as64])
            found = found if isinstance(found, (tuple, list)) else (found,)
            expected = [np.asarray(v, dtype=np.float64) for v in found]
        for module in usable:
            try:
                got, grads = _run_on(module.name, fn, rounded, grad, seed)
            except Exception as exc:  # noqa: BLE001 - reported as a failed row
                rows.append(Row(name, module.name, d, float("nan"), float("nan"), None, *tol, False,
                                f"{type(exc).__name__}: {exc}"[:160]))
                continue
            pairs = [(f"{name} output {i}", g, e) for i, (g, e) in
                     enumerate(zip(got, expected))]
            if len(got) != len(expected):
                rows.append(Row(name, module.name, d, float("nan"), float("nan"), None, *tol,
                                False, f"{len(got)} outputs, reference has {len(expected)}"))
            if grad:
                pairs += [(f"{name} grad of input {i}", g, e) for (i, g), (_, e) in
                          zip(grads, expected_grads)]
            for label, g, e in pairs:
                abs_err, rel_err, close, msg = errors(g, e, *tol)
                rows.append(Row(label, module.name, d, abs_err, rel_err, None, *tol, close, msg))
    preamble = [f"compare {name}: reference = "
                + ("the given function" if reference is not None else "fn on numpy in float64")]
    preamble += [f"{n}: unavailable: {reason}" for n, reason in unavailable]
    table = Table(rows, preamble)
    if raise_on_failure and not table.ok:
        raise AssertionError(str(table))
    return table
