"""Interop: NumPy's __array__, DLPack in and out (NumPy, PyTorch, CuPy) sharing memory, and a
PyTorch state_dict loaded into the pyconv twin of the model."""

import numpy as np
import pytest

import pyconv
from pyconv import backends
from pyconv.interop import load_torch_state_dict
from torch_compare import require_torch


def test_array_protocol_shares_unless_a_copy_is_asked_or_needed():
    t = pyconv.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert np.shares_memory(np.asarray(t), t._data)
    copied = np.array(t, copy=True)
    assert not np.shares_memory(copied, t._data)
    np.testing.assert_array_equal(copied, t._data)
    as64 = np.asarray(t, dtype=np.float64)
    assert as64.dtype == np.float64 and np.array_equal(as64, t._data)
    with pytest.raises(ValueError, match="avoid copy"):
        np.array(t, dtype=np.float64, copy=False)
    assert np.shares_memory(np.array(t, copy=False), t._data)


def test_numpy_dlpack_round_trip_shares_memory():
    a = np.arange(12.0).reshape(3, 4)[:, 1:]  # non-contiguous: strides must survive
    t = pyconv.from_dlpack(a)
    assert t.shape == (3, 3) and t.dtype == np.float64
    assert np.shares_memory(t._data, a)
    t._data[0, 0] = -1.0
    assert a[0, 0] == -1.0
    assert t.__dlpack_device__() == (1, 0)
    back = np.from_dlpack(t)
    assert np.shares_memory(back, a)
    np.testing.assert_array_equal(back, a)


def test_dlpack_refuses_tensors_that_require_grad_and_non_arrays():
    w = pyconv.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        np.from_dlpack(w)
    assert np.shares_memory(np.from_dlpack(w.detach()), w._data)
    with pytest.raises(TypeError, match="__dlpack__"):
        pyconv.from_dlpack([1.0, 2.0])


def test_torch_dlpack_round_trip_shares_memory():
    torch = require_torch()
    source = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    t = pyconv.from_dlpack(source)
    assert t.shape == (4, 3) and t.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(t), source.numpy())
    np.asarray(t)[1, 2] = 100.0  # writes through to the torch tensor
    assert source[1, 2].item() == 100.0

    out = torch.from_dlpack(pyconv.tensor(np.array([[1.5, -2.0]])) * 2)
    assert out.dtype == torch.float64 and out.tolist() == [[3.0, -4.0]]
    mine = pyconv.zeros(2, 3)
    theirs = torch.from_dlpack(mine)
    theirs += 7
    assert np.all(np.asarray(mine) == 7)


def test_cupy_dlpack_round_trip():
    if "cuda" not in backends.available():
        pytest.skip("needs a CUDA GPU: the cuda backend does not load here")
    import cupy

    source = cupy.arange(6, dtype=cupy.float32)
    t = pyconv.from_dlpack(source)
    assert t.device == "cuda"
    t._data[0] = 5
    assert float(source[0]) == 5
    assert cupy.shares_memory(cupy.from_dlpack(t), source)


def twin(lib):
    """One model source for both libraries."""
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(2, 4, kernel_size=3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 3 * 3, 8), nn.Tanh(), nn.Linear(8, 3),
    )


@pytest.fixture
def trained_torch_model():
    torch = require_torch()
    torch.manual_seed(0)
    model = twin(torch)
    with torch.no_grad():
        model(torch.randn(5, 2, 6, 6) * 3 + 1)  # moves the batch-norm running statistics
    return torch, model.eval()


def test_state_dict_file_from_torch_reproduces_the_outputs(trained_torch_model, tmp_path):
    torch, reference = trained_torch_model
    path = tmp_path / "model.pt"
    torch.save(reference.state_dict(), path)

    model = twin(pyconv)
    missing, unexpected = load_torch_state_dict(model, path)
    assert (missing, unexpected) == ([], [])
    model.eval()
    np.testing.assert_array_equal(np.asarray(model[1].running_var),
                                  reference[1].running_var.numpy())
    assert model[1].num_batches_tracked.item() == 1
    x = np.random.default_rng(1).standard_normal((4, 2, 6, 6)).astype(np.float32)
    with pyconv.no_grad():
        ours = np.asarray(model(pyconv.tensor(x)))
    with torch.no_grad():
        theirs = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)


def test_state_dict_as_a_dict_of_arrays_or_tensors(trained_torch_model):
    torch, reference = trained_torch_model
    state = reference.state_dict()
    model = twin(pyconv)
    load_torch_state_dict(model, {k: v.numpy() for k, v in state.items()})
    np.testing.assert_array_equal(np.asarray(model[0].weight.detach()), state["0.weight"].numpy())
    other = twin(pyconv)
    load_torch_state_dict(other, model.state_dict())  # pyconv tensors too
    np.testing.assert_array_equal(np.asarray(other[5].bias.detach()), state["5.bias"].numpy())


def test_key_and_shape_mismatches_are_listed(trained_torch_model, tmp_path):
    torch, reference = trained_torch_model
    state = dict(reference.state_dict())
    del state["1.running_mean"]
    state["9.weight"] = torch.zeros(3)
    state["0.weight"] = torch.zeros(4, 2, 5, 5)
    with pytest.raises(RuntimeError) as info:
        load_torch_state_dict(twin(pyconv), state)
    message = str(info.value)
    assert '"1.running_mean"' in message and "Missing key(s)" in message
    assert '"9.weight"' in message and "Unexpected key(s)" in message
    assert "size mismatch for 0.weight" in message and "(4, 2, 5, 5)" in message

    del state["9.weight"]
    state["0.weight"] = reference.state_dict()["0.weight"]
    missing, unexpected = load_torch_state_dict(twin(pyconv), state, strict=False)
    assert (missing, unexpected) == (["1.running_mean"], [])


def test_files_that_are_not_a_state_dict(trained_torch_model, tmp_path):
    torch, reference = trained_torch_model
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model": reference.state_dict(), "epoch": 3}, checkpoint)
    with pytest.raises(TypeError, match=r"source\['model'\]"):
        load_torch_state_dict(twin(pyconv), checkpoint)
    tensor_file = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(TypeError, match="not a state_dict"):
        load_torch_state_dict(twin(pyconv), tensor_file)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_torch_state_dict(twin(pyconv), tmp_path / "missing.pt")
