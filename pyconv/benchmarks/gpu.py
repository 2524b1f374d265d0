"""GPU benchmarks of pyconv's CUDA kernels (issue 5 item 7), against PyTorch (cuDNN / cuBLAS)
on the same GPU when a CUDA build of torch is importable.

    python bench/bench_cuda.py                      # every case on the GPU
    python bench/bench_cuda.py --case "deep,train"  # cases whose name contains a part
    python bench/bench_cuda.py --device simt --quick  # a smoke run on the SIMT emulator

Cases: the conv shapes of ../shared/design/PERFORMANCE.md (forward; backward = input + weight
gradients) on the contract kernels, LSTMCell / GRUCell steps (forward + backward kernels) and
whole training steps of the LeNet-MNIST and CIFAR ConvNet models (batch 64, Adam, public API,
model and batch on the device). Before timing, every kernel case is checked once against the
NumPy float64 reference (``max rel err``), so a fast wrong kernel cannot pass unnoticed.

Timing: one warm-up call, then ``repeats`` calls each between two CUDA events (``torch.cuda``
events for PyTorch); medians. Rates are TFLOP/s (conv: 2*N*K*(C/G)*R*S*P*Q per pass, twice that
for the backward; cells: the gate GEMMs) or images/s. On ``--device simt`` the kernels run on
the CPU emulator and the wall clock times them: that run proves the script and the kernels work
on a machine without a GPU; its times say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass

import numpy as np

from . import cases as cpu_cases

F32 = np.float32


@dataclass
class GpuCase:
    name: str
    shape: str
    build: object        # build(dev) -> no-argument callable running pyconv
    build_torch: object  # build_torch(torch) -> callable on torch's CUDA device, or None
    check: object        # check(dev) -> max relative error against the float64 reference, or None
    work: float          # per call: FLOP, or images for training steps
    unit: str            # "TFLOP/s" or "img/s"


class Device:
    """Where pyconv's side runs: ``cuda`` (CuPy arrays, CUDA events) or ``simt`` (emulator)."""

    def __init__(self, name: str):
        from .. import backends

        self.name = name
        self.kernels = backends.get(name)  # RuntimeError with the reason when unavailable
        if name == "cuda":
            import cupy

            self.xp = cupy
        else:
            self.xp = np

    def put(self, array):
        return self.xp.asarray(array)

    def host(self, array):
        return array.get() if hasattr(array, "get") else np.asarray(array)

    def time(self, fn) -> float:
        """Seconds of one call: the backend device's timer (CUDA events on a GPU, the wall clock
        under the emulator)."""
        return self.kernels.device.time_call(fn)


def _torch_time(torch, fn) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def _rel_err(got, want) -> float:
    want = np.asarray(want, np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / max(np.max(np.abs(want)), 1e-30))


# ----- conv ------------------------------------------------------------------------------------

def conv_case(shape, direction: str) -> GpuCase:
    n, c, h, w, k, r, s, stride, pad, groups, label = shape
    x, weight, bias, geo = cpu_cases._conv_inputs(shape)
    from ..backends import numpy_ref

    grad_y = numpy_ref.conv2d_forward(x, weight, None, **geo)

    def run(dev, xs):
        be = dev.kernels
        if direction == "fwd":
            return (lambda: be.conv2d_forward(xs[0], xs[1], xs[2], **geo))
        return lambda: (be.conv2d_backward_input(xs[3], xs[1], x.shape, **geo),
                        be.conv2d_backward_weight(xs[3], xs[0], weight.shape, **geo))

    def build(dev):
        return run(dev, [dev.put(a) for a in (x, weight, bias, grad_y)])

    def check(dev):
        got = run(dev, [dev.put(a) for a in (x, weight, bias, grad_y)])()
        x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, weight, bias, grad_y))
        if direction == "fwd":
            return _rel_err(dev.host(got), numpy_ref.conv2d_forward(x64, w64, b64, **geo))
        want = (numpy_ref.conv2d_backward_input(g64, w64, x.shape, **geo),
                numpy_ref.conv2d_backward_weight(g64, x64, weight.shape, **geo))
        return max(_rel_err(dev.host(a), b) for a, b in zip(got, want))

    def build_torch(torch):
        tx, tw, tb, tg = (torch.from_numpy(a).cuda() for a in (x, weight, bias, grad_y))
        if direction == "fwd":
            return lambda: torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)
        return lambda: torch.ops.aten.convolution_backward(
            tg, tx, tw, None, [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], groups,
            [True, True, False])

    flops = cpu_cases.conv_flops(*shape[:10]) * (1 if direction == "fwd" else 2)
    text = ",".join(str(v) for v in shape[:9]) + (f" g={groups}" if groups > 1 else "")
    return GpuCase(f"conv {direction} {label}", f"({text})", build, build_torch, check, flops,
                   "TFLOP/s")


# ----- recurrent cells -------------------------------------------------------------------------

def cell_case(kind: str, batch: int, inputs: int, hidden: int) -> GpuCase:
    gates = {"lstm": 4, "gru": 3}[kind]
    rng = np.random.default_rng(0)
    host = dict(x=rng.standard_normal((batch, inputs), dtype=F32),
                h=rng.standard_normal((batch, hidden), dtype=F32),
                c=rng.standard_normal((batch, hidden), dtype=F32),
                w_ih=rng.standard_normal((gates * hidden, inputs), dtype=F32) * 0.1,
                w_hh=rng.standard_normal((gates * hidden, hidden), dtype=F32) * 0.1,
                b_ih=rng.standard_normal(gates * hidden, dtype=F32),
                b_hh=rng.standard_normal(gates * hidden, dtype=F32),
                g=rng.standard_normal((batch, hidden), dtype=F32))

    def step(be, a):
        if kind == "lstm":
            h2, c2, saved = be.lstm_cell_forward(a["x"], a["h"], a["c"], a["w_ih"], a["w_hh"],
                                                 a["b_ih"], a["b_hh"])
            return (h2, c2) + tuple(be.lstm_cell_backward(a["g"], a["g"], a["x"], a["h"], a["c"],
                                                          a["w_ih"], a["w_hh"], saved, c2))
        h2, work = be.gru_cell_forward(a["x"], a["h"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
        return (h2,) + tuple(be.gru_cell_backward(a["g"], a["x"], a["h"], a["w_ih"], a["w_hh"],
                                                  work))

    def build(dev):
        arrays = {k: dev.put(v) for k, v in host.items()}
        return lambda: step(dev.kernels, arrays)

    def check(dev):
        from ..backends import numpy_ref

        got = step(dev.kernels, {k: dev.put(v) for k, v in host.items()})
        want = step(numpy_ref, {k: v.astype(np.float64) for k, v in host.items()})
        return max(_rel_err(dev.host(a), b) for a, b in zip(got, want))

    def build_torch(torch):
        cell = (torch.nn.LSTMCell if kind == "lstm" else torch.nn.GRUCell)(inputs, hidden).cuda()
        x = torch.from_numpy(host["x"]).cuda().requires_grad_()
        h = torch.from_numpy(host["h"]).cuda().requires_grad_()
        c = torch.from_numpy(host["c"]).cuda().requires_grad_()

        def run():
            out = cell(x, (h, c)) if kind == "lstm" else (cell(x, h),)
            sum(o.sum() for o in out).backward()
        return run

    flops = 3 * 2.0 * batch * (inputs + hidden) * gates * hidden
    name = "LSTMCell" if kind == "lstm" else "GRUCell"
    return GpuCase(f"{name} fwd+bwd", f"(B={batch}, {inputs}->{hidden})", build, build_torch,
                   check, flops, "TFLOP/s")


# ----- training steps --------------------------------------------------------------------------

def train_case(model_name: str, batch: int) -> GpuCase:
    channels, size = cpu_cases.MODELS[model_name]

    def build(dev):
        import pyconv
        from .. import backends

        model = cpu_cases._pyconv_model(model_name)
        images, labels = (pyconv.from_numpy(a) for a in cpu_cases._batch(model_name, batch))
        if dev.name == "cuda":
            model.cuda()
            images, labels = images.cuda(), labels.cuda()
        opt = pyconv.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            with backends.use(dev.name):
                opt.zero_grad()
                loss = pyconv.nn.functional.cross_entropy(model(images), labels)
                loss.backward()
                opt.step()
        return step

    def build_torch(torch):
        model = cpu_cases.torch_model(torch, cpu_cases._pyconv_model(model_name)).cuda()
        images, labels = (torch.from_numpy(a).cuda() for a in cpu_cases._batch(model_name, batch))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            opt.step()
        return step

    return GpuCase(f"train step {model_name} (Adam)", f"(N={batch}, {channels}x{size}x{size})",
                   build, build_torch, None, float(batch), "img/s")


def all_cases(quick: bool = False) -> list:
    shapes = [cpu_cases.quick_conv_shape(s) if quick else s for s in cpu_cases.CONV_SHAPES]
    cells = (4, 8, 8) if quick else (64, 256, 256)
    batch = 2 if quick else 64
    return ([conv_case(s, d) for s in shapes for d in ("fwd", "bwd")]
            + [cell_case(kind, *cells) for kind in ("lstm", "gru")]
            + [train_case(m, batch) for m in cpu_cases.MODELS])


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__} has no usable CUDA device"
    return torch, None


def run(device: str = "cuda", quick: bool = False, case: str | None = None, repeats: int = 10,
        stream=None) -> int:
    """Prints the table; returns the exit status (0; 1 when a kernel fails its check)."""
    stream = stream or sys.stdout
    try:
        dev = Device(device)
    except RuntimeError as exc:
        print(f"pyconv GPU benchmarks need the {device} backend: {exc}", file=stream)
        return 0 if device == "cuda" else 1
    selected = [c for c in all_cases(quick)
                if not case or any(p.strip() in c.name for p in case.split(","))]
    if not selected:
        raise ValueError(f"no GPU benchmark case matches {case!r}")
    torch, why = _torch_cuda() if device == "cuda" else (None, "not compared on the emulator")
    print(f"pyconv GPU benchmarks on {device}; PyTorch: {'torch ' + torch.__version__ if torch else why}",
          file=stream)
    print("| case | shape | pyconv ms | torch ms | ratio | pyconv rate | torch rate | max rel err |",
          file=stream)
    print("| --- | --- | --- | --- | --- | --- | --- | --- |", file=stream)
    status = 0
    for c in selected:
        err = c.check(dev) if c.check else None
        if err is not None and err > 1e-3:
            status = 1
        fn = c.build(dev)
        fn()
        ours = statistics.median(dev.time(fn) for _ in range(repeats))
        theirs = None
        if torch is not None:
            tfn = c.build_torch(torch)
            tfn()
            theirs = statistics.median(_torch_time(torch, tfn) for _ in range(repeats))
        scale = 1e12 if c.unit == "TFLOP/s" else 1.0

        def rate(seconds):
            return f"{c.work / seconds / scale:.3g} {c.unit}"

        print(f"| {c.name} | {c.shape} | {ours * 1e3:.3g} | "
              f"{'' if theirs is None else f'{theirs * 1e3:.3g}'} | "
              f"{'' if theirs is None else f'{ours / theirs:.2f}'} | {rate(ours)} | "
              f"{'' if theirs is None else rate(theirs)} | "
              f"{'' if err is None else f'{err:.1e}' + (' FAIL' if err > 1e-3 else '')} |",
              file=stream, flush=True)
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "simt"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="small shapes of the same kinds")
    parser.add_argument("--case", help="comma-separated parts of case names")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    return run(args.device, args.quick, args.case, args.repeats)
