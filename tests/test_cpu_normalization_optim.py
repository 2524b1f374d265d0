"""The cpu backend's C++ batch norm (csrc/cpu/normalization.cpp) and fused SGD / Adam / AdamW
steps (csrc/cpu/optim.cpp) against the NumPy reference: batch norm forward (training with the
in-place running-statistics update, eval) and backward on test_batchnorm.py's shapes and edges,
random shapes and options, rows split into several segments, float64 (1e-12) and float32 (1e-5),
at 1 and 2 threads, results independent of the thread count; optimizer steps over every option set
of test_optim.py, bit for bit against the reference (its op order, no FMA contraction); the
in-place rules; non-contiguous and misaligned inputs; errors; the op layer on the cpu backend."""

import numpy as np
import pytest

import pyconv
import pyconv.functional as F
import pyconv.nn as nn
from pyconv import backends
from pyconv.backends import numpy_ref
from pyconv.optim import SGD, Adam, AdamW
from pyconv.testing import assert_close
from test_batchnorm import SHAPES as BN_SHAPES
from test_cpu_activation_dropout import cpu, misaligned, threads  # noqa: F401 - fixtures
from test_optim import ADAM_CASES, ADAMW_CASES, SGD_CASES
# the simt tests' helpers take the kernels module as an argument: shared, not copied
from test_simt_normalization import _check_backward, _check_forward, _compare, _inputs
from test_simt_optim import _adam_args, _gradient, _options, _sgd_args

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None or not hasattr(_C, "batch_norm_forward"),
                                reason="pyconv._C with the normalization/optim kernels is not built")

DTYPES = [np.float64, np.float32]


# ---------------------------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------------------------

# test_batchnorm.py's shapes; ragged rows (S not a multiple of 8); one element per channel; the
# benchmark's layer (large enough to thread); rows longer than one 2^15-element segment
SHAPES = BN_SHAPES + [(2, 3, 17, 3), (2, 2, 350), (1, 3), (1, 2, 1, 1), (8, 32, 13, 13),
                      (2, 3, 70001)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_matches_reference(cpu, threads, shape, training, dtype):
    x, w, b, rm, rv = _inputs(shape, dtype, seed=sum(shape))
    running = (rm, rv) if not training or shape[0] * np.prod(shape[2:]) > 1 else (None, None)
    _, mean, invstd = _check_forward(cpu, x, w, b, running, training, momentum=0.3)
    grad_y = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    _check_backward(cpu, grad_y, x, w, mean, invstd, training)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(8))
def test_batch_norm_random_shapes_and_options(cpu, threads, seed, dtype):
    rng = np.random.default_rng(100 + seed)
    ndim = int(rng.integers(2, 5))  # test_batchnorm.py's random (N, C, *) shapes
    shape = (int(rng.integers(2, 6)), int(rng.integers(1, 5))) + tuple(
        int(v) for v in rng.integers(1, 5, ndim - 2))
    x, w, b, rm, rv = _inputs(shape, dtype, seed)
    affine = [(w, b), (None, None), (w, None), (None, b)][seed % 4]
    momentum = float(rng.uniform(0, 1))
    for training in (True, False):
        running = (None, None) if training and seed % 3 == 0 else (rm, rv)
        _, mean, invstd = _check_forward(cpu, x, *affine, running, training, momentum, eps=1e-4)
        grad_y = rng.standard_normal(shape).astype(dtype)
        _check_backward(cpu, grad_y, x, affine[0], mean, invstd, training)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_edge_values(cpu, dtype):
    """test_batchnorm.py's edges: a constant channel (variance 0: eps alone keeps it finite), two
    values per channel (unbiased factor 2) and one element that dominates."""
    x = np.random.default_rng(4).standard_normal((2, 3, 1, 1))
    x[:, 0] = 1.5
    x[0, 2] = 1e3
    x, w, b = x.astype(dtype), np.array([2.0, -1.0, 0.5], dtype), np.array([0.1, 0.2, 0.3], dtype)
    running = (np.zeros(3, dtype), np.ones(3, dtype))
    _, mean, invstd = _check_forward(cpu, x, w, b, running, training=True)
    grad_y = np.random.default_rng(5).standard_normal(x.shape).astype(dtype)
    _check_backward(cpu, grad_y, x, w, mean, invstd, training=True)


def test_batch_norm_single_value_per_channel(cpu):
    x, w, b, rm, rv = _inputs((1, 3), np.float64, seed=2)
    _check_forward(cpu, x, w, b, (None, None), training=True)
    _check_forward(cpu, x, w, b, (rm, rv), training=False)
    with pytest.raises(ValueError, match="more than one value per channel"):
        cpu.batch_norm_forward(x, w, b, rm, rv, True, 0.1, 1e-5)


def test_batch_norm_float32_large_offset_is_exact(cpu):
    """float32 input around 1e4 (test_batchnorm.py): statistics in double, two passes."""
    x = (1e4 + np.random.default_rng(5).standard_normal((64, 2, 3))).astype(np.float32)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    y, _, _ = cpu.batch_norm_forward(x, None, None, rm, rv, True, 1.0, 1e-5)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2), keepdims=True)
    var = x64.var(axis=(0, 2), keepdims=True)
    assert_close(y, (x64 - mean) / np.sqrt(var + 1e-5), atol=1e-5, rtol=1e-5)
    assert_close(rm, mean.ravel(), atol=0, rtol=1e-7)
    assert_close(rv, x64.var(axis=(0, 2), ddof=1), atol=0, rtol=1e-6)


@pytest.mark.parametrize("shape", [(0, 2, 3), (4, 0, 3), (3, 2, 0)])
def test_batch_norm_empty_inputs(cpu, shape):
    """An empty batch leaves the running statistics untouched and has zero parameter gradients."""
    x, w, b, rm, rv = _inputs(shape, np.float64, seed=6)
    for training in (True, False):
        _, mean, invstd = _check_forward(cpu, x, w, b, (rm, rv), training)
        _check_backward(cpu, np.ones(shape), x, w, mean, invstd, training)


def test_batch_norm_results_do_not_depend_on_the_thread_count(cpu):
    x, w, b, rm, rv = _inputs((16, 3, 40, 40), np.float32, seed=9)  # 76800 elements: threaded
    before = pyconv.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            pyconv.set_num_threads(n)
            stats = [rm.copy(), rv.copy()]
            y, mean, invstd = cpu.batch_norm_forward(x, w, b, *stats, True, 0.1, 1e-5)
            results.append([y, mean, invstd, *stats,
                            *cpu.batch_norm_backward(x, x, w, mean, invstd, True)])
    finally:
        pyconv.set_num_threads(before)
    for a, e in zip(*results):
        np.testing.assert_array_equal(a, e)


def test_batch_norm_non_contiguous_and_misaligned_inputs(cpu):
    x, w, b, rm, rv = _inputs((3, 4, 5), np.float64, seed=7)
    x_t = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)  # same values, strided
    w_strided = np.repeat(w, 2)[::2]
    _, mean, invstd = _check_forward(cpu, x_t, w_strided, misaligned(b), (rm, rv), training=True)
    _check_backward(cpu, np.ones_like(x)[:, :, ::-1], misaligned(x), w_strided, mean,
                    misaligned(invstd), True)
    # eval mode only reads the running statistics: views are fine there
    _check_forward(cpu, x, w, b, (np.repeat(rm, 2)[::2], misaligned(rv)), training=False)


def test_batch_norm_running_statistics_must_be_updatable_in_place(cpu):
    x, w, b, rm, rv = _inputs((3, 2, 4), np.float64, seed=8)
    strided = np.zeros(4)[::2]
    with pytest.raises(ValueError, match="running_mean is updated in place and must be C-contig"):
        cpu.batch_norm_forward(x, w, b, strided, rv, True, 0.1, 1e-5)
    frozen = rv.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="running_var is updated in place and must be writeable"):
        cpu.batch_norm_forward(x, w, b, rm, frozen, True, 0.1, 1e-5)
    _check_forward(cpu, x, w, b, (strided, frozen), training=False)
    with pytest.raises(TypeError, match="running_mean must be float64 like the other arrays"):
        cpu.batch_norm_forward(x, w, b, rm.astype(np.float32), rv, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"weight must have shape \(2,\), got \(3,\)"):
        cpu.batch_norm_forward(x, np.ones(3), b, rm, rv, True, 0.1, 1e-5)
    with pytest.raises(TypeError, match="float32 or float64"):
        cpu.batch_norm_forward(x.astype(np.float16), None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        cpu.batch_norm_forward(np.zeros(3), None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"grad_y must have shape \(3, 2, 4\)"):
        cpu.batch_norm_backward(np.zeros((3, 2, 5)), x, w, rm, rv, True)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        _C.batch_norm_forward(x.transpose(0, 2, 1), None, None, None, None, True, 0.1, 1e-5)


@pytest.mark.parametrize("training", [True, False])
def test_functional_batch_norm_on_cpu_matches_numpy(cpu, training):
    x, w, b, rm, rv = _inputs((4, 3, 2, 3), np.float64, seed=10)
    grads, outputs, running = [], [], []
    for backend in ("numpy", "cpu"):
        xs, ws, bs = (pyconv.tensor(a, requires_grad=True) for a in (x, w, b))
        stats = pyconv.tensor(rm.copy()), pyconv.tensor(rv.copy())
        with backends.use(backend):
            y = F.batch_norm(xs, *stats, ws, bs, training=training, momentum=0.2)
            weights = np.arange(y.numel(), dtype=np.float64).reshape(y.shape)
            (y * pyconv.tensor(weights)).sum().backward()
        outputs.append(y.detach().numpy())
        grads.append([t.grad.numpy() for t in (xs, ws, bs)])
        running.append([s.numpy() for s in stats])
    _compare([outputs[1]], [outputs[0]], np.float64, "y")
    _compare(grads[1], grads[0], np.float64, "grads")
    _compare(running[1], running[0], np.float64, "running stats")


# ---------------------------------------------------------------------------------------------
# optimizer steps
# ---------------------------------------------------------------------------------------------

OPT_STEPS = 4
# test_optim.py's shapes, one with a ragged vector tail and one large enough to thread
OPT_SHAPES = [(3, 4), (5,), (2, 1, 3), (7, 1001), (70001,)]
ADAM_ALL = ADAM_CASES + [{"betas": (0.3, 0.9)}]  # 1 - beta1 >= 0.5: PyTorch's other lerp branch
CASES = ([(SGD, kw) for kw in SGD_CASES] + [(Adam, kw) for kw in ADAM_ALL]
         + [(AdamW, kw) for kw in ADAMW_CASES])


def _run_both(cpu, cls, kwargs, shape, dtype):
    """OPT_STEPS updates with the cpu kernel and the reference's from the same state; parameter
    and state must agree bit for bit after every step."""
    o = _options(cls, kwargs)
    param = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    runs = []
    for kernels in (cpu, numpy_ref):
        state = [np.zeros(shape, dtype) for _ in range(3)]
        if cls is not SGD and not o["amsgrad"]:
            state[2] = None
        runs.append((kernels, param.copy(), state))
    for step in range(OPT_STEPS):
        grad = _gradient(shape, dtype, step)
        for kernels, p, state in runs:
            if cls is SGD:
                assert kernels.sgd_step(p, grad, *_sgd_args(o, state[0], step)) is None
            else:
                assert kernels.adam_step(p, grad, *_adam_args(o, state, step)) is None
        (_, ours, our_state), (_, expected, ref_state) = runs
        name = f"{cls.__name__}{kwargs} step {step}"
        np.testing.assert_array_equal(ours, expected, err_msg=f"{name} param")
        for i, (a, e) in enumerate(zip(our_state, ref_state)):
            if e is not None:
                np.testing.assert_array_equal(a, e, err_msg=f"{name} state {i}")
    np.testing.assert_array_equal(grad, _gradient(shape, dtype, OPT_STEPS - 1))  # read only


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls,kwargs", CASES,
                         ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(CASES)])
def test_steps_match_reference_bit_for_bit(cpu, cls, kwargs, dtype):
    _run_both(cpu, cls, kwargs, OPT_SHAPES[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SHAPES[1:], ids=str)
@pytest.mark.parametrize("cls,kwargs", [(SGD, SGD_CASES[-1]), (SGD, SGD_CASES[3]),
                                        (Adam, ADAM_CASES[4]), (AdamW, ADAMW_CASES[1]),
                                        (Adam, {"betas": (0.3, 0.9)})],
                         ids=["SGD-nesterov", "SGD-dampening", "Adam", "AdamW", "Adam-lerp"])
def test_every_shape_matches_reference(cpu, threads, cls, kwargs, shape, dtype):
    _run_both(cpu, cls, kwargs, shape, dtype)


def test_empty_parameter_is_a_no_op(cpu):
    p, g = np.zeros((0, 3)), np.zeros((0, 3))
    cpu.sgd_step(p, g, np.zeros((0, 3)), 0.1, 0.9, 0.0, False, 0.0, False, True)
    cpu.adam_step(p, g, np.zeros((0, 3)), np.zeros((0, 3)), None, 1, 0.1, 0.9, 0.999, 1e-8, 0.0,
                  False, False, False)
    assert p.shape == (0, 3)


def test_amsgrad_maximum_propagates_nan_like_numpy(cpu):
    grad = np.array([np.nan, 1.0, 2.0] * 5)
    state = [[np.zeros(15), np.zeros(15), np.array([0.0, np.nan, 5.0] * 5)] for _ in range(2)]
    params = [np.ones(15), np.ones(15)]
    for kernels, p, s in zip((cpu, numpy_ref), params, state):
        kernels.adam_step(p, grad, *s, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, True, False, False)
    np.testing.assert_array_equal(params[0], params[1])
    np.testing.assert_array_equal(state[0][2], state[1][2])


def test_non_contiguous_or_misaligned_gradient_is_read_through_a_copy(cpu):
    base = np.random.default_rng(3).standard_normal((4, 6))
    for grad in (base[:, ::2], misaligned(base[:, ::2].copy())):
        params = [np.ones((4, 3)), np.ones((4, 3))]
        buffers = [np.zeros((4, 3)), np.zeros((4, 3))]
        for kernels, p, b in zip((cpu, numpy_ref), params, buffers):
            kernels.sgd_step(p, grad, b, 0.1, 0.9, 0.0, True, 0.01, False, True)
        np.testing.assert_array_equal(params[0], params[1])
        np.testing.assert_array_equal(buffers[0], buffers[1])


def test_arrays_updated_in_place_must_be_the_callers(cpu):
    grad = np.ones((4, 3))
    strided = np.ones((4, 6))[:, ::2]
    with pytest.raises(ValueError, match="param is updated in place and must be C-contiguous"):
        cpu.sgd_step(strided, grad, None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError, match="momentum_buffer is updated in place and must be C-con"):
        cpu.sgd_step(np.ones((4, 3)), grad, strided, 0.1, 0.9, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError, match="param is updated in place and must be C-contiguous"):
        cpu.sgd_step(misaligned(np.ones((4, 3))), grad, None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    frozen = np.zeros((4, 3))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="exp_avg_sq is updated in place and must be writeable"):
        cpu.adam_step(np.ones((4, 3)), grad, np.zeros((4, 3)), frozen, None, 1, 0.1, 0.9, 0.999,
                      1e-8, 0.0, False, False, False)
    with pytest.raises(ValueError, match="max_exp_avg_sq is required when amsgrad"):
        cpu.adam_step(np.ones((4, 3)), grad, np.zeros((4, 3)), np.zeros((4, 3)), None, 1, 0.1,
                      0.9, 0.999, 1e-8, 0.0, True, False, False)
    with pytest.raises(ValueError, match="momentum_buffer is required when momentum"):
        cpu.sgd_step(np.ones((4, 3)), grad, None, 0.1, 0.9, 0.0, False, 0.0, False, True)
    with pytest.raises(TypeError, match="grad has dtype float32, expected float64"):
        cpu.sgd_step(np.ones((4, 3)), grad.astype(np.float32), None, 0.1, 0.0, 0.0, False, 0.0,
                     False, True)
    with pytest.raises(ValueError, match=r"exp_avg has shape \(3,\), expected \(4, 3\)"):
        cpu.adam_step(np.ones((4, 3)), grad, np.zeros(3), np.zeros((4, 3)), None, 1, 0.1, 0.9,
                      0.999, 1e-8, 0.0, False, False, False)
    with pytest.raises(TypeError, match="param must be float32 or float64"):
        cpu.sgd_step(np.ones((4, 3), np.int64), grad, None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError, match="must be writeable"):  # the native boundary re-checks
        _C.sgd_step(np.ones((4, 3)), grad, frozen, 0.1, 0.9, 1.0, 0.0, False, False, True)


@pytest.mark.parametrize("cls,kwargs", [
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adam, {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    (AdamW, {"lr": 0.05}),
])
def test_optimizer_step_on_cpu_matches_numpy(cpu, cls, kwargs):
    """optimizer.step() on the cpu backend equals the numpy backend, gradients from autograd."""
    rng = np.random.default_rng(11)
    w0, x = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    results = []
    for backend in ("numpy", "cpu"):
        w = nn.Parameter(pyconv.tensor(w0.copy()))
        opt = cls([w], **kwargs)
        with backends.use(backend):
            for _ in range(3):
                opt.zero_grad()
                ((w @ pyconv.tensor(x)) ** 2).sum().backward()
                opt.step()
        results.append(w.detach().numpy())
    np.testing.assert_array_equal(results[1], results[0])
