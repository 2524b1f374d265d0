"""pytest-benchmark suite: one LeNet-MNIST training step (batch 64, 28x28) of pyconv and of the
textbook im2col baseline; plus checks that the two compute the same step, so the timings
compare like with like. Run: ``pytest bench/`` (``--benchmark-disable`` for the checks only)."""

import numpy as np
import pytest

from pyconv.benchmarks import lenet as bench_lenet
from pyconv.benchmarks.textbook_im2col import TextbookLeNet, col2im, im2col

GROUP = "lenet-mnist-train-step-batch64"
ROUNDS, WARMUP = 20, 3


@pytest.mark.benchmark(group=GROUP)
def test_pyconv_lenet_step(benchmark):
    step = bench_lenet.make_pyconv_step(64, 0, "numpy")
    loss = benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    assert np.isfinite(loss)


@pytest.mark.benchmark(group=GROUP)
def test_textbook_lenet_step(benchmark):
    step = bench_lenet.make_textbook_step(64, 0)
    loss = benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    assert np.isfinite(loss)


def test_pyconv_and_textbook_compute_the_same_gradients():
    import pyconv
    import pyconv.functional as F

    net = TextbookLeNet(seed=1, dtype=np.float64)
    model = bench_lenet.pyconv_lenet(net, np.float64)
    images, labels = bench_lenet.random_batch(6, 2, np.float64)
    loss, grads = net.forward_backward(images, labels)
    ours = F.cross_entropy(model(pyconv.tensor(images)), pyconv.tensor(labels))
    ours.backward()
    np.testing.assert_allclose(ours.item(), loss, rtol=1e-12)
    params = dict(model.named_parameters())
    for name, grad in grads.items():
        np.testing.assert_allclose(params[bench_lenet.TEXTBOOK_TO_PYCONV[name]].grad.numpy(),
                                   grad, rtol=1e-9, atol=1e-12, err_msg=name)


def test_pyconv_and_textbook_steps_track_each_other():
    pyconv_step = bench_lenet.make_pyconv_step(16, 3, "numpy")
    textbook_step = bench_lenet.make_textbook_step(16, 3)
    for _ in range(3):
        a, b = pyconv_step(), textbook_step()
        assert a == pytest.approx(b, rel=1e-4)


def test_textbook_gradients_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    net = TextbookLeNet(seed=4, dtype=np.float64)
    images, labels = bench_lenet.random_batch(5, 6, np.float64)
    loss, grads = net.forward_backward(images, labels)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    h = torch.tensor(images)
    h = tf.max_pool2d(tf.relu(tf.conv2d(h, p["conv1.weight"], p["conv1.bias"])), 2)
    h = tf.max_pool2d(tf.relu(tf.conv2d(h, p["conv2.weight"], p["conv2.bias"])), 2)
    h = tf.relu(tf.linear(h.flatten(1), p["fc1.weight"], p["fc1.bias"]))
    ref = tf.cross_entropy(tf.linear(h, p["fc2.weight"], p["fc2.bias"]), torch.tensor(labels))
    ref.backward()
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12)
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, p[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_textbook_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5))
    cols = rng.standard_normal(im2col(x, 3, 2).shape)
    np.testing.assert_allclose(np.sum(im2col(x, 3, 2) * cols),
                               np.sum(x * col2im(cols, x.shape, 3, 2)))
