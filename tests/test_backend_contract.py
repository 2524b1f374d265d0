"""The backend registry and the kernel contract."""

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import pyconv
from pyconv import backends
from pyconv.backends import contract


def test_contract_lists_every_kernel_once_with_a_docstring():
    assert len(contract.KERNELS) == len(set(contract.KERNELS)) >= 50
    for name in contract.KERNELS:
        fn = getattr(contract, name)
        assert fn.__doc__ and fn.__doc__.strip(), f"{name} has no docstring"


@pytest.mark.parametrize("backend_name", backends.available())
def test_backend_implements_the_whole_contract_with_its_parameter_names(backend_name):
    module = backends.get(backend_name)
    for name in contract.KERNELS:
        impl = getattr(module, name, None)
        assert impl is not None, f"backend {backend_name!r} lacks kernel {name}"
        want = list(inspect.signature(getattr(contract, name)).parameters)
        got = list(inspect.signature(impl).parameters)
        assert got == want, f"{backend_name}.{name}{tuple(got)} differs from the contract {tuple(want)}"


def test_default_is_cpu_when_built_else_the_numpy_reference():
    assert "numpy" in backends.available()
    if not os.environ.get("PYCONV_BACKEND"):
        want = "cpu" if "cpu" in backends.available() else "numpy"
        assert backends.current() is backends.get(want)


def test_default_falls_back_to_numpy_without_the_native_extension():
    code = ("import sys; sys.modules['pyconv._C'] = None\n"
            "import pyconv; print(pyconv.backends.current().name)")
    env = {k: v for k, v in os.environ.items() if k != "PYCONV_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "numpy"


def test_use_selects_and_restores(monkeypatch):
    calls = []

    class Recorder:
        def __getattr__(self, name):
            real = getattr(backends.get("numpy"), name)

            def wrapped(*args, **kwargs):
                calls.append(name)
                return real(*args, **kwargs)

            return wrapped

    monkeypatch.setitem(sys.modules, "pyconv_test_recorder", Recorder())
    # registered for this test only: later tests (pyconv check) list every available backend
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    monkeypatch.setattr(backends, "_loaded", dict(backends._loaded))
    backends.register("recorder", "pyconv_test_recorder")
    before = backends.current()
    x = pyconv.randn(3, requires_grad=True)
    with backends.use("recorder"):
        y = pyconv.functional.relu(x)
    assert backends.current() is before
    y.sum().backward()  # backward runs on the backend of its forward
    assert calls == ["relu_forward", "relu_backward"]


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown backend 'nope': expected one of .*numpy"):
        with backends.use("nope"):
            pass


def test_environment_variable_selects_the_backend():
    code = "import pyconv; print(pyconv.backends.current().name)"
    env = dict(os.environ, PYCONV_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "numpy"
    env["PYCONV_BACKEND"] = "nope"
    code = "import pyconv; pyconv.functional.relu(pyconv.ones(2))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "unknown backend 'nope'" in out.stderr


def test_op_layer_only_calls_contract_kernels():
    """Every ``ctx.backend.<name>`` used in pyconv/ops names a contract kernel."""
    import re
    from pathlib import Path

    ops_dir = Path(pyconv.__file__).parent / "ops"
    used = set()
    for path in ops_dir.glob("*.py"):
        used |= set(re.findall(r"backend\(?\)?\.(\w+)\(", path.read_text()))
    assert used, "no backend calls found"
    assert used <= set(contract.KERNELS), sorted(used - set(contract.KERNELS))


def test_float32_stays_float32_through_a_layer():
    lin = pyconv.nn.Linear(4, 3)
    y = pyconv.functional.relu(lin(pyconv.randn(2, 4)))
    assert y.dtype == np.float32
