"""The ``cuda`` backend: how it behaves without a GPU, and (on a GPU) every kernel against the
NumPy reference through both launchers.

The GPU tests replay contract-kernel calls recorded from a workload that exercises every op with
CUDA code (forward, backward and optimizer steps) on the NumPy reference: each call runs again on
the backend under test with the same arguments, and its outputs and in-place updates must match.
Here (no GPU) the same replay runs through the cuda backend's own code with NumPy arrays that pass
for CuPy ones, launching on the SIMT emulator, which proves both the harness and the backend's
host-side logic; the GPU tests skip with "needs a CUDA GPU: <why>".
"""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
import types

import numpy as np
import pytest
from simt_support import require_simt

import pyconv
import pyconv.functional as F
from pyconv import backends
from pyconv.backends import cuda as cuda_backend
from pyconv.backends import cuda_launchers, numpy_ref
from pyconv._sources import kernels_dir
from pyconv.backends.cuda_glue import glue_functions

NO_GPU = cuda_backend.unavailable_reason()
needs_gpu = pytest.mark.skipif(NO_GPU is not None, reason=f"needs a CUDA GPU: {NO_GPU}")
needs_no_gpu = pytest.mark.skipif(NO_GPU is None, reason="checks the behaviour of a machine without a CUDA GPU")


# ----- without a GPU ---------------------------------------------------------------------------


def test_importing_pyconv_and_listing_backends_never_touches_cuda():
    code = "import pyconv; print(pyconv.backends.available()); print(pyconv.cuda.is_available())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed, available = done.stdout.split("\n")[:2]
    assert ("'cuda'" in listed) == (NO_GPU is None) and available == str(NO_GPU is None)


@needs_no_gpu
def test_the_cuda_backend_says_why_it_is_unavailable():
    assert "cuda" not in backends.available()
    with pytest.raises(RuntimeError, match=r"backend 'cuda' is not available: RuntimeError: (no CUDA GPU: |CuPy)"):
        backends.get("cuda")
    assert not pyconv.cuda.is_available() and pyconv.cuda.device_count() == 0
    assert cuda_backend.device is None and cuda_backend.launcher_name() is None


@needs_no_gpu
def test_moving_a_tensor_to_cuda_raises_with_the_reason():
    t = pyconv.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"device 'cuda' is not supported here: .*(no CUDA GPU|CuPy)"):
        t.to("cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU|CuPy"):
        t.cuda()
    assert t.to("cpu") is t and t.cpu() is t
    with pytest.raises(RuntimeError, match="unknown device 'tpu'"):
        backends.transfer(t, "tpu")


def test_without_cupy_the_reason_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    assert "install cupy-cuda13x" in cuda_backend.unavailable_reason()


def test_the_launcher_comes_from_the_environment_else_nvrtc_decides(monkeypatch):
    monkeypatch.setenv("PYCONV_CUDA_LAUNCHER", "native")
    assert cuda_launchers.default_launcher() == "native"
    monkeypatch.setenv("PYCONV_CUDA_LAUNCHER", "nvcc")
    with pytest.raises(ValueError, match=r"PYCONV_CUDA_LAUNCHER='nvcc': expected one of \['cupy', 'native'\]"):
        cuda_launchers.default_launcher()
    monkeypatch.delenv("PYCONV_CUDA_LAUNCHER")
    monkeypatch.setattr(cuda_launchers, "nvrtc_error", lambda: None)
    assert cuda_launchers.default_launcher() == "cupy"
    monkeypatch.setattr(cuda_launchers, "nvrtc_error", lambda: "OSError: libnvrtc.so.13 not found")
    assert cuda_launchers.default_launcher() == "native"
    with pytest.raises(ValueError, match="unknown CUDA launcher 'jit'"):
        cuda_launchers.make_device("jit")


def test_nvrtc_options_include_the_kernels_and_change_with_the_headers(monkeypatch, tmp_path):
    options = cuda_launchers.nvrtc_options()
    assert options[:2] == ("-I" + str(kernels_dir()), "--std=c++17")
    monkeypatch.setattr(cuda_launchers, "kernels_dir", lambda: tmp_path)
    (tmp_path / "compat.cuh").write_text("// one\n")
    first = cuda_launchers.nvrtc_options()
    (tmp_path / "compat.cuh").write_text("// two\n")
    assert first[-1] != cuda_launchers.nvrtc_options()[-1]  # CuPy's cache key changes


# ----- recorded contract-kernel calls --------------------------------------------------------


@dataclasses.dataclass
class Call:
    name: str
    args: tuple  # as passed (copied before the call)
    kwargs: dict
    out: object  # what the reference returned
    args_after: tuple  # the arguments after the call: in-place kernels update some


class Recorder:
    """A backend that runs the NumPy reference and records every kernel call."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        reference = getattr(numpy_ref, name)

        def kernel(*args, **kwargs):
            before = copy.deepcopy((args, kwargs))
            out = reference(*args, **kwargs)
            self.calls.append(Call(name, *before, copy.deepcopy(out), copy.deepcopy(args)))
            return out

        return kernel


def workload(dtype):
    """Forward and backward of every op that has CUDA code, on shapes that reach the kernels'
    different paths (warp / block / column softmax, float4 / scalar elementwise), plus optimizer
    steps."""
    rng = np.random.default_rng(7)

    def t(*shape, grad=True):
        return pyconv.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=grad)

    def backprop(y):  # a non-trivial upstream gradient
        (y * pyconv.tensor(rng.standard_normal(y.shape).astype(dtype))).sum().backward()

    x = t(2, 3, 9, 8)
    backprop(F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True))
    backprop(F.avg_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True, count_include_pad=False))
    backprop(F.avg_pool2d(x, 2, divisor_override=3))
    backprop(F.adaptive_avg_pool2d(x, (4, 3)))
    for shape, dim in (((5, 7), 1), ((3, 300), -1), ((2, 6, 3), 1)):
        backprop(F.softmax(t(*shape), dim))
        backprop(F.log_softmax(t(*shape), dim))
    for shape in ((4, 8), (3, 5, 7)):
        for activation in (F.relu, F.sigmoid, F.tanh, lambda v: F.leaky_relu(v, 0.2), F.gelu,
                           lambda v: F.gelu(v, approximate="tanh")):
            backprop(activation(t(*shape)))
    backprop(F.dropout(t(6, 10), p=0.3))

    logits, target = t(6, 5), pyconv.tensor(rng.integers(0, 5, 6))
    F.cross_entropy(logits, target, weight=pyconv.tensor(rng.random(5).astype(dtype)), ignore_index=2,
                    label_smoothing=0.1).backward()
    F.nll_loss(F.log_softmax(logits, 1), target, reduction="sum").backward()
    F.mse_loss(t(4, 3), t(4, 3, grad=False)).backward()
    probabilities = pyconv.tensor(rng.random((5, 2)).astype(dtype))
    F.binary_cross_entropy(F.sigmoid(t(5, 2)), probabilities, weight=t(5, 2, grad=False).abs()).backward()
    F.binary_cross_entropy_with_logits(t(5, 2), probabilities, reduction="sum",
                                       pos_weight=pyconv.tensor(rng.random(2).astype(dtype))).backward()

    x4, weight, bias = t(4, 3, 2, 2), t(3), t(3)
    running_mean, running_var = pyconv.zeros(3, dtype=dtype), pyconv.ones(3, dtype=dtype)
    backprop(F.batch_norm(x4, running_mean, running_var, weight, bias, training=True, momentum=0.1, eps=1e-5))
    backprop(F.batch_norm(x4, running_mean, running_var, weight, bias, training=False))

    image, kernel = t(2, 4, 7, 6), t(6, 2, 3, 3)
    backprop(F.conv2d(image, kernel, t(6), stride=(2, 1), padding=1, dilation=(1, 2), groups=2))
    backprop(F.conv2d(image, t(4, 1, 3, 3), None, padding=1, groups=4))  # depthwise
    backprop(F.conv_transpose2d(image, t(4, 3, 3, 3), t(3), stride=2, padding=1, output_padding=1))
    backprop(F.linear(t(5, 9), t(7, 9), t(7)))

    sequence = t(3, 2, 5)  # (L, B, I)
    for cell in (pyconv.nn.RNNCell(5, 4), pyconv.nn.RNNCell(5, 4, nonlinearity="relu"),
                 pyconv.nn.LSTMCell(5, 4), pyconv.nn.GRUCell(5, 4)):
        cell.to(dtype)
        out = cell(sequence[0])
        backprop(out[0] if isinstance(out, tuple) else out)
    for layer in (pyconv.nn.RNN(5, 4, num_layers=2), pyconv.nn.RNN(5, 4, nonlinearity="relu"),
                  pyconv.nn.LSTM(5, 4, bidirectional=True), pyconv.nn.GRU(5, 4)):
        layer.to(dtype)
        backprop(layer(sequence)[0])

    for make in (lambda ps: pyconv.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                 lambda ps: pyconv.optim.Adam(ps, lr=0.01, amsgrad=True),
                 lambda ps: pyconv.optim.AdamW(ps, lr=0.01, weight_decay=0.1)):
        params = [t(10), t(2, 3)]
        optimizer = make(params)
        for _ in range(2):
            optimizer.zero_grad()
            sum((p * p * p).sum() for p in params).backward()
            optimizer.step()


@pytest.fixture(scope="module", params=["float64", "float32"])
def recorded(request):
    recorder = Recorder()
    with pytest.MonkeyPatch.context() as patch:  # a backend registered for this fixture only
        patch.setitem(backends._REGISTRY, "cuda_test_recorder", __name__)
        patch.setitem(backends._loaded, "cuda_test_recorder", recorder)
        with backends.use("cuda_test_recorder"):
            workload(np.dtype(request.param))
    return request.param, recorder.calls


def test_the_workload_calls_every_kernel_that_has_cuda_code(recorded):
    _, calls = recorded
    missing = sorted(set(glue_functions()) - {c.name for c in calls})
    assert not missing, f"add calls of these kernels to workload(): {missing}"


def assert_same(got, want, dtype, where):
    """Results equal up to the dtype's tolerance (exact for integer and bool arrays)."""
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, dtype, f"{where}[{i}]")
        return
    if want is None or isinstance(want, (bool, int, str)):
        assert got == want, where
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, f"{where}: {got.shape} {got.dtype} vs {want.shape} {want.dtype}"
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=where)
        return
    rtol = 1e-10 if dtype == "float64" else 1e-5
    scale = float(np.max(np.abs(want[np.isfinite(want)]), initial=1.0))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=where)


def replay(calls, kernels, dtype, to_device, to_host):
    """Run each recorded call with ``kernels`` (a backend's contract functions)."""
    for number, call in enumerate(calls):
        args = to_device(copy.deepcopy(call.args))
        kwargs = {k: to_device(v) for k, v in copy.deepcopy(call.kwargs).items()}
        out = kernels[call.name](*args, **kwargs)
        where = f"call {number}: {call.name}"
        assert_same(to_host(out), call.out, dtype, where)
        assert_same(to_host(args), call.args_after, dtype, f"{where} (arguments after the call)")


class StandInCupyArray(np.ndarray):
    """A NumPy array that passes for a CuPy one: its type lives in a "cupy" module, ``.get()``
    copies it to a plain host array and ``.data.ptr`` is its address."""

    def get(self):
        return np.array(self)

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.ctypes.data)


StandInCupyArray.__module__ = "cupy._stand_in"


def stand_in_cupy():
    """A "cupy" module of NumPy functions whose arrays are StandInCupyArray s."""
    module = types.ModuleType("cupy")
    module.ndarray = StandInCupyArray

    def as_device(value):
        return value.view(StandInCupyArray) if isinstance(value, np.ndarray) else value

    def function(name):
        numpy_function = getattr(np, name)
        if not callable(numpy_function) or isinstance(numpy_function, type):
            return numpy_function
        return lambda *args, **kwargs: as_device(numpy_function(*args, **kwargs))

    module.asarray = lambda a, dtype=None: as_device(np.array(a, dtype=dtype))  # a copy, like host -> GPU
    module.__getattr__ = function
    return module


@require_simt()
def test_the_cuda_backend_on_the_emulator_with_stand_in_cupy_arrays(recorded, monkeypatch):
    """Everything the cuda backend does around the launches (device arrays in and out, reference
    kernels on host copies with in-place updates written back), on CPU: the glue launches on the
    emulator with arrays that pass for CuPy's."""
    from pyconv.backends.simt import SimtDevice

    dtype, calls = recorded
    fake = stand_in_cupy()
    monkeypatch.setitem(sys.modules, "cupy", fake)
    device = SimtDevice()
    device.xp = fake
    kernels = cuda_backend.bind_kernels(device)
    assert {n for n, k in kernels.items() if k.runs_on_reference} == set(backends.KERNELS) - set(glue_functions())

    def to_device(value):
        converted = cuda_backend.to_device(value)
        assert not isinstance(value, np.ndarray) or type(converted) is StandInCupyArray
        return converted

    replay(calls, kernels, dtype, to_device, cuda_backend.to_host)
    assert sum(device.launches.values()) >= len({c.name for c in calls} & set(glue_functions()))


def _same_arrays(a, b) -> bool:
    return not isinstance(a, np.ndarray) or np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def test_reference_kernels_write_in_place_updates_back_to_the_device(recorded, monkeypatch):
    """Every kernel on the reference through host copies (as kernels without CUDA code run): the
    optimizer steps and batch-norm running statistics must still update the device arrays."""
    from pyconv.backends.cuda_glue import binding

    dtype, calls = recorded
    monkeypatch.setitem(sys.modules, "cupy", stand_in_cupy())
    monkeypatch.setattr(binding, "glue_functions", dict)
    kernels = cuda_backend.bind_kernels(device=None)
    assert all(kernel.runs_on_reference for kernel in kernels.values())
    in_place = [c for c in calls if any(not _same_arrays(a, b) for a, b in zip(c.args, c.args_after))]
    assert {c.name for c in in_place} >= {"sgd_step", "adam_step", "batch_norm_forward"}
    replay(in_place, kernels, dtype, cuda_backend.to_device, cuda_backend.to_host)


@needs_gpu
@pytest.mark.parametrize("launcher", ["cupy", "native"])
def test_every_kernel_on_the_gpu_matches_the_reference(recorded, launcher):
    dtype, calls = recorded
    if launcher == "native":
        try:
            cuda_launchers.native_module()
        except ImportError as exc:
            pytest.skip(f"needs a CUDA GPU with pyconv._cuda built: {exc}")
    device = cuda_launchers.make_device(launcher)
    replay(calls, cuda_backend.bind_kernels(device), dtype, cuda_backend.to_device, cuda_backend.to_host)
    kernels_with_code = {c.name for c in calls} & set(glue_functions())
    assert kernels_with_code and sum(device.launches.values()) >= len(kernels_with_code)


# ----- tensors on the GPU ----------------------------------------------------------------------


@needs_gpu
def test_tensors_round_trip_and_gradients_flow_back_to_the_host():
    x = pyconv.tensor(np.arange(-3.0, 3.0).reshape(2, 3), requires_grad=True)
    on_gpu = x.to("cuda")
    assert on_gpu.device == "cuda" and type(on_gpu._data).__module__.startswith("cupy")
    with backends.use("cuda"):
        y = F.relu(on_gpu) * 2.0
    back = y.cpu()
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.detach().numpy(), 2.0 * np.maximum(x.detach().numpy(), 0.0))
    back.sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), 2.0 * (x.detach().numpy() > 0))
    assert x.cuda().cpu().tolist() == x.tolist()
