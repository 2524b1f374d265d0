"""``pyconv check``: every kernel of the backend contract on every available backend, compared
with the NumPy reference in float64 and with PyTorch when it is importable.

Each case of :mod:`pyconv.check_cases` runs in float32 and float64. The inputs (and the values
derived from them, such as a saved forward output) are first rounded to the dtype under test,
so the float64 reference (the ``numpy`` backend's kernel) and PyTorch (float64,
``torch.nn.functional`` and autograd) see exactly the values the backend sees and the error
measures the kernel alone. An output is close when
``|actual - expected| <= atol + rtol * |expected|`` everywhere (NaNs and infinities must match);
``TOLERANCES`` gives (atol, rtol) per dtype. The table has one row per kernel, backend and dtype
(the worst of its cases); :func:`run` prints it and returns the exit status.
"""

from __future__ import annotations

import sys
import time
import zlib

import numpy as np

from . import backends as _backends
from .check_cases import all_cases

__all__ = ["TOLERANCES", "DTYPES", "Row", "Table", "errors", "run", "collect"]

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
TOLERANCES = {np.dtype(np.float32): (1e-5, 1e-4), np.dtype(np.float64): (1e-10, 1e-8)}


class Row:
    """One line of a comparison table: ``op`` on ``backend`` in ``dtype``; errors are the largest
    over the row's cases (``torch_err`` is None when PyTorch was not consulted)."""

    __slots__ = ("op", "backend", "dtype", "abs_err", "rel_err", "torch_err", "atol", "rtol",
                 "ok", "note")

    def __init__(self, op, backend, dtype, abs_err, rel_err, torch_err, atol, rtol, ok, note=""):
        self.op, self.backend, self.dtype = op, backend, np.dtype(dtype).name
        self.abs_err, self.rel_err, self.torch_err = abs_err, rel_err, torch_err
        self.atol, self.rtol, self.ok, self.note = atol, rtol, ok, note

    @property
    def status(self) -> str:
        return "ok" if self.ok else "FAIL"

    def __repr__(self):
        return f"Row({self.op!r}, {self.backend!r}, {self.dtype}, {self.status})"


def _fmt(value):
    if value is None:
        return "-"
    return "nan" if value != value else f"{value:.2e}"


class Table:
    """Rows plus the lines that go before them; ``str()`` is the printed table."""

    HEADER = ("op", "backend", "dtype", "max abs err", "max rel err", "vs torch abs", "tolerance",
              "status")

    def __init__(self, rows=(), preamble=()):
        self.rows = list(rows)
        self.preamble = list(preamble)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list:
        return [r for r in self.rows if not r.ok]

    def summary(self) -> str:
        bad = len(self.failures)
        return (f"{len(self.rows)} checks: {len(self.rows) - bad} ok, {bad} FAIL"
                + ("" if bad else " - all within tolerance"))

    def lines(self) -> list:
        cells = [self.HEADER] + [
            (r.op, r.backend, r.dtype, _fmt(r.abs_err), _fmt(r.rel_err), _fmt(r.torch_err),
             f"{r.atol:.0e} + {r.rtol:.0e}*|ref|", r.status + (f"  {r.note}" if r.note else ""))
            for r in self.rows
        ]
        if all(r.torch_err is None for r in self.rows):  # no PyTorch column when never consulted
            cells = [c[:5] + c[6:] for c in cells]
        widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]) - 1)]
        out = list(self.preamble)
        for c in cells:
            out.append("  ".join(v.ljust(w) for v, w in zip(c, widths)) + "  " + c[-1])
        out.append(self.summary())
        return out

    def __str__(self):
        return "\n".join(self.lines())


def errors(actual, expected, atol, rtol):
    """(max abs err, max rel err, close, message) of two arrays of one shape, in float64; the
    relative error counts only elements with ``|expected| > atol`` (near 0 it means nothing)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return float("inf"), float("inf"), False, f"shape {a.shape} != expected {e.shape}"
    if a.size == 0:
        return 0.0, 0.0, True, ""
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a - e))
        diff = np.where(np.isnan(diff), np.inf, diff)
        close = bool(np.all(same | (np.isfinite(a) & np.isfinite(e)
                                         & (diff <= atol + rtol * np.abs(e)))))
        big = np.abs(e) > atol
        rel = float(np.max(diff[big] / np.abs(e[big]))) if big.any() else 0.0
    return float(np.max(diff)), rel, close, ""


# ----- running one case ------------------------------------------------------------------------


def _cast(d, dtype):
    """A copy of the case data with every float array in ``dtype`` (other arrays copied as is)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, np.ndarray):
            v = v.astype(dtype) if v.dtype.kind == "f" else v.copy()
        out[k] = v
    return out


def _to_device(value, xp):
    if xp is np or not isinstance(value, np.ndarray):
        return value
    return xp.asarray(value)


def _to_host(value):
    return value.get() if hasattr(value, "get") and not isinstance(value, np.ndarray) else value


def _float_outputs(values):
    """The outputs as host arrays; bool/int outputs (masks, indices) compare as numbers."""
    return [None if v is None else np.asarray(_to_host(v)) for v in values]


def _call(case, module, d, xp=np):
    args = tuple(_to_device(a, xp) for a in case.args({k: _to_device(v, xp) for k, v in d.items()}))
    result = getattr(module, case.kernel)(*args)
    return _float_outputs(case.outputs(args, result))


def _torch_expected(case, th, d64):
    def convert(v):
        if isinstance(v, np.ndarray):
            return th.from_numpy(v.copy())
        return v

    out = case.torch(th, {k: convert(v) for k, v in d64.items()})
    return [None if t is None else t.detach().cpu().numpy() for t in out]


# (seed, case, dtype, torch consulted, reference kernel) -> (data, reference, torch): the cases
# are fixed, so a second run (one per backend in the tests) reuses the oracles' outputs; the
# reference kernel's identity is in the key so a replaced kernel is never served stale results.
_ORACLE_CACHE: dict = {}


class _Oracles:
    """The reference's and PyTorch's outputs per (case, dtype), computed once for all backends."""

    def __init__(self, th, seed):
        self.th, self.seed, self._cache = th, seed, _ORACLE_CACHE

    def get(self, index, case, dtype):
        reference = getattr(_backends.get("numpy"), case.kernel)
        key = (self.seed, case.kernel, case.label, dtype, self.th is not None, reference)
        if key not in self._cache:
            name = f"{case.kernel}[{case.label}]".encode()
            rng = np.random.default_rng([self.seed, zlib.crc32(name)])
            d = _cast(_cast(case.data(rng), dtype), np.float64)
            if case.derive is not None:  # from the rounded inputs, then rounded in turn
                case.derive(d)
                d = _cast(_cast(d, dtype), np.float64)
            try:
                ref = _call(case, _backends.get("numpy"), _cast(d, np.float64))
            except Exception as exc:  # noqa: BLE001 - reported on every row of the case
                ref = f"the reference failed: {type(exc).__name__}: {exc}"[:160]
            expected_torch, torch_note = None, ""
            if self.th is not None and case.torch is not None:
                try:
                    expected_torch = _torch_expected(case, self.th, _cast(d, np.float64))
                except Exception as exc:  # noqa: BLE001 - an oracle missing, not a failure
                    torch_note = f"(not compared with torch: {type(exc).__name__}: {exc})"[:160]
            self._cache[key] = (d, ref, expected_torch, torch_note)
        return self._cache[key]


def _check_case(case, module, dtype, oracle):
    """(abs, rel, torch abs or None, ok, note) of one case on one backend."""
    d, ref, expected_torch, torch_note = oracle
    if isinstance(ref, str):
        return float("inf"), float("inf"), None, False, ref
    atol, rtol = TOLERANCES[dtype]
    xp = np
    if module.name == "cuda":  # the only backend on device arrays
        import cupy as xp
    try:
        got = _call(case, module, _cast(d, dtype), xp)
    except Exception as exc:  # noqa: BLE001 - a crashing kernel is a failed check, not a crash
        return float("inf"), float("inf"), None, False, f"{type(exc).__name__}: {exc}"[:160]
    if len(got) != len(ref):
        return float("inf"), float("inf"), None, False, f"{len(got)} outputs, expected {len(ref)}"
    worst_abs = worst_rel = 0.0
    worst_torch = None if expected_torch is None else 0.0
    notes = []
    for i, (g, r) in enumerate(zip(got, ref)):
        if (g is None) != (r is None):
            notes.append(f"output {i} is {'None' if g is None else 'an array'}")
            continue
        if g is None:
            continue
        if r.dtype.kind == "f" and g.dtype != dtype:
            notes.append(f"output {i} is {g.dtype}, expected {dtype}")
        a, rel, close, msg = errors(g, r, atol, rtol)
        worst_abs, worst_rel = max(worst_abs, a), max(worst_rel, rel)
        if not close:
            notes.append(f"output {i} vs reference" + (f": {msg}" if msg else ""))
        if expected_torch is not None and expected_torch[i] is not None:
            a, _, close, msg = errors(g, expected_torch[i], atol, rtol)
            worst_torch = max(worst_torch, a)
            if not close:
                notes.append(f"output {i} vs torch" + (f": {msg}" if msg else ""))
    ok = not notes
    notes += [torch_note] if torch_note else []
    return worst_abs, worst_rel, worst_torch, ok, "; ".join(notes)


def _select_backends(names):
    known = list(_backends._REGISTRY)
    if names is None:
        names = known
    elif isinstance(names, str):
        names = [names]
    for name in names:
        if name not in known:
            raise ValueError(f"unknown backend {name!r}: expected one of {_backends.available()} "
                             f"(known: {known})")
    usable, unavailable = [], []
    for name in names:
        try:
            usable.append(_backends.get(name))
        except RuntimeError as exc:
            unavailable.append((name, str(exc).split(": ", 1)[-1]))
    return usable, unavailable


def _select_cases(ops):
    cases = all_cases()
    if ops is None:
        return cases
    patterns = [ops] if isinstance(ops, str) else list(ops)
    chosen = [c for c in cases if any(p in c.kernel for p in patterns)]
    if not chosen:
        raise ValueError(f"ops={patterns!r} matches no kernel: expected substrings of "
                         f"{sorted(_backends.KERNELS)}")
    return chosen


def _import_torch(torch):
    if not torch:
        return None, "not requested"
    try:
        import torch as th
    except ImportError:
        return None, "not installed (pip install torch to compare with it)"
    return th, f"torch {th.__version__}"


def header_lines() -> list:
    """Versions, backends and build information (what ``pyconv check`` printed before)."""
    import platform

    import pyconv

    try:
        current = _backends.current().name
    except (RuntimeError, ValueError) as exc:  # e.g. PYCONV_BACKEND names a missing backend
        current = f"none ({exc})"
    lines = [f"pyconv {pyconv.__version__} (python {platform.python_version()}, "
             f"numpy {np.__version__})",
             f"backends available here: {', '.join(_backends.available())}",
             f"current backend: {current}",
             f"native build: {pyconv.build_info()}",
             f"threads: {pyconv.get_num_threads()}"]
    return lines


def collect(backends=None, ops=None, torch=True, seed=0) -> Table:
    """Run the checks and return the :class:`Table` (``run`` prints it); arguments as ``run``."""
    usable, unavailable = _select_backends(backends)
    cases = _select_cases(ops)
    th, torch_note = _import_torch(torch)
    preamble = header_lines() + [f"comparing with: NumPy float64 reference; PyTorch: {torch_note}"]
    preamble += [f"{name}: unavailable: {reason}" for name, reason in unavailable]
    oracles = _Oracles(th, seed)
    rows = []
    for module in usable:
        on_reference = set(getattr(module, "REFERENCE_KERNELS", ()))
        for dtype in DTYPES:
            by_kernel = {}
            for index, case in enumerate(cases):
                result = _check_case(case, module, dtype, oracles.get(index, case, dtype))
                by_kernel.setdefault(case.kernel, []).append((case.label, result))
            atol, rtol = TOLERANCES[dtype]
            for kernel, results in by_kernel.items():
                torch_errs = [r[2] for _, r in results if r[2] is not None]
                notes = [f"[{label}] {r[4]}" if label else r[4] for label, r in results if r[4]]
                if kernel in on_reference:
                    notes.append("(runs on the reference)")
                rows.append(Row(kernel, module.name, dtype, max(r[0] for _, r in results),
                                max(r[1] for _, r in results),
                                max(torch_errs) if torch_errs else None, atol, rtol,
                                all(r[3] for _, r in results), "; ".join(notes)))
    return Table(rows, preamble)


def run(backends=None, ops=None, torch=True, stream=None) -> int:
    """Check every contract kernel on ``backends`` (names; default every registered one, those
    that cannot run here listed as unavailable) for the kernels whose name contains one of
    ``ops`` (a substring or a list of them), against the float64 reference and, with
    ``torch=True`` and PyTorch importable, against PyTorch. Prints the table to ``stream``
    (default stdout) and returns 1 if any row fails, else 0. ValueError for an unknown backend
    name (listing the available ones) or ``ops`` matching nothing."""
    stream = sys.stdout if stream is None else stream
    start = time.perf_counter()
    table = collect(backends, ops, torch)
    for line in table.lines():
        print(line, file=stream)
    print(f"checked in {time.perf_counter() - start:.1f} s", file=stream)
    return 0 if table.ok else 1
