"""The cases of ``pyconv bench``: the shapes of ../shared/design/PERFORMANCE.md and the targets of
issue 4.

A :class:`Case` knows how to build, once, a no-argument callable that runs pyconv's op on a
given backend (``make``) and one that runs PyTorch's (``make_torch``); the comparison with the
NumPy reference is ``make("numpy")``. How pyconv is reached:

* **kernel** cases (conv, pooling, softmax, cross-entropy) call the backend's contract kernels
  directly (``pyconv.backends.get(name).conv2d_forward(...)``): the op layer and autograd are
  not timed. PyTorch runs the matching ATen operator (``F.conv2d`` under no_grad,
  ``aten.convolution_backward``, ``aten.max_pool2d_with_indices`` ...).
* **public API** cases (LSTMCell, GRUCell, nn.LSTM, training steps) run pyconv's modules,
  autograd and optimiser under ``pyconv.backends.use(name)``, and the same model in PyTorch.

Work per call: conv GFLOP = 2*N*K*(C/G)*R*S*P*Q (twice that for the backward: input + weight
gradients); memory-bound ops count the bytes of their inputs and outputs once; RNN GFLOP are the
gate GEMMs (forward 2*B*(I+Hd)*G*Hd, backward twice that); training steps count images.
All inputs are float32, NCHW, from a seeded generator.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

F32 = np.float32


@dataclass(frozen=True)
class Target:
    """Issue 4's target for a case: pyconv time / ``against`` time at most ``max_ratio``."""

    against: str  # "torch" or "numpy"
    max_ratio: float
    text: str


@dataclass
class Case:
    group: str  # what --case selects: conv, pool, softmax, loss, rnn, train
    name: str
    shape: str
    make: object  # make(backend_name) -> no-argument callable running pyconv
    make_torch: object  # make_torch(torch) -> no-argument callable running PyTorch
    kernels: tuple  # the contract kernels pyconv's side calls
    work: float  # per call, in `unit` * seconds (GFLOP, GB or images)
    unit: str  # "GFLOP/s", "GB/s" or "img/s"
    api: str = "kernel"  # "kernel" or "public API"
    targets: tuple = field(default_factory=tuple)

    def label(self) -> str:
        return f"{self.name} {self.shape}"


def _rng():
    return np.random.default_rng(0)


def _backend(name):
    from .. import backends

    return backends.get(name)


# ----- conv2d ---------------------------------------------------------------------------------

# (N, C, H, W, K, R, S, stride, pad, groups, label): PERFORMANCE.md's rows
CONV_SHAPES = [
    (64, 1, 28, 28, 32, 3, 3, 1, 0, 1, "MNIST layer 1"),
    (64, 32, 26, 26, 64, 3, 3, 1, 0, 1, "MNIST layer 2"),
    (64, 3, 32, 32, 32, 3, 3, 1, 1, 1, "CIFAR layer 1"),
    (64, 32, 16, 16, 64, 3, 3, 1, 1, 1, "3x3"),
    (32, 64, 56, 56, 64, 3, 3, 1, 1, 1, "3x3"),
    (32, 128, 28, 28, 128, 3, 3, 1, 1, 1, "deep 3x3"),
    (32, 256, 14, 14, 256, 3, 3, 1, 1, 1, "deep 3x3"),
    (32, 256, 56, 56, 64, 1, 1, 1, 0, 1, "1x1"),
    (32, 64, 56, 56, 64, 3, 3, 1, 1, 64, "depthwise"),
]

TORCH_LE_1 = Target("torch", 1.0, "<= 1.0x torch")
TORCH_LE_HALF = Target("torch", 0.5, "<= 0.5x torch")
NUMPY_10X = Target("numpy", 0.1, ">= 10x faster than numpy")


def conv_targets(label: str) -> tuple:
    if label == "deep 3x3":
        return (TORCH_LE_1, NUMPY_10X)
    if label in ("MNIST layer 1", "CIFAR layer 1", "1x1", "depthwise"):
        return (TORCH_LE_HALF, NUMPY_10X)
    return (NUMPY_10X,)


def conv_flops(n, c, h, w, k, r, s, stride, pad, groups) -> float:
    """2*N*K*(C/G)*R*S*P*Q of one forward pass."""
    p = (h + 2 * pad - r) // stride + 1
    q = (w + 2 * pad - s) // stride + 1
    return 2.0 * n * k * (c // groups) * r * s * p * q


def quick_conv_shape(shape):
    """A small shape of the same kind (same kernel, stride, padding, depthwise-ness)."""
    n, c, h, w, k, r, s, stride, pad, groups, label = shape
    small_c, small_k, small_g = min(c, 16), min(k, 16), 1
    if groups > 1 and groups == c:  # depthwise stays depthwise
        small_k = small_g = small_c
    return (2, small_c, min(h, 10), min(w, 10), small_k, r, s, stride, pad, small_g, label)


def _conv_inputs(shape):
    n, c, h, w, k, r, s, stride, pad, groups, _ = shape
    rng = _rng()
    x = rng.standard_normal((n, c, h, w), dtype=F32)
    weight = rng.standard_normal((k, c // groups, r, s), dtype=F32) * 0.1
    bias = rng.standard_normal(k, dtype=F32)
    geometry = dict(stride=(stride, stride), padding=(pad,) * 4, dilation=(1, 1), groups=groups)
    return x, weight, bias, geometry


def conv_case(shape, direction: str) -> Case:
    """Forward (``fwd``: y with bias) or backward (``bwd``: input and weight gradients)."""
    n, c, h, w, k, r, s, stride, pad, groups, label = shape

    def make(backend_name):
        be = _backend(backend_name)
        x, weight, bias, geometry = _conv_inputs(shape)
        if direction == "fwd":
            return lambda: be.conv2d_forward(x, weight, bias, **geometry)
        grad_y = _backend("numpy").conv2d_forward(x, weight, None, **geometry)

        def backward():
            be.conv2d_backward_input(grad_y, weight, x.shape, **geometry)
            be.conv2d_backward_weight(grad_y, x, weight.shape, **geometry)
        return backward

    def make_torch(torch):
        x, weight, bias, _ = _conv_inputs(shape)
        tx, tw, tb = (torch.from_numpy(a) for a in (x, weight, bias))
        if direction == "fwd":
            def forward():
                with torch.no_grad():
                    torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)
            return forward
        with torch.no_grad():
            tgy = torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups)
        return lambda: torch.ops.aten.convolution_backward(
            tgy, tx, tw, None, [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], groups,
            [True, True, False])

    kernels = (("conv2d_forward",) if direction == "fwd"
               else ("conv2d_backward_input", "conv2d_backward_weight"))
    flops = conv_flops(*shape[:10]) * (1 if direction == "fwd" else 2)
    text = ",".join(str(v) for v in shape[:9]) + (f" g={groups}" if groups > 1 else "")
    return Case("conv", f"conv {direction} {label}", f"({text})", make, make_torch, kernels,
                flops / 1e9, "GFLOP/s", targets=conv_targets(label))


# ----- max_pool2d -----------------------------------------------------------------------------

POOL_ARGS = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))


def pool_case(shape, direction: str) -> Case:
    """max_pool2d 2x2 stride 2 with indices (the training path) and its backward."""
    n, c, h, w = shape
    p, q = h // 2, w // 2

    def inputs():
        x = _rng().standard_normal(shape, dtype=F32)
        return x, _rng().standard_normal((n, c, p, q), dtype=F32)

    def make(backend_name):
        be = _backend(backend_name)
        x, grad_y = inputs()
        if direction == "fwd":
            return lambda: be.max_pool2d_forward(x, ceil_mode=False, **POOL_ARGS)
        _, indices = _backend("numpy").max_pool2d_forward(x, ceil_mode=False, **POOL_ARGS)
        return lambda: be.max_pool2d_backward(grad_y, indices, x.shape, **POOL_ARGS)

    def make_torch(torch):
        x, grad_y = (torch.from_numpy(a) for a in inputs())
        geometry = ([2, 2], [2, 2], [0, 0], [1, 1], False)
        forward = torch.ops.aten.max_pool2d_with_indices
        if direction == "fwd":
            return lambda: forward(x, *geometry)
        _, indices = forward(x, *geometry)
        return lambda: torch.ops.aten.max_pool2d_with_indices_backward(grad_y, x, *geometry,
                                                                       indices)

    small, big = n * c * p * q, n * c * h * w
    # fwd: x in, y and int64 indices out; bwd: grad_y and indices in, grad_x out
    nbytes = 4 * big + 12 * small
    kernels = ("max_pool2d_forward",) if direction == "fwd" else ("max_pool2d_backward",)
    targets = (Target("torch", 0.2, "<= 0.2x torch"),) if direction == "fwd" else ()
    return Case("pool", f"max_pool2d 2x2 {direction}", str(tuple(shape)), make, make_torch,
                kernels, nbytes / 1e9, "GB/s", targets=targets)


# ----- softmax, log_softmax, cross-entropy ----------------------------------------------------

SOFTMAX_TARGET = Target("torch", 0.7, "<= 0.7x torch")


def softmax_case(shape, op: str, direction: str) -> Case:
    """softmax or log_softmax along dim 1 of an (M, C) array."""

    def inputs():
        rng = _rng()
        return rng.standard_normal(shape, dtype=F32), rng.standard_normal(shape, dtype=F32)

    def make(backend_name):
        be = _backend(backend_name)
        forward, backward = getattr(be, f"{op}_forward"), getattr(be, f"{op}_backward")
        x, grad_y = inputs()
        if direction == "fwd":
            return lambda: forward(x, 1)
        y = getattr(_backend("numpy"), f"{op}_forward")(x, 1)
        return lambda: backward(grad_y, y, 1)

    def make_torch(torch):
        x, grad_y = (torch.from_numpy(a) for a in inputs())
        forward = getattr(torch, op)
        if direction == "fwd":
            return lambda: forward(x, 1)
        y = forward(x, 1)
        backward = getattr(torch.ops.aten, f"_{op}_backward_data")
        return lambda: backward(grad_y, y, 1, torch.float32)

    size = 4 * shape[0] * shape[1]
    nbytes = size * (2 if direction == "fwd" else 3)
    return Case("softmax", f"{op} {direction}", str(tuple(shape)), make, make_torch,
                (f"{op}_{'forward' if direction == 'fwd' else 'backward'}",), nbytes / 1e9,
                "GB/s", targets=(SOFTMAX_TARGET,))


CE_ARGS = dict(weight=None, reduction="mean", ignore_index=-100, label_smoothing=0.0)


def cross_entropy_case(shape) -> Case:
    """Forward and backward of the mean cross-entropy of (M, C) logits with class targets."""
    m, c = shape

    def inputs():
        rng = _rng()
        return rng.standard_normal(shape, dtype=F32), rng.integers(0, c, m).astype(np.int64)

    def make(backend_name):
        be = _backend(backend_name)
        logits, target = inputs()
        grad_loss = np.ones((), F32)

        def step():
            _, log_probs = be.cross_entropy_forward(logits, target, **CE_ARGS)
            be.cross_entropy_backward(grad_loss, log_probs, target, **CE_ARGS)
        return step

    def make_torch(torch):
        logits, target = (torch.from_numpy(a) for a in inputs())
        logits.requires_grad_(True)

        def step():
            torch.nn.functional.cross_entropy(logits, target).backward()
            logits.grad = None
        return step

    nbytes = 4 * m * c * 2 + 8 * m  # logits in, their gradient out, targets in
    return Case("loss", "cross_entropy fwd+bwd", str(tuple(shape)), make, make_torch,
                ("cross_entropy_forward", "cross_entropy_backward"), nbytes / 1e9, "GB/s",
                targets=(SOFTMAX_TARGET,))


# ----- recurrent layers (public API) ----------------------------------------------------------

RNN_TARGET = Target("torch", 1.0, "<= 1.0x torch")
GATES = {"LSTMCell": 4, "GRUCell": 3}


def _pyconv():
    import pyconv
    import pyconv.nn.functional  # noqa: F401  (lib.nn.functional below)

    return pyconv


def _use(backend_name):
    from .. import backends

    return backends.use(backend_name)


def _clear_grads(tensors):
    for t in tensors:
        t.grad = None


def _context(backend_name):
    """pyconv's side runs under backends.use(backend_name); PyTorch's (None) under nothing."""
    return (lambda: _use(backend_name)) if backend_name else contextlib.nullcontext


def cell_case(kind: str, batch: int, inputs: int, hidden: int) -> Case:
    """One LSTMCell / GRUCell step forward and backward (gradients of input, state, weights)."""

    def build(lib, backend_name=None):
        """The step in ``lib`` (pyconv or torch: the same API here)."""
        rng = _rng()
        cell = getattr(lib.nn, kind)(inputs, hidden)
        x, h, c = (lib.from_numpy(rng.standard_normal(shape, dtype=F32)).requires_grad_()
                   for shape in ((batch, inputs), (batch, hidden), (batch, hidden)))
        leaves = [x, h, c, *cell.parameters()]
        context = _context(backend_name)

        def step():
            with context():
                if kind == "LSTMCell":
                    h2, c2 = cell(x, (h, c))
                    (h2.sum() + c2.sum()).backward()
                else:
                    cell(x, h).sum().backward()
            _clear_grads(leaves)
        return step

    flops = 3 * 2.0 * batch * (inputs + hidden) * GATES[kind] * hidden
    base = "lstm_cell" if kind == "LSTMCell" else "gru_cell"
    return Case("rnn", f"{kind} fwd+bwd", f"(B={batch}, {inputs}->{hidden})",
                lambda backend_name: build(_pyconv(), backend_name), build,
                (f"{base}_forward", f"{base}_backward"), flops / 1e9, "GFLOP/s",
                api="public API", targets=(RNN_TARGET,))


def lstm_case(steps: int, batch: int, inputs: int, hidden: int) -> Case:
    """nn.LSTM (one layer) over a (steps, batch, inputs) sequence, forward + backward of the
    summed outputs (weight gradients; the input does not require grad)."""

    def build(lib, backend_name=None):
        lstm = lib.nn.LSTM(inputs, hidden)
        x = lib.from_numpy(_rng().standard_normal((steps, batch, inputs), dtype=F32))
        params = list(lstm.parameters())
        context = _context(backend_name)

        def step():
            with context():
                out, _ = lstm(x)
                out.sum().backward()
            _clear_grads(params)
        return step

    flops = steps * 3 * 2.0 * batch * (inputs + hidden) * 4 * hidden
    return Case("rnn", f"nn.LSTM {steps} steps fwd+bwd",
                f"(T={steps}, B={batch}, {inputs}->{hidden})",
                lambda backend_name: build(_pyconv(), backend_name), build,
                ("lstm_sequence_forward", "lstm_sequence_backward"), flops / 1e9, "GFLOP/s",
                api="public API", targets=(RNN_TARGET,))


# ----- whole training steps (public API) ------------------------------------------------------

TRAIN_TARGET = Target("torch", 1 / 1.5, ">= 1.5x torch img/s")
TRAIN_KERNELS = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
                 "relu_forward", "relu_backward", "max_pool2d_forward", "max_pool2d_backward",
                 "linear_forward", "linear_backward_input", "linear_backward_weight",
                 "cross_entropy_forward", "cross_entropy_backward", "adam_step")
MODELS = {"LeNetMNIST": (1, 28), "CifarConvNet": (3, 32)}


def torch_model(torch, pyconv_model):
    """The same architecture in PyTorch (features + classifier Sequentials, so the state_dict
    keys match) holding ``pyconv_model``'s current parameters."""
    from .. import nn as pnn

    def convert(layer):
        tnn = torch.nn
        if isinstance(layer, pnn.Conv2d):
            return tnn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                              padding=layer.padding)
        if isinstance(layer, pnn.Linear):
            return tnn.Linear(layer.in_features, layer.out_features)
        if isinstance(layer, pnn.ReLU):
            return tnn.ReLU()
        if isinstance(layer, pnn.MaxPool2d):
            return tnn.MaxPool2d(layer.kernel_size)
        raise TypeError(f"no PyTorch twin for {type(layer).__name__}")

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(*map(convert, pyconv_model.features))
            self.classifier = torch.nn.Sequential(*map(convert, pyconv_model.classifier))

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    twin = Twin()
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                          for k, v in pyconv_model.state_dict().items()})
    return twin


def _batch(model_name, batch, seed=0):
    channels, size = MODELS[model_name]
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, channels, size, size), dtype=F32),
            rng.integers(0, 10, batch).astype(np.int64))


def _pyconv_model(model_name):
    import pyconv
    from .. import models

    pyconv.manual_seed(0)
    return getattr(models, model_name)()


def _train_step(lib, model, batch, backend_name=None, lr=1e-3):
    """zero_grad, forward, cross_entropy, backward, Adam step in ``lib`` (pyconv or torch);
    the step returns the loss."""
    opt = lib.optim.Adam(model.parameters(), lr=lr)
    images, labels = (lib.from_numpy(a) for a in batch)
    context = _context(backend_name)

    def step():
        with context():
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            opt.step()
        return float(loss.item())
    return step


def make_train_step(model_name, batch, backend_name):
    """pyconv's training step on ``backend_name``."""
    return _train_step(_pyconv(), _pyconv_model(model_name), _batch(model_name, batch),
                       backend_name)


def make_torch_train_step(model_name, batch, torch):
    """The same step in PyTorch, from the same initial weights and batch."""
    return _train_step(torch, torch_model(torch, _pyconv_model(model_name)),
                       _batch(model_name, batch))


def train_case(model_name: str, batch: int) -> Case:
    channels, size = MODELS[model_name]
    return Case("train", f"train step {model_name} (Adam)", f"(N={batch}, {channels}x{size}x{size})",
                lambda backend_name: make_train_step(model_name, batch, backend_name),
                lambda torch: make_torch_train_step(model_name, batch, torch),
                TRAIN_KERNELS, float(batch), "img/s", api="public API",
                targets=(TRAIN_TARGET,))


# ----- the suite ------------------------------------------------------------------------------

GROUPS = ("conv", "pool", "softmax", "loss", "rnn", "train")


def all_cases(quick: bool = False) -> list:
    """Every case, in PERFORMANCE.md's order; ``quick`` shrinks the shapes (same kinds)."""
    cases = []
    for shape in CONV_SHAPES:
        shape = quick_conv_shape(shape) if quick else shape
        cases += [conv_case(shape, "fwd"), conv_case(shape, "bwd")]
    pool = (2, 4, 10, 10) if quick else (64, 32, 26, 26)
    cases += [pool_case(pool, "fwd"), pool_case(pool, "bwd")]
    rows = (64, 100) if quick else (4096, 1000)
    for op in ("softmax", "log_softmax"):
        cases += [softmax_case(rows, op, "fwd"), softmax_case(rows, op, "bwd")]
    cases.append(cross_entropy_case(rows))
    cell = (4, 16, 32) if quick else (64, 128, 256)
    cases += [cell_case("LSTMCell", *cell), cell_case("GRUCell", *cell),
              lstm_case(5 if quick else 50, *cell)]
    batch = 8 if quick else 64
    cases += [train_case("LeNetMNIST", batch), train_case("CifarConvNet", batch)]
    return cases


def select(cases: list, spec: str | None) -> list:
    """Cases whose group equals, or whose name contains (case-insensitively), one of the
    comma-separated words of ``spec``; all of them for None/empty. ValueError naming any word
    that selects nothing."""
    if not spec:
        return list(cases)
    words = [w.strip().lower() for w in spec.split(",") if w.strip()]

    def hit(case, word):
        return word == case.group or word in case.label().lower()

    unknown = [w for w in words if not any(hit(c, w) for c in cases)]
    if unknown:
        raise ValueError(f"--case {', '.join(unknown)} selects no case: use a group "
                         f"({', '.join(GROUPS)}) or part of a case name")
    return [c for c in cases if any(hit(c, w) for w in words)]
