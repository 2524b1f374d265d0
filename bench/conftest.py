"""Lets ``pytest bench/`` run its correctness checks even without pytest-benchmark."""

import pytest

try:
    import pytest_benchmark  # noqa: F401
except ImportError:
    @pytest.fixture
    def benchmark():
        pytest.skip("pytest-benchmark is not installed (pip install pytest-benchmark)")
