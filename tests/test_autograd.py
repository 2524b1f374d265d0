"""Autograd semantics: accumulation, reuse, zero_grad, no_grad, retain_graph, deep graphs."""

import numpy as np
import pytest

import pyconv
from pyconv.testing import gradcheck


def test_leaf_gradients_accumulate_over_two_backward_calls():
    x = pyconv.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    first = x.grad.numpy().copy()
    np.testing.assert_allclose(first, 2 * x.detach().numpy())
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), first + 3.0)


def test_node_used_twice_gets_both_contributions():
    x = pyconv.tensor([0.5, -1.5], dtype=np.float64, requires_grad=True)
    y = x.exp()  # y feeds two consumers
    z = (y * y + y).sum()
    z.backward()
    e = np.exp(x.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), 2 * e * e + e, rtol=1e-12)


def test_same_tensor_as_both_operands():
    x = pyconv.tensor([2.0, -3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, -6.0])
    x.grad = None
    (x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_zero_grad_sets_none_and_in_place_zero():
    lin = pyconv.nn.Linear(3, 2)
    lin(pyconv.randn(4, 3)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad is not None and not lin.weight.grad.numpy().any()
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_no_grad_records_nothing_and_restores_mode():
    x = pyconv.ones(3, requires_grad=True)
    with pyconv.no_grad():
        y = x * 2
        assert not pyconv.is_grad_enabled()
        with pyconv.enable_grad():
            assert (x * 2).requires_grad
    assert pyconv.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @pyconv.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_graph_is_freed_unless_retained():
    x = pyconv.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()

    x.grad = None
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_chain_of_10000_ops_is_iterative():
    x = pyconv.tensor(1.0, dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001**10_000, rtol=1e-9)


def test_retain_grad_on_intermediate():
    x = pyconv.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.detach().numpy())
    assert x.is_leaf and not h.is_leaf


def test_backward_needs_gradient_for_non_scalar():
    x = pyconv.ones(2, 2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        y.backward()
    y.backward(pyconv.ones(2, 2))
    np.testing.assert_allclose(x.grad.numpy(), 2.0)
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\) but the tensor has shape \(2, 2\)"):
        (x * 2).backward(pyconv.ones(3))


def test_detach_and_requires_grad_rules():
    x = pyconv.ones(2, requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    with pytest.raises(RuntimeError, match="leaf variables"):
        (x * 2).requires_grad = False
    with pytest.raises(RuntimeError, match="floating point"):
        pyconv.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="in-place"):
        x += 1
    with pyconv.no_grad():
        x += 1
    np.testing.assert_allclose(x.detach().numpy(), 2.0)


def test_grad_is_not_aliased_between_leaves():
    a = pyconv.ones(3, requires_grad=True)
    b = pyconv.ones(3, requires_grad=True)
    (a + b).sum().backward()
    (a * 5).sum().backward()  # accumulates into a.grad in place
    np.testing.assert_allclose(a.grad.numpy(), 6.0)
    np.testing.assert_allclose(b.grad.numpy(), 1.0)


def test_multi_output_op_with_unused_output():
    x = pyconv.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    values, indices = x.max(dim=1)
    values.sum().backward()
    expected = np.zeros((3, 4))
    expected[np.arange(3), x.detach().numpy().argmax(1)] = 1
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    assert not indices.requires_grad


def _rand(*shape, seed=0):
    return pyconv.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize(
    "name, fn, shapes",
    [
        ("add_broadcast", lambda a, b: a + b, [(2, 3), (3,)]),
        ("sub_broadcast", lambda a, b: a - b, [(2, 1), (1, 4)]),
        ("mul_broadcast", lambda a, b: a * b, [(2, 3, 1), (3, 4)]),
        ("div", lambda a, b: a / (b * b + 1), [(2, 3), (2, 3)]),
        ("pow_tensor", lambda a, b: (a * a + 0.5) ** b, [(3,), (3,)]),
        ("pow_scalar", lambda a: a**3, [(4,)]),
        ("rpow", lambda a: 2.0**a, [(4,)]),
        ("neg", lambda a: -a, [(2, 2)]),
        ("matmul_2d", lambda a, b: a @ b, [(2, 3), (3, 4)]),
        ("matmul_batched_broadcast", lambda a, b: a @ b, [(2, 1, 3, 4), (5, 4, 2)]),
        ("matmul_vec_mat", lambda a, b: a @ b, [(3,), (3, 2)]),
        ("matmul_mat_vec", lambda a, b: a @ b, [(2, 3), (3,)]),
        ("matmul_vec_vec", lambda a, b: a @ b, [(3,), (3,)]),
        ("exp", lambda a: a.exp(), [(3,)]),
        ("log", lambda a: (a * a + 0.1).log(), [(3,)]),
        ("sqrt", lambda a: (a * a + 0.1).sqrt(), [(3,)]),
        ("abs", lambda a: a.abs(), [(5,)]),
        ("clamp", lambda a: a.clamp(-0.5, 0.5), [(6,)]),
        ("sum_dim_keepdim", lambda a: a.sum(dim=1, keepdim=True), [(2, 3, 4)]),
        ("sum_dims", lambda a: a.sum(dim=(0, 2)), [(2, 3, 4)]),
        ("mean_dim", lambda a: a.mean(dim=-1), [(2, 3)]),
        ("mean_all", lambda a: a.mean(), [(2, 3)]),
        ("var_unbiased", lambda a: a.var(dim=1), [(2, 5)]),
        ("var_biased_keepdim", lambda a: a.var(dim=0, unbiased=False, keepdim=True), [(4, 3)]),
        ("max_all", lambda a: a.max(), [(3, 4)]),
        ("min_dim", lambda a: a.min(dim=0)[0], [(3, 4)]),
        ("max_dim_keepdim", lambda a: a.max(dim=1, keepdim=True).values, [(3, 4)]),
        ("reshape", lambda a: a.reshape(3, 2) * a.reshape(3, 2), [(2, 3)]),
        ("view_flatten", lambda a: a.view(-1).flatten(), [(2, 3)]),
        ("transpose", lambda a: a.transpose(0, 2), [(2, 3, 4)]),
        ("permute", lambda a: a.permute(2, 0, 1), [(2, 3, 4)]),
        ("squeeze_unsqueeze", lambda a: a.unsqueeze(1).squeeze(), [(3, 1, 2)]),
        ("expand", lambda a: a.expand(4, 3, -1), [(3, 1)]),
        ("getitem_slices", lambda a: a[1:, ::2], [(3, 5)]),
        ("getitem_int_array", lambda a: a[np.array([0, 2, 0])], [(3, 2)]),
        ("getitem_mask", lambda a: a[a > 0], [(4, 4)]),
        ("cat", lambda a, b: pyconv.cat([a, b, a], dim=1), [(2, 3), (2, 1)]),
        ("stack", lambda a, b: pyconv.stack([a, b], dim=-1), [(2, 3), (2, 3)]),
        ("where", lambda a, b: pyconv.where(a > 0, a, b), [(3, 3), (3, 3)]),
        ("split", lambda a: a.split(2, dim=1)[1] * a.split([1, 3], dim=1)[0], [(2, 4)]),
        ("unbind", lambda a: a.unbind(1)[2] - a.unbind(0)[0][:2], [(2, 3)]),
    ],
)
def test_tensor_op_gradcheck(name, fn, shapes):
    inputs = [_rand(*s, seed=i) for i, s in enumerate(shapes)]
    assert gradcheck(fn, inputs)


TORCH_CASES = [
    ("add", lambda a, b: a + b, [(2, 3), (3,)]),
    ("sub", lambda a, b: a - b, [(2, 1), (1, 4)]),
    ("mul", lambda a, b: a * b, [(2, 3, 1), (3, 4)]),
    ("div", lambda a, b: a / (b * b + 1), [(2, 3), (2, 3)]),
    ("pow", lambda a, b: (a * a + 0.5) ** b, [(3,), (3,)]),
    ("matmul", lambda a, b: a @ b, [(2, 1, 3, 4), (5, 4, 2)]),
    ("mat_vec", lambda a, b: a @ b, [(2, 3), (3,)]),
    ("unary", lambda a: (a.exp() + (a * a + 0.1).log() + (a * a + 1).sqrt() + a.abs()).clamp(-3, 3), [(4, 5)]),
    ("reductions", lambda a: a.sum(1) + a.mean(1) + a.var(1) + a.max(1)[0] + a.min(1)[0], [(3, 6)]),
    ("var_all", lambda a: a.var(), [(3, 6)]),
    ("shapes", lambda a: a.permute(1, 0, 2).reshape(4, -1).transpose(0, 1)[1:, ::2], [(3, 4, 2)]),
    ("expand", lambda a: a.expand(2, 3, 4) * 2, [(3, 1)]),
    ("index", lambda a: a[[0, 2, 0]], [(3, 2)]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, fn, shapes", TORCH_CASES)
def test_tensor_ops_match_torch(name, fn, shapes, dtype):
    from torch_compare import compare_with_torch

    arrays = [np.random.default_rng(i + 10).standard_normal(s) for i, s in enumerate(shapes)]
    compare_with_torch(fn, fn, arrays, dtype=dtype, name=name)


def test_max_without_dim_shares_gradient_among_ties_like_torch():
    from torch_compare import compare_with_torch

    compare_with_torch(lambda a: a.max(), lambda a: a.max(), [np.array([1.0, 3.0, 3.0, 2.0])])
