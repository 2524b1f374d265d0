"""First-layer conv2d kernels (csrc/cpu/conv2d_small_c*.cpp) against the phase A GEMM path and
PyTorch, per kernel: forward, input gradient, weight gradient, for the PERFORMANCE.md first
layers (MNIST layer 1: 64,1,28,28 -> 32, 3x3, pad 0; CIFAR layer 1: 64,3,32,32 -> 32, 3x3, pad 1),
float32. Interleaved rounds (direct, GEMM path, torch), median of the per-round medians; this
process's CPU time with --clock cpu (steadier on a shared machine; at 2 threads it adds both
threads' time).

    PYTHONPATH=. python bench/bench_cpu_conv_small_c.py --threads 1 2 --clock cpu
"""

import argparse
import time

import numpy as np

import pyconv

SHAPES = {"MNIST layer 1": (64, 1, 28, 28, 32, 0), "CIFAR layer 1": (64, 3, 32, 32, 32, 1)}


def median_ms(f, clock, repeats):
    times = []
    for _ in range(repeats):
        start = clock()
        f()
        times.append(clock() - start)
    return float(np.median(times)) * 1e3


def kernels(n, c, h, w, k, pad, torch):
    _C = pyconv._native._C
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    b = np.zeros(k, np.float32)
    geo = ((1, 1), (pad,) * 4, (1, 1))
    gy = rng.standard_normal(_C.conv2d_small_c_forward(x, wt, b, *geo).shape).astype(np.float32)
    rows = {
        "fwd": (lambda: _C.conv2d_small_c_forward(x, wt, b, *geo),
                lambda: _C.conv2d_forward(x, wt, b, *geo, 1)),
        "bwd input": (lambda: _C.conv2d_small_c_backward_input(gy, wt, x.shape, *geo),
                      lambda: _C.conv2d_backward_input(gy, wt, x.shape, *geo, 1)),
        "bwd weight": (lambda: _C.conv2d_small_c_backward_weight(gy, x, wt.shape, *geo),
                       lambda: _C.conv2d_backward_weight(gy, x, wt.shape, *geo, 1)),
    }
    if torch is not None:
        xt, wtt, gyt = torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(gy)

        def grad(mask):
            return lambda: torch.ops.aten.convolution_backward(
                gyt, xt, wtt, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1, mask)

        torch_rows = {"fwd": lambda: torch.nn.functional.conv2d(xt, wtt, None, 1, pad),
                      "bwd input": grad([True, False, False]), "bwd weight": grad([False, True, False])}
        rows = {key: pair + (torch_rows[key],) for key, pair in rows.items()}
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clock", choices=["wall", "cpu"], default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    opts = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    clock = time.process_time if opts.clock == "cpu" else time.perf_counter
    print("| case | kernel | thr | direct ms | GEMM path ms | torch ms | direct/torch | direct/GEMM | GFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for threads in opts.threads:
        pyconv.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        for name, (n, c, h, w, k, pad) in SHAPES.items():
            p, q = h + 2 * pad - 2, w + 2 * pad - 2
            flops = 2.0 * n * k * c * 9 * p * q
            rows = kernels(n, c, h, w, k, pad, torch)
            for fs in rows.values():
                for f in fs:
                    f()  # warm-up
            results = {key: [[] for _ in fs] for key, fs in rows.items()}
            for _ in range(opts.rounds):
                for key, fs in rows.items():
                    for i, f in enumerate(fs):
                        results[key][i].append(median_ms(f, clock, opts.repeats))
            for key, per in results.items():
                ms = [float(np.median(v)) for v in per]
                direct, gemm = ms[0], ms[1]
                ref = ms[2] if len(ms) > 2 else float("nan")
                print(f"| {name} | {key} | {threads} | {direct:.2f} | {gemm:.2f} | {ref:.2f} | "
                      f"{direct / ref:.2f} | {direct / gemm:.2f} | {flops / direct / 1e6:.1f} |")


if __name__ == "__main__":
    main()
