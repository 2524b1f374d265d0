"""Recurrent cells and nn.LSTM on the cpu backend (pyconv._C) vs PyTorch CPU, side by side.

Cases (PERFORMANCE.md, float32, batch 64, input 128, hidden 256), each forward + backward:
- ``<cell> kernels``: pyconv's forward and backward kernels called directly (no autograd);
- ``<cell> op``: pyconv's functional cell with autograd on the cpu backend;
  against torch's LSTMCell / GRUCell / RNNCell forward + backward (autograd);
- ``nn.LSTM 50 steps``: a sequence (50, 64, 128) through nn.LSTM and a loss on the outputs,
  backward, with the input requiring grad or not (the suite's case: not); pyconv's also broken
  down into the time spent inside the C++ sequence kernels (lstm_sequence_forward/backward) and
  the rest (Python: autograd graph, op layer);
- ``nn.GRU 50 steps``: the same through nn.GRU (input requiring no grad).

Interleaved runs (pyconv, torch, ...) after a warm-up; median (min-max) in ms; ratio pyconv/torch;
GFLOP/s of the GEMMs (3 GEMMs of 2*B*G*Hd*(I+Hd) per cell step) and the fraction of the fp32 FMA
peak measured in the same run.

    python bench/bench_cpu_rnn.py                          # 1 and 2 threads
    python bench/bench_cpu_rnn.py --threads 1 --repeats 7 --clock cpu
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import pyconv
import pyconv.functional as F
from pyconv import backends, nn
from pyconv.backends import cpu
from bench_cpu_conv import CLOCKS, fmt, interleaved, measured_peak

BATCH, INPUT, HIDDEN, STEPS = 64, 128, 256, 50
GATES = {"lstm_cell": 4, "gru_cell": 3, "rnn_tanh_cell": 1}
TORCH_CELLS = {"lstm_cell": "LSTMCell", "gru_cell": "GRUCell", "rnn_tanh_cell": "RNNCell"}


def cell_flops(name, steps=1):
    return 3 * 2.0 * BATCH * GATES[name] * HIDDEN * (INPUT + HIDDEN) * steps


def cell_arrays(name, rng):
    rows = GATES[name] * HIDDEN
    scale = 1 / np.sqrt(HIDDEN)
    arrays = [rng.standard_normal((BATCH, INPUT), dtype=np.float32),
              rng.standard_normal((BATCH, HIDDEN), dtype=np.float32)]
    if name == "lstm_cell":
        arrays.append(rng.standard_normal((BATCH, HIDDEN), dtype=np.float32))
    arrays += [rng.uniform(-scale, scale, (rows, n)).astype(np.float32) for n in (INPUT, HIDDEN)]
    arrays += [rng.uniform(-scale, scale, rows).astype(np.float32) for _ in range(2)]
    return arrays


def kernel_fn(name, arrays, rng):
    """Forward + backward kernels called directly."""
    forward, backward = getattr(cpu, f"{name}_forward"), getattr(cpu, f"{name}_backward")
    grad = rng.standard_normal((BATCH, HIDDEN), dtype=np.float32)
    x, h = arrays[0], arrays[1]
    w_ih, w_hh = arrays[-4], arrays[-3]

    def run():
        out = forward(*arrays)
        if name == "lstm_cell":
            backward(grad, grad, x, h, arrays[2], w_ih, w_hh, out[2], out[1])
        elif name == "gru_cell":
            backward(grad, x, h, w_ih, w_hh, out[1])
        else:
            backward(grad, x, h, w_ih, w_hh, out)
    return run


def op_fn(name, arrays):
    """The functional cell with autograd on the cpu backend: forward, sum of outputs, backward."""
    tensors = [pyconv.tensor(a, requires_grad=True) for a in arrays]

    def run():
        for t in tensors:
            t.grad = None
        with backends.use("cpu"):
            if name == "lstm_cell":
                h, c = F.lstm_cell(tensors[0], (tensors[1], tensors[2]), *tensors[3:])
                (h.sum() + c.sum()).backward()
            else:
                getattr(F, name)(*tensors).sum().backward()
    return run


def torch_cell_fn(name, arrays, torch):
    cell = getattr(torch.nn, TORCH_CELLS[name])(INPUT, HIDDEN)
    with torch.no_grad():
        for p, a in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), arrays[-4:]):
            p.copy_(torch.from_numpy(a))
    x = torch.from_numpy(arrays[0]).requires_grad_()
    h = torch.from_numpy(arrays[1]).requires_grad_()
    c = torch.from_numpy(arrays[2]).requires_grad_() if name == "lstm_cell" else None

    def run():
        cell.zero_grad()
        x.grad = h.grad = None
        if name == "lstm_cell":
            hn, cn = cell(x, (h, c))
            (hn.sum() + cn.sum()).backward()
        else:
            cell(x, h).sum().backward()
    return run


def sequence_pair(torch, kind="LSTM", input_grad=True):
    """nn.<kind> over (STEPS, BATCH, INPUT), forward + backward of the summed outputs."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((STEPS, BATCH, INPUT), dtype=np.float32)
    pyconv.manual_seed(0)
    ours = getattr(nn, kind)(INPUT, HIDDEN)
    theirs = getattr(torch.nn, kind)(INPUT, HIDDEN)
    with torch.no_grad():
        for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            q.copy_(torch.from_numpy(p.detach().numpy()))
    px = pyconv.tensor(x, requires_grad=input_grad)
    tx = torch.from_numpy(x).requires_grad_(input_grad)

    def run_ours():
        ours.zero_grad()
        px.grad = None
        with backends.use("cpu"):
            out, _ = ours(px)
            out.sum().backward()

    def run_theirs():
        theirs.zero_grad()
        tx.grad = None
        out, _ = theirs(tx)
        out.sum().backward()
    return run_ours, run_theirs


def kernel_share(run, clock, repeats):
    """(median total, median time inside the cpu rnn kernels) of run(), by wrapping the kernels."""
    spent = [0.0]
    names = ("lstm_sequence_forward", "lstm_sequence_backward")
    real = {n: getattr(cpu, n) for n in names}

    def timed(fn):
        def wrapper(*a):
            start = clock()
            try:
                return fn(*a)
            finally:
                spent[0] += clock() - start
        return wrapper
    totals, inside = [], []
    try:
        for n in names:
            setattr(cpu, n, timed(real[n]))
        run()
        for _ in range(repeats):
            spent[0] = 0.0
            start = clock()
            run()
            totals.append(clock() - start)
            inside.append(spent[0])
    finally:
        for n in names:
            setattr(cpu, n, real[n])
    return float(np.median(totals)), float(np.median(inside))


def row(label, ours, theirs, flops, peak):
    return (f"| {label} | {fmt(ours)} | {fmt(theirs)} | {ours[0] / theirs[0]:.2f} "
            f"| {flops / ours[0] / 1e9:.1f} ({flops / ours[0] / 1e9 / peak:.0%}) "
            f"| {flops / theirs[0] / 1e9:.1f} ({flops / theirs[0] / 1e9 / peak:.0%}) |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seq-repeats", type=int, default=5)
    parser.add_argument("--cells", nargs="+", default=list(GATES), choices=list(GATES))
    parser.add_argument("--no-sequence", action="store_true")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (steadier on a busy machine)")
    args = parser.parse_args(argv)
    import torch

    cpu.check_available()
    if "cpu" not in backends.available():
        backends.register("cpu", "pyconv.backends.cpu")
    clock = CLOCKS[args.clock]
    print(f"pyconv {pyconv.build_info()['isa']} build; torch {torch.__version__}; float32, batch "
          f"{BATCH}, {INPUT}->{HIDDEN}; repeats {args.repeats}, interleaved, 1 warm-up; "
          f"{args.clock} times in ms: median (min-max)\n")
    for threads in args.threads:
        pyconv.set_num_threads(threads)
        torch.set_num_threads(threads)
        peak = measured_peak(threads, args.clock)
        print(f"## {threads} thread(s): measured fp32 FMA peak {peak:.0f} GFLOP/s\n")
        print("| case (fwd+bwd) | pyconv ms | torch ms | ratio | pyconv GFLOP/s (% peak) "
              "| torch GFLOP/s (% peak) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name in args.cells:
            rng = np.random.default_rng(1)
            arrays = cell_arrays(name, rng)
            fns = [kernel_fn(name, arrays, rng), op_fn(name, arrays), torch_cell_fn(name, arrays, torch)]
            kern, op, theirs = interleaved(fns, args.repeats, clock=clock)
            print(row(f"{TORCH_CELLS[name]} kernels", kern, theirs, cell_flops(name), peak))
            print(row(f"{TORCH_CELLS[name]} op (autograd)", op, theirs, cell_flops(name), peak), flush=True)
        if not args.no_sequence:
            for kind, input_grad in (("LSTM", True), ("LSTM", False), ("GRU", False)):
                ours, theirs = sequence_pair(torch, kind, input_grad)
                seq_ours, seq_theirs = interleaved([ours, theirs], args.seq_repeats, clock=clock)
                name = "lstm_cell" if kind == "LSTM" else "gru_cell"
                label = f"nn.{kind} {STEPS} steps" + (" (x requires grad)" if input_grad else "")
                print(row(label, seq_ours, seq_theirs, cell_flops(name, STEPS), peak), flush=True)
            ours, _ = sequence_pair(torch, "LSTM", False)
            total, inside = kernel_share(ours, clock, args.seq_repeats)
            print(f"\npyconv nn.LSTM {STEPS} steps: {total * 1e3:.1f} ms, of which {inside * 1e3:.1f} ms "
                  f"({inside / total:.0%}) in the lstm_sequence kernels, {(total - inside) * 1e3:.1f} ms "
                  f"({(total - inside) / total:.0%}) elsewhere (Python: autograd, op layer)", flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
