"""Timing machinery of ``pyconv bench``: interleaved runs, statistics, thread control, and the
machine's limits measured in the same run (fp32 FMA peak, memory bandwidth).

Method (../shared/design/PERFORMANCE.md): every contender of a case is warmed up, then the
contenders run round-robin (A B A B ...) so that drifts in machine load hit them alike; per
contender the median, min and max of the samples are kept. Ratios are taken between medians of
one interleaved run, never across runs.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

# "cpu" is this process's CPU time (all its threads): steadier than wall time on a machine shared
# with other jobs, but at 2 threads it counts both threads' work (and any spin-waiting), so it is
# a measure of work, not of elapsed time.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


@dataclass
class Stats:
    """Seconds per call of one contender: median, min, max over ``samples`` calls."""

    median: float
    min: float
    max: float
    samples: int

    @classmethod
    def of(cls, seconds):
        return cls(statistics.median(seconds), min(seconds), max(seconds), len(seconds))

    def as_dict(self) -> dict:
        return {"median_ms": 1e3 * self.median, "min_ms": 1e3 * self.min,
                "max_ms": 1e3 * self.max, "samples": self.samples}


def interleave(fns: dict, repeats: int, warmup: int = 1, clock=time.perf_counter,
               budget: float = 0.0, max_repeats: int = 200) -> dict:
    """Time each no-argument callable of ``fns`` (name -> fn), round-robin; name -> Stats.

    ``warmup`` untimed rounds come first (also round-robin). ``repeats`` is the minimum number
    of timed rounds; when ``budget`` > 0 the round count grows (up to ``max_repeats``) until the
    rounds are expected to take about ``budget`` seconds, estimated from the first timed round,
    so that cheap cases get many samples and expensive ones the minimum."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    rounds = max(int(repeats), 1)
    done = 0
    while done < rounds:
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
        done += 1
        if done == 1 and budget > 0:
            per_round = sum(t[0] for t in times.values())
            if per_round > 0:
                rounds = max(rounds, min(max_repeats, math.ceil(budget / per_round)))
    return {name: Stats.of(seconds) for name, seconds in times.items()}


# ----- threads --------------------------------------------------------------------------------


def import_torch():
    """torch, or None when it is not installed (the suite then compares with NumPy)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


@contextmanager
def threads(n: int, torch=None):
    """Run the block with ``n`` threads in pyconv's native kernels, in torch (when given) and in
    NumPy's BLAS (through threadpoolctl when it is installed); previous settings come back
    after."""
    import pyconv

    before = pyconv.get_num_threads()
    torch_before = torch.get_num_threads() if torch is not None else None
    pyconv.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    limiter = None
    try:
        import threadpoolctl

        limiter = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        pass
    try:
        yield
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(torch_before)
        pyconv.set_num_threads(before)


def blas_threads_note() -> str:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return "NumPy BLAS threads not pinned (threadpoolctl not installed)"
    return "NumPy BLAS threads pinned with threadpoolctl"


# ----- machine limits -------------------------------------------------------------------------


def fma_peak_gflops(n_threads: int, clock: str = "wall", seconds: float = 0.3):
    """The fp32 FMA peak of ``n_threads`` threads in GFLOP/s, measured now by a small FMA loop in
    pyconv._C; None without the native extension. The loop times itself by wall clock; with the
    cpu clock the result is rescaled to GFLOP per second of this process's CPU time, so that it
    is comparable with the kernels' rates measured in the same unit."""
    from .. import _native

    if _native._C is None or not hasattr(_native._C, "fma_peak_gflops"):
        return None
    wall, cpu = time.perf_counter(), time.process_time()
    peak = float(_native._C.fma_peak_gflops(n_threads, seconds))
    if clock == "cpu":
        spent = time.process_time() - cpu
        if spent > 0:
            peak *= (time.perf_counter() - wall) / spent
    return peak


def bandwidth_gbs(n_threads: int, mib: int = 64, repeats: int = 5, clock: str = "wall"):
    """Memory bandwidth in GB/s: ``a = b + c`` (STREAM "add": 2 reads + 1 write of ``mib`` MiB
    float32 arrays, 3 arrays' bytes counted), the best of ``repeats``; with 64 MiB per array
    the arrays exceed the L3, so this is DRAM bandwidth. Measured twice and the higher kept:
    with NumPy split over ``n_threads`` Python threads (NumPy releases the GIL in the loop;
    ordinary stores, so each line of ``a`` is also read for ownership: ~20% below what a kernel
    that streams its output reaches here), and with pyconv._C's loop with non-temporal stores
    (the access pattern of pyconv's bandwidth-bound kernels), when the extension is built."""
    n = mib * (1 << 20) // 4
    a, b, c = (np.ones(n, np.float32) for _ in range(3))
    bounds = np.linspace(0, n, n_threads + 1).astype(np.int64)
    parts = [slice(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    measure = CLOCKS[clock]

    def add(part):
        np.add(b[part], c[part], out=a[part])

    best = math.inf
    for _ in range(repeats):
        start = measure()
        if n_threads == 1:
            add(parts[0])
        else:
            workers = [threading.Thread(target=add, args=(p,)) for p in parts]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        best = min(best, measure() - start)
    numpy_gbs = 3 * a.nbytes / best / 1e9 if best > 0 else None
    native_gbs = _native_stream_gbs(n_threads, mib, repeats, clock)
    rates = [r for r in (numpy_gbs, native_gbs) if r]
    return max(rates) if rates else None


def _native_stream_gbs(n_threads: int, mib: int, repeats: int, clock: str):
    """pyconv._C.stream_bandwidth_gbs (wall clock), rescaled to bytes per second of this
    process's CPU time with the cpu clock; None without the extension."""
    from .. import _native

    if _native._C is None or not hasattr(_native._C, "stream_bandwidth_gbs"):
        return None
    wall, cpu = time.perf_counter(), time.process_time()
    gbs = float(_native._C.stream_bandwidth_gbs(n_threads, mib, repeats))
    if clock == "cpu":
        spent = time.process_time() - cpu
        if spent > 0:
            gbs *= (time.perf_counter() - wall) / spent
    return gbs


def array_at_offset(values: np.ndarray, offset: int) -> np.ndarray:
    """A C-contiguous copy of ``values`` whose data starts ``offset`` bytes (a multiple of the
    itemsize, below 4096) past a 4 KiB boundary: for measuring and testing how kernels behave
    with their arrays at chosen positions modulo a page."""
    if not 0 <= offset < 4096 or offset % values.itemsize:
        raise ValueError(f"array_at_offset: offset must be a multiple of {values.itemsize} in [0, 4096), "
                         f"got {offset}")
    buf = np.empty(values.size + 8192 // values.itemsize, values.dtype)
    start = ((-buf.ctypes.data) % 4096 + offset) // values.itemsize
    out = buf[start:start + values.size].reshape(values.shape)
    out[...] = values
    return out
