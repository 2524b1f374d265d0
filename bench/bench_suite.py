"""The issue-4 benchmark suite, pyconv vs PyTorch (or the NumPy reference), interleaved, at 1 and
2 threads (see :mod:`pyconv.benchmarks.suite`). Same as ``pyconv bench``:

    python bench/bench_suite.py                          # every case, 1 and 2 threads
    python bench/bench_suite.py --case conv --against torch,numpy --threads 1
    python bench/bench_suite.py --quick                  # small shapes, a smoke run
"""

import sys

from pyconv.benchmarks.suite import main

if __name__ == "__main__":
    sys.exit(main())
