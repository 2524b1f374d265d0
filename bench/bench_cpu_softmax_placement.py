"""softmax_backward's time against where its inputs sit modulo 4 KiB (docs/cpu/pool_softmax.md).

grad_y and y (4096, 1000) float32 are copied to chosen offsets past a 4 KiB boundary; the
output is the kernel's own (placed apart from both since 2026-11-27). Before that placement,
grad_y 32-64 bytes from y with the output at y's offset took 2.1-2.4x longer. Prints the median
ms per (grad_y - y offset, y offset) and where the output landed.

    python bench/bench_cpu_softmax_placement.py              # 1 thread
    python bench/bench_cpu_softmax_placement.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import pyconv
from pyconv.benchmarks.harness import array_at_offset

ROWS, COLS = 4096, 1000
RELATIVE = (0, 32, 64, -32, -64, 96)
Y_OFFSETS = (0, 512, 1024, 2048, 3072)


def median_ms(kernel, g, y, repeats):
    kernel(g, y, 1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = kernel(g, y, 1)
        times.append(time.perf_counter() - start)
        where = out.ctypes.data % 4096
        del out
    return float(np.median(times)) * 1e3, where


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    C = pyconv._native._C
    if C is None:
        print("pyconv._C is not built: nothing to measure", file=sys.stderr)
        return 2
    pyconv.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    g0 = rng.standard_normal((ROWS, COLS), dtype=np.float32)
    y0 = rng.random((ROWS, COLS), dtype=np.float32)
    print(f"softmax_backward {ROWS}x{COLS} float32, {args.threads} thread(s), median of {args.repeats}; "
          f"columns: y's offset modulo 4 KiB")
    print("grad_y - y | " + " | ".join(f"{o:>11d}" for o in Y_OFFSETS))
    for rel in RELATIVE:
        cells = []
        for y_offset in Y_OFFSETS:
            g, y = array_at_offset(g0, (y_offset + rel) % 4096), array_at_offset(y0, y_offset)
            ms, where = median_ms(C.softmax_backward, g, y, args.repeats)
            cells.append(f"{ms:5.2f} (@{where:4d})")
        print(f"{rel:10d} | " + " | ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
