"""bench/bench_cuda.py (pyconv.benchmarks.gpu): the GPU benchmark script runs end to end on the
SIMT emulator (small shapes), checks each kernel against the float64 reference before timing it,
and says why it does not run without a GPU. On a GPU the full comparison with PyTorch runs."""

from __future__ import annotations

import io

import numpy as np
import pytest

from simt_support import require_simt

from pyconv.benchmarks import gpu


def rows(text):
    return [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]


@require_simt()
def test_the_quick_run_on_the_emulator_checks_and_times_every_kind_of_case():
    out = io.StringIO()
    status = gpu.run("simt", quick=True, case="MNIST layer 1,depthwise,LSTMCell,GRUCell,LeNet",
                     repeats=1, stream=out)
    assert status == 0, out.getvalue()
    table = rows(out.getvalue())
    names = [r.split("|")[1].strip() for r in table]
    assert names == ["conv fwd MNIST layer 1", "conv bwd MNIST layer 1", "conv fwd depthwise",
                     "conv bwd depthwise", "LSTMCell fwd+bwd", "GRUCell fwd+bwd",
                     "train step LeNetMNIST (Adam)"]
    for row in table:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert float(cells[2]) > 0
        if not cells[0].startswith("train"):
            assert float(cells[7]) < 1e-5


@require_simt()
def test_a_wrong_kernel_is_reported_and_fails_the_run(monkeypatch):
    from pyconv.backends import simt

    real = simt.conv2d_forward
    monkeypatch.setattr(simt, "conv2d_forward", lambda *a, **k: real(*a, **k) + np.float32(0.01))
    out = io.StringIO()
    assert gpu.run("simt", quick=True, case="conv fwd MNIST layer 1", repeats=1, stream=out) == 1
    assert "FAIL" in out.getvalue()


def test_without_a_gpu_the_default_run_says_why_and_succeeds():
    from pyconv.backends import cuda as cuda_backend

    if cuda_backend.unavailable_reason() is None:
        pytest.skip("checks the behaviour of a machine without a CUDA GPU")
    out = io.StringIO()
    assert gpu.run("cuda", stream=out) == 0
    assert "need the cuda backend" in out.getvalue()


def test_an_unknown_case_is_an_error():
    with pytest.raises(ValueError, match="no GPU benchmark case matches"):
        gpu.run("simt", quick=True, case="no such case", stream=io.StringIO())


def _gpu_reason():
    from pyconv.backends import cuda as cuda_backend

    return cuda_backend.unavailable_reason()


@pytest.mark.skipif(_gpu_reason() is not None, reason=f"needs a CUDA GPU: {_gpu_reason()}")
def test_the_quick_run_on_the_gpu_passes_its_checks():
    out = io.StringIO()
    assert gpu.run("cuda", quick=True, repeats=2, stream=out) == 0, out.getvalue()
    assert len(rows(out.getvalue())) == len(gpu.all_cases(quick=True))
