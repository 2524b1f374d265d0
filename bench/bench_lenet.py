"""LeNet-MNIST training step, pyconv vs the textbook im2col baseline (see
:mod:`pyconv.benchmarks.lenet`). Same as ``pyconv bench``: ``python bench/bench_lenet.py --repeats 40``."""

import sys

from pyconv.benchmarks.lenet import main

if __name__ == "__main__":
    sys.exit(main())
