"""The cpu backend's kernels release the GIL while they run: a kernel of every binding file of
pyconv._C (and both conv2d gradients) runs in a worker thread (one native thread) while this thread keeps executing Python.
A kernel that held the GIL would stop this thread for the whole call; the test asserts that the
longest stall is under half the call's duration. Inputs grow until one call takes at least
30 ms, so the two outcomes stay far apart on a fast or a loaded machine."""

import sys
import threading
import time
from functools import partial

import numpy as np
import pytest

import pyconv
from pyconv.backends import cpu

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None, reason="pyconv._C is not built")

MIN_CALL_SECONDS = 0.03
F32 = np.float32


def _ones(*shape):
    return np.ones(shape, F32)


def _small(*shape):
    return np.full(shape, 0.01, F32)


def _zeros(*shape):
    return np.zeros(shape, F32)


def _conv(x_shape, w_shape, padding=0, groups=1):
    return partial(cpu.conv2d_forward, _ones(*x_shape), _small(*w_shape), None, (1, 1), (padding,) * 4, (1, 1),
                   groups)


PAD1 = ((1, 1), (1, 1, 1, 1), (1, 1), 1)  # stride, padding, dilation, groups of a 3x3 'same' conv

# name (the binding file) -> make(scale): a call whose work grows with scale
CASES = {
    "conv2d (implicit GEMM / Winograd)": lambda s: _conv((4 * s, 128, 28, 28), (128, 128, 3, 3), padding=1),
    "conv2d backward_input": lambda s: partial(cpu.conv2d_backward_input, _ones(4 * s, 128, 28, 28),
                                               _small(128, 128, 3, 3), (4 * s, 128, 28, 28), *PAD1),
    "conv2d backward_weight": lambda s: partial(cpu.conv2d_backward_weight, _ones(4 * s, 128, 28, 28),
                                                _ones(4 * s, 128, 28, 28), (128, 128, 3, 3), *PAD1),
    "conv2d_pointwise": lambda s: _conv((2 * s, 256, 56, 56), (64, 256, 1, 1)),
    "conv2d_depthwise": lambda s: _conv((8 * s, 64, 56, 56), (64, 1, 3, 3), padding=1, groups=64),
    "conv2d_small_c": lambda s: _conv((16 * s, 3, 32, 32), (32, 3, 3, 3), padding=1),
    "conv_transpose2d": lambda s: partial(cpu.conv_transpose2d_forward, _ones(4 * s, 64, 28, 28),
                                          _small(64, 64, 3, 3), None, (2, 2), (0, 0), (0, 0), (1, 1), 1),
    "linear": lambda s: partial(cpu.linear_forward, _ones(128 * s, 1024), _ones(1024, 1024), None),
    "pool": lambda s: partial(cpu.max_pool2d_forward, _ones(8 * s, 64, 64, 64), (2, 2), (2, 2), (0, 0), (1, 1),
                              False),
    "softmax": lambda s: partial(cpu.softmax_forward, _ones(2048 * s, 1000), 1),
    "loss": lambda s: partial(cpu.cross_entropy_forward, _ones(2048 * s, 1000), np.zeros(2048 * s, np.int64),
                              None, "mean", -100, 0.0),
    "activation": lambda s: partial(cpu.gelu_forward, _ones(1 << 20, s), "none"),
    "dropout": lambda s: partial(cpu.dropout_forward, _ones(1 << 20, s), 0.5, 7),
    "normalization": lambda s: partial(cpu.batch_norm_forward, _ones(2 * s, 64, 56, 56), _ones(64), _zeros(64),
                                       _zeros(64), _ones(64), True, 0.1, 1e-5),
    "rnn (cell)": lambda s: partial(cpu.lstm_cell_forward, _ones(64 * s, 512), _ones(64 * s, 512),
                                    _ones(64 * s, 512), _ones(2048, 512), _ones(2048, 512), _zeros(2048),
                                    _zeros(2048)),
    "rnn_sequence": lambda s: partial(cpu.lstm_sequence_forward, _ones(4 * s, 64, 128), _ones(64, 256),
                                      _ones(64, 256), _small(1024, 128), _small(1024, 256), _zeros(1024),
                                      _zeros(1024), False),
    "optim": lambda s: partial(cpu.adam_step, _ones((1 << 20) * s), _ones((1 << 20) * s), _zeros((1 << 20) * s),
                               _zeros((1 << 20) * s), None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False),
}


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _longest_stall_while(fn):
    """Runs fn() in a worker thread; returns (the call's duration, the longest time this thread's
    Python loop went without running while the call was in progress)."""
    done = threading.Event()
    call = {}

    def work():
        call["seconds"] = _timed(fn)
        done.set()

    worker = threading.Thread(target=work)
    last = time.perf_counter()
    longest = 0.0
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    longest = max(longest, time.perf_counter() - last)
    worker.join()
    return call["seconds"], longest


@pytest.fixture
def one_native_thread():
    before = pyconv.get_num_threads()
    interval = sys.getswitchinterval()
    pyconv.set_num_threads(1)  # the kernel takes one core, this thread the other
    sys.setswitchinterval(1e-4)  # hand the GIL over quickly when the worker asks for it
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        pyconv.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_runs_without_the_gil(name, one_native_thread):
    scale = 1
    fn = CASES[name](scale)
    fn()  # warm-up: workspaces and output pool
    while _timed(fn) < MIN_CALL_SECONDS and scale < 256:
        scale *= 2
        fn = CASES[name](scale)
        fn()
    seconds, stall = min((_longest_stall_while(fn) for _ in range(2)), key=lambda r: r[1] / r[0])
    assert seconds >= MIN_CALL_SECONDS / 2, f"{name}: the call took only {seconds * 1e3:.1f} ms at scale {scale}"
    assert stall < 0.5 * seconds, (f"{name}: Python stalled {stall * 1e3:.1f} ms during a {seconds * 1e3:.1f} ms "
                                   "call: the kernel holds the GIL")


def test_the_probe_sees_a_call_that_holds_the_gil(one_native_thread):
    """The control: list.sort runs in C without releasing the GIL, and the probe reports it."""
    values = list(np.random.default_rng(0).random(1 << 18))
    while _timed(lambda: sorted(values)) < MIN_CALL_SECONDS:
        values = values * 2
    seconds, stall = _longest_stall_while(lambda: sorted(values))
    assert stall >= 0.5 * seconds, f"sorted() ran {seconds * 1e3:.1f} ms but Python stalled only {stall * 1e3:.1f} ms"
