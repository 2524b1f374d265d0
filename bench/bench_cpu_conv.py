"""conv2d on the cpu backend (pyconv._C) vs PyTorch CPU, side by side.

For the conv shapes of ../shared/design/PERFORMANCE.md, forward and backward (input + weight
gradients), at each thread count: interleaved runs (pyconv, torch, pyconv, torch, ...) after a
warm-up, medians with min/max, the ratio pyconv/torch, achieved GFLOP/s and the fraction of the
fp32 FMA peak measured in the same run (``pyconv._C.fma_peak_gflops``). Also a square SGEMM vs
torch.mm. Both libraries run as installed (allocator settings untouched).

    python bench/bench_cpu_conv.py                     # 1 and 2 threads, every shape
    python bench/bench_cpu_conv.py --threads 1 --repeats 3 --only deep --clock cpu
    python bench/bench_cpu_conv.py --threads 1 --reference     # also: speed-up over numpy_ref
    python bench/bench_cpu_conv.py --threads 1 --clock cpu --only LeNet CIFAR --directions fwd bwd_in bwd_w

stride-1 3x3 layers with many channels run Winograd F(4x4, 3x3) forward and for the input
gradient (csrc/cpu/winograd.cpp); ``--algorithm gemm`` forces the implicit GEMM for comparison.
The "transposed" case is conv_transpose2d (the adjoint of the deep 3x3 layer) vs PyTorch's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import pyconv
from pyconv.backends import cpu

# (N, C, H, W, K, R, S, stride, pad, groups, label)
CASES = [
    (64, 1, 28, 28, 32, 3, 3, 1, 0, 1, "MNIST layer 1"),
    (64, 32, 26, 26, 64, 3, 3, 1, 0, 1, "MNIST layer 2"),
    (64, 3, 32, 32, 32, 3, 3, 1, 1, 1, "CIFAR layer 1"),
    (64, 32, 16, 16, 64, 3, 3, 1, 1, 1, "3x3"),
    (32, 64, 56, 56, 64, 3, 3, 1, 1, 1, "3x3"),
    (32, 128, 28, 28, 128, 3, 3, 1, 1, 1, "deep 3x3"),
    (32, 256, 14, 14, 256, 3, 3, 1, 1, 1, "deep 3x3"),
    (32, 256, 56, 56, 64, 1, 1, 1, 0, 1, "1x1"),
    (32, 64, 56, 56, 64, 3, 3, 1, 1, 64, "depthwise"),
    (32, 128, 28, 28, 128, 3, 3, 1, 1, 1, "transposed"),
    # the mid-sized layers of the training-step targets (LeNet conv2 after pooling, CIFAR conv3)
    (64, 32, 13, 13, 64, 3, 3, 1, 0, 1, "LeNet conv2"),
    (64, 64, 8, 8, 128, 3, 3, 1, 1, 1, "CIFAR conv3"),
]


def conv_flops(n, c, h, w, k, r, s, stride, pad, groups):
    p = (h + 2 * pad - r) // stride + 1
    q = (w + 2 * pad - s) // stride + 1
    return 2.0 * n * k * (c // groups) * r * s * p * q


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def interleaved(fns, repeats, warmup=1, clock=time.perf_counter):
    """Medians, mins and maxes (seconds) of each function, run round-robin."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = clock()
            fn()
            times[i].append(clock() - start)
    return [(statistics.median(t), min(t), max(t)) for t in times]


def measured_peak(threads, clock):
    """fp32 FMA peak in GFLOP/s; with the cpu clock, per second of this process's CPU time (the
    kernel times itself by wall clock, so scale by the wall/CPU time ratio of the call)."""
    wall, cpu_time = time.perf_counter(), time.process_time()
    peak = pyconv._native._C.fma_peak_gflops(threads, 0.3)
    if clock == "cpu":
        peak *= (time.perf_counter() - wall) / (time.process_time() - cpu_time)
    return peak


def conv_pair(case, direction, torch, algorithm="auto", reference=False):
    """(pyconv fn, torch fn) running one direction ('fwd' or 'bwd') of a case, inputs made once;
    with `reference`, (pyconv fn, numpy_ref fn) instead."""
    n, c, h, w, k, r, s, stride, pad, groups, label = case
    if label == "transposed":
        return transpose_pair(case, direction, torch, reference)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = rng.standard_normal((k, c // groups, r, s), dtype=np.float32) * 0.1
    bias = rng.standard_normal(k, dtype=np.float32)
    geometry = dict(stride=(stride, stride), padding=(pad,) * 4, dilation=(1, 1), groups=groups)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, weight, bias))
    if reference:
        from pyconv.backends import numpy_ref as ref
    if direction == "fwd":
        if algorithm != "auto":
            ours = lambda: pyconv._native._C.conv2d_forward(  # noqa: E731
                x, weight, bias, (stride,) * 2, (pad,) * 4, (1, 1), groups, algorithm=algorithm)
        else:
            ours = lambda: cpu.conv2d_forward(x, weight, bias, **geometry)  # noqa: E731
        if reference:
            return ours, lambda: ref.conv2d_forward(x, weight, bias, **geometry)

        def theirs():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)
        return ours, theirs
    grad_y = cpu.conv2d_forward(x, weight, None, **geometry)
    tgy = torch.from_numpy(grad_y)
    if direction in ("bwd_in", "bwd_w"):  # one gradient alone (not with --reference)
        mask = [direction == "bwd_in", direction == "bwd_w", False]

        def one():
            if direction == "bwd_w":
                cpu.conv2d_backward_weight(grad_y, x, weight.shape, **geometry)
            elif algorithm != "auto":
                pyconv._native._C.conv2d_backward_input(grad_y, weight, x.shape, (stride,) * 2,
                                                        (pad,) * 4, (1, 1), groups, algorithm=algorithm)
            else:
                cpu.conv2d_backward_input(grad_y, weight, x.shape, **geometry)

        def theirs_one():
            torch.ops.aten.convolution_backward(tgy, tx, tw, None, [stride] * 2, [pad] * 2, [1, 1],
                                                False, [0, 0], groups, mask)
        return one, theirs_one

    def ours():
        if algorithm != "auto":
            pyconv._native._C.conv2d_backward_input(grad_y, weight, x.shape, (stride,) * 2, (pad,) * 4,
                                                    (1, 1), groups, algorithm=algorithm)
        else:
            cpu.conv2d_backward_input(grad_y, weight, x.shape, **geometry)
        cpu.conv2d_backward_weight(grad_y, x, weight.shape, **geometry)

    if reference:
        def slow():
            ref.conv2d_backward_input(grad_y, weight, x.shape, **geometry)
            ref.conv2d_backward_weight(grad_y, x, weight.shape, **geometry)
        return ours, slow

    def theirs():
        torch.ops.aten.convolution_backward(tgy, tx, tw, None, [stride] * 2, [pad] * 2, [1, 1], False,
                                            [0, 0], groups, [True, True, False])
    return ours, theirs


def transpose_pair(case, direction, torch, reference):
    """conv_transpose2d mapping (N, C, H, W) to (N, K, H, W) (stride 1, padding 1)."""
    n, c, h, w, k, r, s, stride, pad, groups, _ = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = rng.standard_normal((c, k, r, s), dtype=np.float32) * 0.1
    bias = rng.standard_normal(k, dtype=np.float32)
    geometry = dict(stride=(stride,) * 2, padding=(pad,) * 2, dilation=(1, 1), groups=groups)
    impl = cpu
    if reference:
        from pyconv.backends import numpy_ref as impl
    tx, tw, tb = (torch.from_numpy(a) for a in (x, weight, bias))
    if direction == "fwd":
        ours = lambda: cpu.conv_transpose2d_forward(x, weight, bias, output_padding=(0, 0), **geometry)  # noqa: E731
        slow = lambda: impl.conv_transpose2d_forward(x, weight, bias, output_padding=(0, 0), **geometry)  # noqa: E731

        def theirs():
            with torch.no_grad():
                torch.nn.functional.conv_transpose2d(tx, tw, tb, stride, pad)
        return ours, (slow if reference else theirs)
    grad_y = cpu.conv_transpose2d_forward(x, weight, None, output_padding=(0, 0), **geometry)
    tgy = torch.from_numpy(grad_y)

    def run(module):
        module.conv_transpose2d_backward_input(grad_y, weight, x.shape, **geometry)
        module.conv_transpose2d_backward_weight(grad_y, x, weight.shape, **geometry)

    def theirs():
        torch.ops.aten.convolution_backward(tgy, tx, tw, None, [stride] * 2, [pad] * 2, [1, 1], True,
                                            [0, 0], groups, [True, True, False])
    return (lambda: run(cpu)), ((lambda: run(impl)) if reference else theirs)


def gemm_pair(size, torch):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    c = np.empty((size, size), np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return (lambda: pyconv._native._C.gemm(c, a, b)), (lambda: torch.mm(ta, tb))


def fmt(stats):
    med, lo, hi = stats
    return f"{med * 1e3:.2f} ({lo * 1e3:.2f}-{hi * 1e3:.2f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only cases whose shape or label contains one of these strings")
    parser.add_argument("--directions", nargs="+", default=["fwd", "bwd"], choices=["fwd", "bwd", "bwd_in", "bwd_w"],
                        help="bwd_in / bwd_w: one gradient alone (bwd: both)")
    parser.add_argument("--gemm", type=int, default=2048, help="square SGEMM size (0: skip)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (all its threads; steadier "
                             "than wall time when other processes compete for the cores)")
    parser.add_argument("--algorithm", choices=["auto", "gemm", "winograd"], default="auto",
                        help="force conv2d forward / input gradient onto one algorithm")
    parser.add_argument("--reference", action="store_true",
                        help="compare with the NumPy reference (1 run each) instead of PyTorch")
    args = parser.parse_args(argv)
    import torch

    cpu.check_available()
    clock = CLOCKS[args.clock]
    cases = [c for c in CASES if args.only is None
             or any(s in str(c[:10]) or s in c[10] for s in args.only)]
    print(f"pyconv {pyconv.build_info()['isa']} build; torch {torch.__version__}; "
          f"repeats {args.repeats}, interleaved, 1 warm-up; {args.clock} times in ms: median (min-max)\n")
    for threads in args.threads:
        pyconv.set_num_threads(threads)
        torch.set_num_threads(threads)
        peak = measured_peak(threads, args.clock)
        print(f"## {threads} thread(s): measured fp32 FMA peak {peak:.0f} GFLOP/s\n")
        other = "numpy_ref" if args.reference else "torch"
        print(f"| case | dir | pyconv ms | {other} ms | ratio | pyconv GFLOP/s (% peak) | {other} GFLOP/s (% peak) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        if args.gemm and not args.reference:
            ours, theirs = interleaved(gemm_pair(args.gemm, torch), args.repeats, clock=clock)
            flops = 2.0 * args.gemm ** 3
            print(f"| SGEMM {args.gemm}^2 | | {fmt(ours)} | {fmt(theirs)} | {ours[0] / theirs[0]:.2f} "
                  f"| {flops / ours[0] / 1e9:.0f} ({flops / ours[0] / 1e9 / peak:.0%}) "
                  f"| {flops / theirs[0] / 1e9:.0f} ({flops / theirs[0] / 1e9 / peak:.0%}) |")
        for case in cases:
            for direction in args.directions:
                pair = conv_pair(case, direction, torch, args.algorithm, args.reference)
                ours, theirs = interleaved(pair, 1 if args.reference else args.repeats, clock=clock)
                flops = conv_flops(*case[:10]) * (2 if direction == "bwd" else 1)
                shape = ",".join(str(v) for v in case[:9]) + (f" g={case[9]}" if case[9] > 1 else "")
                print(f"| ({shape}) {case[10]} | {direction} | {fmt(ours)} | {fmt(theirs)} "
                      f"| {ours[0] / theirs[0]:.2f} "
                      f"| {flops / ours[0] / 1e9:.1f} ({flops / ours[0] / 1e9 / peak:.0%}) "
                      f"| {flops / theirs[0] / 1e9:.1f} ({flops / theirs[0] / 1e9 / peak:.0%}) |",
                      flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
