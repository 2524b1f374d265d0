"""GPU benchmarks of pyconv's CUDA kernels vs PyTorch/cuDNN (pyconv.benchmarks.gpu):

    python bench/bench_cuda.py                        # every case, on the GPU
    python bench/bench_cuda.py --case "deep,train"    # a selection
    python bench/bench_cuda.py --device simt --quick  # smoke run on the SIMT emulator (no GPU)

Without a GPU the default run prints why and exits 0.
"""

import sys

from pyconv.benchmarks.gpu import main

if __name__ == "__main__":
    sys.exit(main())
