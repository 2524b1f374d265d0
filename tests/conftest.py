import os
import sys

# the helper modules next to the tests (torch_compare.py) import as top-level modules
sys.path.insert(0, os.path.dirname(__file__))


def pytest_configure(config):
    # every pooled output of the C++ kernels starts as 0xFF bytes (NaN / -1) during the tests, so
    # a kernel that leaves part of its output unwritten fails instead of reading a stale block
    from pyconv._native import _C

    if _C is not None and hasattr(_C, "output_pool_set_poison"):
        _C.output_pool_set_poison(True)
