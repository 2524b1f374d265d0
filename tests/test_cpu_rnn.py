"""The cpu backend's C++ recurrent cells (csrc/cpu/rnn.cpp) against the NumPy float64 reference:
every forward and backward kernel of the RNN (tanh, relu), LSTM and GRU cells on seeded random
sizes (batch, input and hidden sizes of 1, non-multiples of 8, past the GEMM's blocks), with and
without biases, float64 and float32, at 1 and 2 threads; the vector sigmoid/tanh element by
element over their whole range; non-contiguous and misaligned inputs; errors at the native
boundary; and nn.RNN / nn.LSTM / nn.GRU (2 layers, bidirectional, batch_first) on the cpu backend
against the numpy backend. The whole-sequence kernels (csrc/cpu/rnn_sequence.cpp) are tested the
same way in the last section."""

import numpy as np
import pytest

import pyconv
from pyconv import backends, nn
from pyconv.backends import numpy_ref
from cpu_support import assert_close_to_reference
from test_cpu_gemm_conv import misaligned, threads  # noqa: F401 (threads: 1 and 2, a fixture)
from test_rnn import GATES, LAYER_CONFIGS

_C = pyconv._native._C
pytestmark = pytest.mark.skipif(_C is None or not hasattr(_C, "lstm_cell_forward"),
                                reason="pyconv._C with the rnn kernels is not built")

# relative to the output's scale (its largest magnitude, at least 1)
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}
CELLS = sorted(GATES)
KERNELS = [f"{cell}_{d}" for cell in CELLS for d in ("forward", "backward")]
SEQUENCES = [cell.replace("_cell", "_sequence") for cell in CELLS]
SEQUENCE_KERNELS = [f"{seq}_{d}" for seq in SEQUENCES for d in ("forward", "backward")]

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
    assert_close_to_reference(got, want, dtype, TOLERANCE[dtype], what)


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
    for kernel in KERNELS + SEQUENCE_KERNELS:
        assert getattr(cpu, kernel).runs_on_reference is False
    assert set(cpu.REFERENCE_KERNELS).isdisjoint(KERNELS + SEQUENCE_KERNELS)


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
    for kernel in KERNELS + SEQUENCE_KERNELS:
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
    # the layers run one sequence kernel per layer and direction
    mode = {"RNN": "rnn_relu_sequence" if kwargs else "rnn_tanh_sequence", "LSTM": "lstm_sequence",
            "GRU": "gru_sequence"}
    assert calls == {f"{mode[cls_name]}_forward", f"{mode[cls_name]}_backward"}


# ---------------------------------------------------------------------------------------------
# whole-sequence kernels (csrc/cpu/rnn_sequence.cpp) against the reference
# ---------------------------------------------------------------------------------------------

# (L, B, I, Hd): L = 1, sizes of 1, an empty batch, non-multiples of 8, and G*Hd past KC = 256
# (several k blocks in the backward's per-step GEMM; NC-wide forward panels for the LSTM)
SEQUENCE_SIZES = [(1, 3, 5, 4), (4, 1, 1, 1), (3, 0, 2, 3), (5, 7, 9, 13), (2, 2, 200, 70),
                  (2, 5, 1, 260), (6, 4, 3, 1)]
SEQUENCE_CASES = [(size, BIASES[i % len(BIASES)], reverse)
                  for i, size in enumerate(SEQUENCE_SIZES) for reverse in (False, True)]


def sequence_inputs(seq, size, biases, seed):
    """(x, h0, (c0,) w_ih, w_hh, b_ih, b_hh) in float64."""
    length, batch, in_size, hidden = size
    cell = cell_inputs(seq.replace("_sequence", "_cell"), (batch, in_size, hidden), biases, seed)
    x = np.random.default_rng(seed + 100).standard_normal((length, batch, in_size))
    return [x] + cell[1:]


def sequence_backward_args(seq, inputs, outputs, rng, reverse, input_grad=True):
    """Random gradients of out and the final states, then the saved tensors."""
    states = 2 if seq == "lstm_sequence" else 1
    x, w_ih, w_hh = inputs[0], inputs[-4], inputs[-3]
    out = outputs[0]
    grads = [rng.standard_normal(out.shape)] + [rng.standard_normal(s.shape)
                                                 for s in outputs[1:1 + states]]
    saved = list(outputs[1 + states:])
    return grads + [x, *inputs[1:1 + states], w_ih, w_hh, out] + saved + [reverse, input_grad]


def check_sequence_kernels(cpu, seq, inputs, reverse, dtype, seed, input_grad=True):
    forward = f"{seq}_forward"
    want = getattr(numpy_ref, forward)(*inputs, reverse)
    got = getattr(cpu, forward)(*cast(inputs, dtype), reverse)
    assert isinstance(got, tuple) and len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_matches(g, w, dtype, f"{forward} output {k}")
    args = sequence_backward_args(seq, inputs, want, np.random.default_rng(seed + 1), reverse,
                                  input_grad)
    arrays = cast(args[:-2], dtype)
    backward = f"{seq}_backward"
    want = getattr(numpy_ref, backward)(*cast(arrays, np.float64), *args[-2:])
    got = getattr(cpu, backward)(*arrays, *args[-2:])
    assert isinstance(got, tuple) and len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None, f"{backward} output {k}"
        else:
            assert_matches(g, w, dtype, f"{backward} output {k}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size, biases, reverse", SEQUENCE_CASES,
                         ids=[f"{s}-{b}-{'rev' if r else 'fwd'}" for s, b, r in SEQUENCE_CASES])
@pytest.mark.parametrize("seq", SEQUENCES)
def test_sequences_match_reference(seq, size, biases, reverse, dtype, threads, cpu):
    seed = sum(size) * 5 + BIASES.index(biases)
    check_sequence_kernels(cpu, seq, sequence_inputs(seq, size, biases, seed), reverse, dtype, seed)


@pytest.mark.parametrize("seq", SEQUENCES)
def test_sequence_backward_without_input_gradient(seq, cpu):
    inputs = sequence_inputs(seq, (4, 5, 6, 7), "both", 11)
    check_sequence_kernels(cpu, seq, inputs, True, np.float64, 11, input_grad=False)


def test_sequence_results_do_not_depend_on_the_thread_count(cpu):
    before = pyconv.get_num_threads()
    try:
        for seq in SEQUENCES:
            inputs = cast(sequence_inputs(seq, (6, 37, 50, 70), "both", 3), np.float32)
            outputs = getattr(numpy_ref, f"{seq}_forward")(*inputs, False)
            args = sequence_backward_args(seq, inputs, cast(outputs, np.float32),
                                          np.random.default_rng(4), False)
            args = cast(args[:-2], np.float32) + args[-2:]
            runs = []
            for n in (1, 2):
                pyconv.set_num_threads(n)
                runs.append(getattr(cpu, f"{seq}_forward")(*inputs, False)
                            + getattr(cpu, f"{seq}_backward")(*args))
            for a, b in zip(*runs):
                np.testing.assert_array_equal(a, b)
    finally:
        pyconv.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sequence_non_contiguous_and_misaligned_inputs_through_the_backend(dtype, cpu):
    inputs = sequence_inputs("lstm_sequence", (5, 6, 11, 9), "both", 8)
    want = numpy_ref.lstm_sequence_forward(*inputs, True)
    x, h, c, w_ih, w_hh, b_ih, b_hh = cast(inputs, dtype)
    views = [np.asfortranarray(x), misaligned(h), np.repeat(c, 2, axis=1)[:, ::2],
             misaligned(w_ih.T).T, w_hh, misaligned(b_ih), np.repeat(b_hh, 3)[::3]]
    assert not views[0].flags.c_contiguous and not views[2].flags.c_contiguous
    for g, w in zip(cpu.lstm_sequence_forward(*views, True), want):
        assert_matches(g, w, dtype, "lstm sequence views")
    inputs = sequence_inputs("gru_sequence", (4, 5, 7, 10), "ih", 9)
    outputs = numpy_ref.gru_sequence_forward(*inputs, False)
    args = sequence_backward_args("gru_sequence", inputs, outputs, np.random.default_rng(1), False)
    arrays = cast(args[:-2], dtype)
    want = numpy_ref.gru_sequence_backward(*cast(arrays, np.float64), False, True)
    views = [np.asfortranarray(a) if k % 2 else misaligned(a) for k, a in enumerate(arrays)]
    for g, w in zip(cpu.gru_sequence_backward(*views, False, True), want):
        assert_matches(g, w, dtype, "gru sequence backward views")


def test_sequence_bad_arguments_raise_errors_that_name_them():
    f32 = np.float32
    x, h, c = np.zeros((3, 2, 3), f32), np.zeros((2, 4), f32), np.zeros((2, 4), f32)
    w_ih, w_hh, b = np.zeros((16, 3), f32), np.zeros((16, 4), f32), np.zeros(16, f32)
    out, h_n, c_n, gates, c_all = _C.lstm_sequence_forward(x, h, c, w_ih, w_hh, b, None, False)
    with pytest.raises(ValueError, match="x must have 3 dimensions, got shape \\(2, 3\\)"):
        _C.lstm_sequence_forward(x[0].copy(), h, c, w_ih, w_hh, b, b, False)
    with pytest.raises(ValueError, match="h0 must have shape \\(2, 4\\), got \\(3, 4\\)"):
        _C.gru_sequence_forward(x, np.zeros((3, 4), f32), w_ih[:12].copy(), w_hh[:12].copy(), None, None,
                                False)
    with pytest.raises(ValueError, match="c0 must have shape \\(2, 4\\), got \\(2, 5\\)"):
        _C.lstm_sequence_forward(x, h, np.zeros((2, 5), f32), w_ih, w_hh, None, None, True)
    with pytest.raises(ValueError, match="w_ih must have shape \\(4, 3\\), got \\(4, 2\\)"):
        _C.rnn_tanh_sequence_forward(x, h, np.zeros((4, 2), f32), w_hh[:4].copy(), None, None, False)
    with pytest.raises(ValueError, match="b_hh must have shape \\(16,\\), got \\(15,\\)"):
        _C.lstm_sequence_forward(x, h, c, w_ih, w_hh, b, b[:15].copy(), False)
    with pytest.raises(TypeError, match="w_hh must be float32 like the other arrays, got float64"):
        _C.rnn_relu_sequence_forward(x, h, w_ih[:4].copy(), w_hh[:4].astype(np.float64), None, None, False)
    with pytest.raises(ValueError, match="grad_out must have shape \\(3, 2, 4\\), got \\(2, 2, 4\\)"):
        _C.lstm_sequence_backward(out[:2].copy(), h_n, c_n, x, h, c, w_ih, w_hh, out, gates, c_all, False, True)
    with pytest.raises(ValueError, match="gates must have shape \\(3, 2, 16\\), got \\(3, 2, 12\\)"):
        _C.lstm_sequence_backward(out, h_n, c_n, x, h, c, w_ih, w_hh, out, gates[..., :12].copy(), c_all,
                                  False, True)
    with pytest.raises(ValueError, match="workspace must have shape \\(3, 2, 16\\)"):
        _C.gru_sequence_backward(out, h_n, x, h, w_ih[:12].copy(), w_hh[:12].copy(), out,
                                 np.zeros((3, 2, 12), f32), False, True)
    with pytest.raises(ValueError, match="out must have shape \\(3, 2, 4\\)"):
        _C.rnn_tanh_sequence_backward(out, h_n, x, h, w_ih[:4].copy(), w_hh[:4].copy(), x, False, True)
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        _C.rnn_tanh_sequence_forward(np.asfortranarray(x), h, w_ih[:4].copy(), w_hh[:4].copy(), None, None,
                                     False)
    strided = np.lib.stride_tricks.as_strided
    # C-contiguous views of one buffer with huge shapes: never read, as the checks come first
    huge = strided(np.zeros(1, f32), (2 ** 30, 2 ** 29, 1), (2 ** 31, 4, 4))
    state = strided(np.zeros(2, f32), (2 ** 29, 2), (8, 4))
    assert huge.flags.c_contiguous and state.flags.c_contiguous
    with pytest.raises(ValueError, match="overflows 64 bits"):  # 4 * gates (2^59, 8)
        _C.lstm_sequence_forward(huge, state, state, np.zeros((8, 1), f32), np.zeros((8, 2), f32), None,
                                 None, False)
