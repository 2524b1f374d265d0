"""The cpu backend's C++ recurrent cells (csrc/cpu/rnn.cpp) against the NumPy float64 reference:
every forward and backward kernel of the RNN (tanh, relu), LSTM and GRU cells on seeded random
sizes (batch, input and hidden sizes of 1, non-multiples of 8, past the GEMM's blocks), with and
without biases, float64 and float32, at 1 and 2 threads; the vector sigmoid/tanh element by
element over their whole range; non-contiguous and misaligned inputs; errors at the native
boundary; and nn.RNN / nn.LSTM / nn.GRU (2 layers, bidirectional, batch_first) on the cpu backend
against the numpy backend."""

import numpy as np
import pytest

import pyconv
from pyconv import backends, nn
from pyconv.backends import numpy_ref
from test_cpu_gemm_conv import misaligned, threads  # noqa: F401 (threads: 1 and 2, a fixture)
from test_rnn import GATES, LAYER_CONFIGS

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None or not hasattr(_C, "lstm_cell_forward"),
                                reason="pyconv._C with the rnn kernels is not built")

# relative to the output's scale (its largest magnitude, at least 1)
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
CELLS = sorted(GATES)
KERNELS = [f"{cell}_{d}" for cell in CELLS for d in ("forward", "backward")]

# (B, I, Hd): the reference tests' shapes (incl. an empty batch), sizes of 1, non-multiples of 8
# (partial vectors and GEMM tiles), k = I + Hd past KC = 256, and G*Hd past NC = 1024 (LSTM)
SIZES = [(3, 5, 4), (1, 1, 1), (4, 2, 7), (0, 3, 2), (5, 9, 13), (13, 17, 33), (2, 1, 9),
         (7, 200, 90), (9, 24, 260)]
BIASES = ["both", "none", "ih", "hh"]


@pytest.fixture(scope="module")
def cpu():
    from pyconv.backends import cpu as module

    # this family's kernels only (module.check_available() covers every family)
    assert all(hasattr(_C, k) for k in KERNELS)
    return module


def assert_matches(got, want, dtype, what=""):
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    err = float(np.abs(got.astype(np.float64) - want).max(initial=0.0)) / scale
    assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g} > {TOLERANCE[dtype]}"


def cell_inputs(name, size, biases, seed):
    """(x, h, (c,) w_ih, w_hh, b_ih, b_hh) in float64; biases 'both', 'none', 'ih' or 'hh'."""
    batch, in_size, hidden = size
    rng = np.random.default_rng(seed)
    rows = GATES[name] * hidden
    arrays = [rng.standard_normal((batch, in_size)), rng.standard_normal((batch, hidden))]
    if name == "lstm_cell":
        arrays.append(rng.standard_normal((batch, hidden)))
    # weights scaled so the pre-activations stay O(1) whatever the sizes
    arrays += [rng.standard_normal((rows, in_size)) / np.sqrt(in_size + hidden),
               rng.standard_normal((rows, hidden)) / np.sqrt(in_size + hidden)]
    b_ih, b_hh = rng.standard_normal(rows), rng.standard_normal(rows)
    arrays += [b_ih if biases in ("both", "ih") else None, b_hh if biases in ("both", "hh") else None]
    return arrays


def backward_args(name, inputs, outputs, rng):
    """The backward kernel's arguments: random output gradients, then the saved tensors."""
    x, h = inputs[0], inputs[1]
    w_ih, w_hh = inputs[-4], inputs[-3]
    grad_h_new = rng.standard_normal(h.shape)
    if name == "lstm_cell":
        h_new, c_new, gates = outputs
        return [grad_h_new, rng.standard_normal(h.shape), x, h, inputs[2], w_ih, w_hh, gates, c_new]
    if name == "gru_cell":
        return [grad_h_new, x, h, w_ih, w_hh, outputs[1]]
    return [grad_h_new, x, h, w_ih, w_hh, outputs]


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def cast(arrays, dtype):
    return [None if a is None else np.asarray(a).astype(dtype) for a in arrays]


# ---------------------------------------------------------------------------------------------
# kernels against the reference
# ---------------------------------------------------------------------------------------------


# each size with two of the bias variants (every variant with several sizes)
CASES = [(size, BIASES[(i + k) % len(BIASES)]) for i, size in enumerate(SIZES) for k in (0, 2)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size, biases", CASES, ids=[f"{s}-{b}" for s, b in CASES])
@pytest.mark.parametrize("name", CELLS)
def test_cells_match_reference(name, size, biases, dtype, threads, cpu):
    seed = sum(size) * 7 + BIASES.index(biases)
    inputs = cell_inputs(name, size, biases, seed)
    forward = f"{name}_forward"
    want = as_tuple(getattr(numpy_ref, forward)(*inputs))
    got = getattr(cpu, forward)(*cast(inputs, dtype))
    assert type(got) is type(getattr(numpy_ref, forward)(*inputs))
    for k, (g, w) in enumerate(zip(as_tuple(got), want)):
        assert_matches(g, w, dtype, f"{forward} output {k}")
    # backward on the reference's saved tensors, rounded to dtype for both sides
    args = cast(backward_args(name, inputs, getattr(numpy_ref, forward)(*inputs),
                              np.random.default_rng(seed + 1)), dtype)
    backward = f"{name}_backward"
    want = getattr(numpy_ref, backward)(*cast(args, np.float64))
    got = getattr(cpu, backward)(*args)
    assert isinstance(got, tuple) and len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_matches(g, w, dtype, f"{backward} output {k}")


def test_results_do_not_depend_on_the_thread_count(cpu):
    before = pyconv.get_num_threads()
    try:
        for name in CELLS:
            inputs = cast(cell_inputs(name, (37, 50, 70), "both", 3), np.float32)
            fwd = as_tuple(getattr(cpu, f"{name}_forward")(*inputs))
            args = cast(backward_args(name, inputs, getattr(numpy_ref, f"{name}_forward")(*inputs),
                                      np.random.default_rng(4)), np.float32)
            runs = []
            for n in (1, 2):
                pyconv.set_num_threads(n)
                runs.append(as_tuple(getattr(cpu, f"{name}_forward")(*inputs))
                            + getattr(cpu, f"{name}_backward")(*args))
            for a, b in zip(*runs):
                np.testing.assert_array_equal(a, b)
            assert len(fwd) == len(as_tuple(getattr(numpy_ref, f"{name}_forward")(*inputs)))
    finally:
        pyconv.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activations_are_accurate_element_by_element(dtype, cpu):
    """tanh (RNN cell) and sigmoid (the LSTM's i gate) against NumPy at a few ulp, relative to each
    element, from tiny arguments (where tanh x ~ x) to saturation, with inf and NaN."""
    finfo = np.finfo(dtype)
    mags = np.concatenate([np.geomspace(1e-30, 1e-3, 60), np.linspace(1e-3, 12, 400),
                           np.geomspace(12, 1e4, 40), [0.0, np.inf, 1e30]])
    v = np.concatenate([mags, -mags, [np.nan]]).astype(dtype)
    n = v.size
    # the values enter as b_ih (x = 0, weights 0), so the GEMM adds only zeros to them
    x, h = np.zeros((1, 1), dtype), np.zeros((1, n), dtype)
    got = cpu.rnn_tanh_cell_forward(x, h, np.zeros((n, 1), dtype), np.zeros((n, n), dtype), v, None)
    with np.errstate(all="ignore"):
        want = np.tanh(v.astype(np.float64))[None, :]
    np.testing.assert_allclose(got, want, rtol=4 * finfo.eps, atol=0)
    b4 = np.zeros(4 * n, dtype)
    b4[:n] = v
    gates = cpu.lstm_cell_forward(x, h, h, np.zeros((4 * n, 1), dtype), np.zeros((4 * n, n), dtype),
                                  None, b4)[2][:, :n]
    want = numpy_ref.sigmoid_forward(v.astype(np.float64))[None, :]
    # below the smallest normal number the kernel may flush to a tiny normal value
    np.testing.assert_allclose(gates, want, rtol=4 * finfo.eps, atol=1e4 * finfo.tiny)
    relu = cpu.rnn_relu_cell_forward(x, h, np.zeros((n, 1), dtype), np.zeros((n, n), dtype), None, v)
    np.testing.assert_array_equal(relu, np.maximum(v, 0)[None, :])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_contiguous_and_misaligned_inputs_through_the_backend(dtype, cpu):
    inputs = cell_inputs("lstm_cell", (6, 11, 9), "both", 8)
    want = numpy_ref.lstm_cell_forward(*inputs)
    x, h, c, w_ih, w_hh, b_ih, b_hh = cast(inputs, dtype)
    views = [np.asfortranarray(x), misaligned(h), np.repeat(c, 2, axis=1)[:, ::2],
             misaligned(w_ih.T).T, w_hh, misaligned(b_ih), np.repeat(b_hh, 3)[::3]]
    assert not views[0].flags.c_contiguous and not views[2].flags.c_contiguous
    for g, w in zip(cpu.lstm_cell_forward(*views), want):
        assert_matches(g, w, dtype, "lstm views")
    inputs = cell_inputs("gru_cell", (5, 7, 10), "ih", 9)
    h_new, workspace = numpy_ref.gru_cell_forward(*inputs)
    grad = np.random.default_rng(1).standard_normal(h_new.shape)
    args = cast([grad, inputs[0], inputs[1], inputs[2], inputs[3], workspace], dtype)
    want = numpy_ref.gru_cell_backward(*cast(args, np.float64))
    views = [misaligned(args[0]), args[1].T.copy().T, misaligned(args[2]), args[3],
             np.asfortranarray(args[4]), misaligned(args[5])]
    for g, w in zip(cpu.gru_cell_backward(*views), want):
        assert_matches(g, w, dtype, "gru backward views")


def test_bad_arguments_raise_errors_that_name_them():
    x, h, c = np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32)
    w_ih, w_hh = np.zeros((16, 3), np.float32), np.zeros((16, 4), np.float32)
    b = np.zeros(16, np.float32)
    _C.lstm_cell_forward(x, h, c, w_ih, w_hh, b, None)
    with pytest.raises(TypeError, match="x must be float32 or float64, got int64"):
        _C.lstm_cell_forward(x.astype(np.int64), h, c, w_ih, w_hh, b, b)
    with pytest.raises(TypeError, match="w_hh must be float32 like the other arrays, got float64"):
        _C.lstm_cell_forward(x, h, c, w_ih, w_hh.astype(np.float64), b, b)
    with pytest.raises(ValueError, match="w_ih must have shape \\(16, 3\\), got \\(12, 3\\)"):
        _C.lstm_cell_forward(x, h, c, w_ih[:12].copy(), w_hh, b, b)
    with pytest.raises(ValueError, match="b_hh must have shape \\(16,\\), got \\(15,\\)"):
        _C.lstm_cell_forward(x, h, c, w_ih, w_hh, b, b[:15].copy())
    with pytest.raises(ValueError, match="h must have shape \\(2, 4\\), got \\(3, 4\\)"):
        _C.gru_cell_forward(x, np.zeros((3, 4), np.float32), w_ih[:12].copy(), w_hh[:12].copy(), None, None)
    with pytest.raises(ValueError, match="c must be C-contiguous"):
        _C.lstm_cell_forward(x, h, np.zeros((4, 2), np.float32).T, w_ih, w_hh, None, None)
    with pytest.raises(ValueError, match="x must be aligned"):
        _C.rnn_tanh_cell_forward(misaligned(x), h, w_ih[:4].copy(), w_hh[:4].copy(), None, None)
    with pytest.raises(ValueError, match="x must have 2 dimensions, got shape \\(3,\\)"):
        _C.rnn_relu_cell_forward(x[0].copy(), h, w_ih[:4].copy(), w_hh[:4].copy(), None, None)
    with pytest.raises(ValueError, match="gates must have shape \\(2, 16\\), got \\(2, 12\\)"):
        _C.lstm_cell_backward(h, h, x, h, c, w_ih, w_hh, np.zeros((2, 12), np.float32), c)
    with pytest.raises(ValueError, match="workspace must have shape \\(2, 16\\), got \\(2, 12\\)"):
        _C.gru_cell_backward(h, x, h, w_ih[:12].copy(), w_hh[:12].copy(), np.zeros((2, 12), np.float32))
    with pytest.raises(ValueError, match="h_new must have shape \\(2, 4\\)"):
        _C.rnn_tanh_cell_backward(h, x, h, w_ih[:4].copy(), w_hh[:4].copy(), x)
    with pytest.raises(TypeError):
        _C.lstm_cell_forward(x, None, c, w_ih, w_hh, None, None)
    with pytest.raises(TypeError):
        _C.lstm_cell_forward(x.tolist(), h, c, w_ih, w_hh, None, None)


def test_sizes_whose_products_overflow_are_rejected_without_allocating():
    # C-contiguous views of one buffer with huge shapes: never read, as the checks come first
    strided = np.lib.stride_tricks.as_strided
    x = strided(np.zeros(1, np.float32), (2 ** 59, 1), (4, 4))
    h = strided(np.zeros(2, np.float32), (2 ** 59, 2), (8, 4))
    assert x.flags.c_contiguous and h.flags.c_contiguous
    w_ih, w_hh = np.zeros((8, 1), np.float32), np.zeros((8, 2), np.float32)
    with pytest.raises(ValueError, match="overflows 64 bits"):
        _C.lstm_cell_forward(x, h, h, w_ih, w_hh, None, None)  # 2 * gates (2^59, 8)


# ---------------------------------------------------------------------------------------------
# the op layer and nn layers on the cpu backend
# ---------------------------------------------------------------------------------------------


def test_backend_marks_the_rnn_kernels_native(cpu):
    for kernel in KERNELS:
        assert getattr(cpu, kernel).runs_on_reference is False
    assert set(cpu.REFERENCE_KERNELS).isdisjoint(KERNELS)


LAYERS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]


def _run_layer(cls_name, kwargs, config, dtype, backend):
    layer_kwargs, shape, with_hx = config
    pyconv.manual_seed(3)
    layer = getattr(nn, cls_name)(3, 5, dtype=dtype, **kwargs, **layer_kwargs)
    rng = np.random.default_rng(7)
    x = pyconv.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    directions = layer.num_layers * (2 if layer.bidirectional else 1)
    batch = () if len(shape) == 2 else (shape[0] if layer.batch_first else shape[1],)
    states = None
    if with_hx:
        states = [pyconv.tensor(rng.standard_normal((directions,) + batch + (5,)).astype(dtype),
                                requires_grad=True) for _ in range(2 if cls_name == "LSTM" else 1)]
    with backends.use(backend):
        out, hn = layer(x, None if states is None else (tuple(states) if cls_name == "LSTM" else states[0]))
        finals = hn if isinstance(hn, tuple) else (hn,)
        loss = (out * out).sum() + sum((f * f * 0.5).sum() for f in finals)
        loss.backward()
    grads = [x.grad] + [s.grad for s in states or []] + [p.grad for p in layer.parameters()]
    return [out.detach().numpy()] + [f.detach().numpy() for f in finals] + [g.numpy() for g in grads]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", [2, 4, 5, 6, 7, 8, 10], ids=lambda c: str(LAYER_CONFIGS[c][:2]))
@pytest.mark.parametrize("cls_name, kwargs", LAYERS, ids=["tanh", "relu", "lstm", "gru"])
def test_layers_on_the_cpu_backend_match_numpy(cls_name, kwargs, config, dtype, cpu, monkeypatch):
    if "cpu" not in backends.available():
        backends.register("cpu", "pyconv.backends.cpu")
    calls = set()
    for kernel in KERNELS:
        real = getattr(cpu, kernel)
        monkeypatch.setattr(cpu, kernel, (lambda real, kernel: lambda *a: calls.add(kernel) or real(*a))(real, kernel))
    want = _run_layer(cls_name, kwargs, LAYER_CONFIGS[config], dtype, "numpy")
    got = _run_layer(cls_name, kwargs, LAYER_CONFIGS[config], dtype, "cpu")
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        # float32 through several layers and steps: the reference runs in float32 too
        if dtype == np.float32:
            scale = max(1.0, float(np.abs(w).max(initial=0.0)))
            assert float(np.abs(g.astype(np.float64) - w).max(initial=0.0)) / scale <= 1e-4, k
        else:
            assert_matches(g, w, dtype, f"{cls_name} {k}")
    mode = {"RNN": "rnn_relu_cell" if kwargs else "rnn_tanh_cell", "LSTM": "lstm_cell", "GRU": "gru_cell"}
    assert calls == {f"{mode[cls_name]}_forward", f"{mode[cls_name]}_backward"}
