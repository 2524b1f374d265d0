"""pytest-benchmark entry points of the issue-4 suite on its quick shapes: pyconv (default
backend: cpu when built) and PyTorch for every case of pyconv.benchmarks.cases, one group per
case. Interleaved ratios and the targets come from ``pyconv bench`` (bench/bench_suite.py); this
file is for pytest-benchmark's history and comparisons. Run: ``pytest bench/test_bench_suite.py``.
"""

import pytest

from pyconv.benchmarks import cases, suite

QUICK = cases.all_cases(quick=True)
ROUNDS, WARMUP = 10, 2


def _ids(case):
    return case.label().replace(" ", "_")


@pytest.mark.parametrize("case", QUICK, ids=_ids)
def test_pyconv(benchmark, case):
    benchmark.group = case.label()
    fn = case.make(suite.default_backend())
    benchmark.pedantic(fn, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)


@pytest.mark.parametrize("case", QUICK, ids=_ids)
def test_torch(benchmark, case):
    torch = pytest.importorskip("torch")
    benchmark.group = case.label()
    fn = case.make_torch(torch)
    benchmark.pedantic(fn, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
