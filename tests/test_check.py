"""pyconv.check: every contract kernel on every backend passes, and a broken kernel is caught."""

import io
import sys

import numpy as np
import pytest

import pyconv
from pyconv import backends
from pyconv import check
from pyconv.backends import contract
from torch_compare import require_torch


def _run(**kwargs):
    out = io.StringIO()
    status = check.run(stream=out, **kwargs)
    return status, out.getvalue()


def _row(text, op, backend, dtype):
    for line in text.splitlines():
        fields = line.split()
        if fields[:3] == [op, backend, dtype]:
            return line
    raise AssertionError(f"no row for {op} {backend} {dtype} in:\n{text}")


@pytest.mark.parametrize("name", ["numpy", "cpu", "simt", "cuda"])
def test_every_contract_kernel_passes_on_each_backend(name):
    if name not in backends.available():
        reasons = {"cuda": "needs a CUDA GPU", "cpu": "pyconv._C is not built",
                   "simt": "the SIMT emulator is unavailable"}
        pytest.skip(f"{reasons.get(name, 'unavailable')}: backend {name!r} does not load here")
    status, text = _run(backends=[name])
    assert status == 0, text
    for kernel in contract.KERNELS:
        for dtype in ("float32", "float64"):
            assert " ok" in _row(text, kernel, name, dtype), text
    assert text.count(f" {name} ") >= 2 * len(contract.KERNELS)
    assert "0 FAIL" in text


def test_the_reference_itself_agrees_with_torch():
    require_torch()
    table = check.collect(backends=["numpy"])
    compared = {r.op for r in table.rows if r.torch_err is not None}
    # only dropout's random masks have no PyTorch counterpart
    assert compared == set(contract.KERNELS) - {"dropout_forward", "dropout_backward"}
    assert table.ok, str(table)


def test_a_broken_kernel_fails_its_row(monkeypatch):
    name = "cpu" if "cpu" in backends.available() else "numpy"
    module = backends.get(name)
    original = module.relu_forward
    monkeypatch.setattr(module, "relu_forward", lambda x: original(x) + x.dtype.type(1e-2))
    status, text = _run(backends=[name], ops="relu")
    assert status == 1
    for dtype in ("float32", "float64"):
        line = _row(text, "relu_forward", name, dtype)
        assert "FAIL" in line and "1.00e-02" in line
        # the rest of the selection (relu_backward, leaky_relu_*) still passes
        assert "FAIL" not in _row(text, "relu_backward", name, dtype)
        assert "FAIL" not in _row(text, "leaky_relu_forward", name, dtype)
    assert "2 FAIL" in text


def test_a_broken_reference_is_caught_by_torch(monkeypatch):
    require_torch()
    module = backends.get("numpy")
    original = module.sigmoid_forward
    monkeypatch.setattr(module, "sigmoid_forward", lambda x: original(x) * x.dtype.type(1.01))
    table = check.collect(backends=["numpy"], ops="sigmoid_forward")
    assert not table.ok
    assert all("vs torch" in r.note for r in table.failures)


def test_a_crashing_kernel_is_a_failed_row(monkeypatch):
    def crash(*args):
        raise MemoryError("out of shared memory")

    if "cpu" not in backends.available():
        pytest.skip("needs a backend other than the reference")
    monkeypatch.setattr(backends.get("cpu"), "tanh_backward", crash)
    table = check.collect(backends=["cpu"], ops="tanh_backward", torch=False)
    assert [r.ok for r in table.rows] == [False, False]
    assert "MemoryError: out of shared memory" in table.rows[0].note


def test_ops_filter_and_header():
    status, text = _run(backends=["numpy"], ops=["softmax", "mse"], torch=False)
    assert status == 0
    ops = {line.split()[0] for line in text.splitlines()
           if line.split()[1:3] == ["numpy", "float32"]}
    assert ops == {"softmax_forward", "softmax_backward", "log_softmax_forward",
                   "log_softmax_backward", "mse_loss_forward", "mse_loss_backward"}
    assert f"pyconv {pyconv.__version__}" in text and "backends available here" in text
    assert "vs torch" not in text  # no PyTorch column when it is not consulted


def test_unavailable_backends_are_listed_not_failed():
    status, text = _run(ops="relu_forward", torch=False)
    assert status == 0
    for name in set(backends._REGISTRY) - set(backends.available()):
        assert f"{name}: unavailable: " in text


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'.*numpy"):
        check.run(backends=["tpu"])
    with pytest.raises(ValueError, match="matches no kernel"):
        check.run(backends=["numpy"], ops="conv3d")


def test_errors_semantics():
    atol, rtol = 1e-5, 1e-4
    assert check.errors([np.inf, np.nan, 1.0], [np.inf, np.nan, 1.0], atol, rtol)[2]
    assert not check.errors([1.0], [np.nan], atol, rtol)[2]
    assert not check.errors([np.inf], [-np.inf], atol, rtol)[2]
    abs_err, rel_err, close, _ = check.errors([2.0, 1e-7], [2.001, 0.0], atol, rtol)
    assert (abs_err, close) == (pytest.approx(1e-3), False)
    assert rel_err == pytest.approx(1e-3 / 2.001)  # the near-zero element is left out
    assert "shape" in check.errors(np.zeros(2), np.zeros(3), atol, rtol)[3]


def test_without_torch_the_reference_alone_judges(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    status, text = _run(backends=["numpy"], ops="linear")
    assert status == 0
    assert "PyTorch: not installed" in text and "vs torch" not in text
