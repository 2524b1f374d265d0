"""Tensor construction, dtypes, conversion, indexing and shape methods."""

import numpy as np
import pytest

import pyconv


def test_factories_follow_pytorch_dtypes():
    assert pyconv.tensor([1.0, 2.0]).dtype == np.float32
    assert pyconv.tensor([1, 2]).dtype == np.int64
    assert pyconv.tensor([True, False]).dtype == np.bool_
    assert pyconv.tensor(np.zeros(2)).dtype == np.float64
    assert pyconv.tensor([1, 2], dtype=pyconv.float64).dtype == np.float64
    assert pyconv.zeros(2, 3).shape == (2, 3) and pyconv.zeros((2, 3)).dtype == np.float32
    assert pyconv.ones(4, dtype=np.float64).dtype == np.float64
    assert pyconv.arange(5).dtype == np.int64 and pyconv.arange(0.0, 1.0, 0.25).shape == (4,)
    assert pyconv.randn(3, 2).dtype == np.float32 and pyconv.rand(2).dtype == np.float32
    assert pyconv.full((2,), 7).dtype == np.int64 and pyconv.full((2,), 0.5).dtype == np.float32


def test_tensor_copies_but_from_numpy_shares():
    a = np.zeros(3, dtype=np.float32)
    t = pyconv.tensor(a)
    s = pyconv.from_numpy(a)
    a[0] = 5
    assert t[0].item() == 0 and s[0].item() == 5
    with pytest.raises(TypeError, match="expected np.ndarray"):
        pyconv.from_numpy([1, 2])


def test_manual_seed_makes_draws_reproducible():
    pyconv.manual_seed(123)
    a = pyconv.randn(5).numpy()
    pyconv.manual_seed(123)
    np.testing.assert_array_equal(a, pyconv.randn(5).numpy())
    assert not np.array_equal(a, pyconv.randn(5).numpy())


def test_properties_and_conversions():
    t = pyconv.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.shape == (2, 2) and t.ndim == 2 and t.dim() == 2 and t.numel() == 4
    assert t.size() == (2, 2) and t.size(1) == 2 and len(t) == 2
    assert t.device == "cpu" and t.device.type == "cpu"
    assert t.is_leaf and t.requires_grad and t.grad is None
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert t.sum().item() == 10.0 and float(t[1, 1]) == 4.0
    with pytest.raises(RuntimeError, match="requires grad"):
        t.numpy()
    assert t.detach().numpy().dtype == np.float32
    assert t.double().dtype == np.float64 and t.long().dtype == np.int64
    assert t.to(pyconv.float64).dtype == np.float64 and t.to("cpu") is t
    with pytest.raises(RuntimeError, match="'cuda' is not supported"):
        t.to("cuda")
    with pytest.raises(ValueError, match="cannot be converted to Scalar"):
        t.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)


def test_cast_is_differentiable():
    x = pyconv.tensor([1.0, 2.0], requires_grad=True)
    x.double().sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_repr_looks_like_pytorch():
    assert repr(pyconv.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(pyconv.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=pyconv.float64" in repr(pyconv.tensor([1.0], dtype=np.float64))
    assert repr(pyconv.ones(1, requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert "grad_fn=<MulBackward>" in repr(pyconv.ones(1, requires_grad=True) * 2)


def test_indexing_and_setitem():
    t = pyconv.arange(12).reshape(3, 4)
    assert t[1].tolist() == [4, 5, 6, 7]
    assert t[:, 1].tolist() == [1, 5, 9]
    assert t[t > 9].tolist() == [10, 11]
    assert t[pyconv.tensor([2, 0])].shape == (2, 4)
    t[0, 0] = 100
    assert t[0, 0].item() == 100
    w = pyconv.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w[0] = 2.0


def test_comparisons_return_bool_tensors_without_grad():
    x = pyconv.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for c in (x > 1, x >= 2, x < 2, x <= 1, x == 2, x != 2):
        assert c.dtype == np.bool_ and not c.requires_grad
    assert (x > 1).tolist() == [False, True, True]
    assert x.argmax().item() == 2 and x.argmax(dim=0, keepdim=True).shape == (1,)


def test_shape_errors_are_clear():
    x = pyconv.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"shape '\[-1, 4\]' is invalid for input of size 6"):
        x.view(-1, 4)
    with pytest.raises(ValueError, match=r"sizes of tensors must match except in dimension 0"):
        pyconv.cat([x, pyconv.zeros(2, 4)])
    with pytest.raises(ValueError, match="expects each tensor to be equal size"):
        pyconv.stack([x, pyconv.zeros(3, 2)])
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.sum(dim=2)
    with pytest.raises(ValueError, match="not a permutation"):
        x.permute(0, 0)


def test_shape_methods():
    x = pyconv.zeros(2, 1, 3)
    assert x.squeeze().shape == (2, 3) and x.squeeze(1).shape == (2, 3) and x.squeeze(0).shape == (2, 1, 3)
    assert x.unsqueeze(0).shape == (1, 2, 1, 3) and x.unsqueeze(-1).shape == (2, 1, 3, 1)
    assert x.flatten().shape == (6,) and x.flatten(1).shape == (2, 3)
    assert x.expand(4, 2, 5, 3).shape == (4, 2, 5, 3)
    assert x.transpose(0, 2).shape == (3, 1, 2) and x.permute(2, 0, 1).shape == (3, 2, 1)
    assert pyconv.zeros(3, 4).T.shape == (4, 3)
    assert [c.shape for c in pyconv.zeros(5, 2).split(2)] == [(2, 2), (2, 2), (1, 2)]
    values, indices = pyconv.tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]


def test_integer_tensor_arithmetic_promotes_like_pytorch():
    i = pyconv.tensor([1, 2])
    assert (i * 0.5).dtype == np.float32
    assert (i / 2).dtype == np.float32
    assert (i + 1).dtype == np.int64


def test_device_queries_that_ported_scripts_make():
    dev = pyconv.device("cuda" if pyconv.cuda.is_available() else "cpu")
    assert dev == "cpu" and not pyconv.cuda.is_available() and pyconv.cuda.device_count() == 0
    model = pyconv.nn.Linear(2, 2).to(dev)
    assert model(pyconv.ones(1, 2).to(dev)).device == "cpu"
