"""The special conv2d kernels of the cpu backend (depthwise, pointwise 1x1, small-C first layers)
vs PyTorch CPU and vs the generic path (_C.conv2d_forward/backward_*), side by side.

For the depthwise and first-layer shapes of ../shared/design/PERFORMANCE.md, at each thread
count: interleaved runs (direct, GEMM path, torch, ...) after a warm-up, medians with min/max, the
ratios direct/torch and direct/GEMM path, GFLOP/s, % of the FMA peak measured in the same run and
the GB/s of the compulsory traffic (input + weight + output once). Helpers shared with
bench_cpu_conv.py.

    python bench/bench_cpu_conv_special.py                       # 1 and 2 threads
    python bench/bench_cpu_conv_special.py --threads 1 --repeats 9 --clock cpu
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyconv  # noqa: E402
from bench_cpu_conv import CLOCKS, conv_flops, fmt, interleaved, measured_peak  # noqa: E402

_C = pyconv._native._C

# (N, C, H, W, K, R, S, stride, pad, groups, label, direction)
CASES = [
    (32, 64, 56, 56, 64, 3, 3, 1, 1, 64, "depthwise", "fwd"),
    (32, 64, 56, 56, 64, 3, 3, 1, 1, 64, "depthwise", "bwd"),
    (32, 256, 56, 56, 64, 1, 1, 1, 0, 1, "1x1", "fwd"),
    (32, 256, 56, 56, 64, 1, 1, 1, 0, 1, "1x1", "bwd"),
    (64, 1, 28, 28, 32, 3, 3, 1, 0, 1, "MNIST layer 1", "fwd"),
    (64, 3, 32, 32, 32, 3, 3, 1, 1, 1, "CIFAR layer 1", "fwd"),
]


def triple(case, torch):
    """(direct fn, GEMM-path fn, torch fn) of one case, inputs made once."""
    n, c, h, w, k, r, s, stride, pad, groups, label, direction = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = rng.standard_normal((k, c // groups, r, s), dtype=np.float32) * 0.1
    bias = rng.standard_normal(k, dtype=np.float32)
    geo = ((stride, stride), (pad,) * 4, (1, 1))
    tx, tw, tb = (torch.from_numpy(a) for a in (x, weight, bias))
    pointwise = label == "1x1"
    if direction == "fwd":
        direct = _C.conv2d_depthwise_forward if groups > 1 else _C.conv2d_small_c_forward
        if pointwise:
            direct = lambda x, weight, bias, *_: _C.conv2d_pointwise_forward(x, weight, bias)  # noqa: E731

        def theirs():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)
        return ((lambda: direct(x, weight, bias, *geo)),
                (lambda: _C.conv2d_forward(x, weight, bias, *geo, groups)), theirs)
    grad_y = _C.conv2d_forward(x, weight, None, *geo, groups)
    tgy = torch.from_numpy(grad_y)

    def ours():
        if pointwise:
            _C.conv2d_pointwise_backward_input(grad_y, weight)
            _C.conv2d_pointwise_backward_weight(grad_y, x)
            return
        _C.conv2d_depthwise_backward_input(grad_y, weight, x.shape, *geo)
        _C.conv2d_depthwise_backward_weight(grad_y, x, weight.shape, *geo)

    def gemm_path():
        _C.conv2d_backward_input(grad_y, weight, x.shape, *geo, groups)
        _C.conv2d_backward_weight(grad_y, x, weight.shape, *geo, groups)

    def theirs():
        torch.ops.aten.convolution_backward(tgy, tx, tw, None, [stride] * 2, [pad] * 2, [1, 1], False,
                                            [0, 0], groups, [True, True, False])
    return ours, gemm_path, theirs


def traffic_bytes(case):
    """Compulsory bytes: fwd reads x, w and writes y; bwd reads grad_y, x, w, writes grad_x, grad_w."""
    n, c, h, w, k, r, s, stride, pad, groups, _, direction = case
    p, q = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - s) // stride + 1
    x, y, wt = n * c * h * w, n * k * p * q, k * (c // groups) * r * s
    return 4 * (x + y + wt if direction == "fwd" else y + 2 * x + 2 * wt)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--only", default="", help="comma-separated parts of case labels, e.g. 1x1")
    args = parser.parse_args(argv)
    cases = [case for case in CASES
             if not args.only or any(part in case[10] for part in args.only.split(","))]
    import torch

    clock = CLOCKS[args.clock]
    print(f"pyconv {pyconv.build_info()['isa']} build; torch {torch.__version__}; repeats {args.repeats}, "
          f"interleaved, 1 warm-up; {args.clock} times in ms: median (min-max)\n")
    for threads in args.threads:
        pyconv.set_num_threads(threads)
        torch.set_num_threads(threads)
        peak = measured_peak(threads, args.clock)
        print(f"## {threads} thread(s): measured fp32 FMA peak {peak:.0f} GFLOP/s\n")
        print("| case | dir | special ms | generic ms | torch ms | special/torch | special/generic "
              "| special GFLOP/s (% peak) | special GB/s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for case in cases:
            ours, gemm_path, theirs = interleaved(triple(case, torch), args.repeats, clock=clock)
            flops = conv_flops(*case[:10]) * (2 if case[11] == "bwd" else 1)
            shape = ",".join(str(v) for v in case[:9]) + (f" g={case[9]}" if case[9] > 1 else "")
            print(f"| ({shape}) {case[10]} | {case[11]} | {fmt(ours)} | {fmt(gemm_path)} | {fmt(theirs)} "
                  f"| {ours[0] / theirs[0]:.2f} | {ours[0] / gemm_path[0]:.2f} "
                  f"| {flops / ours[0] / 1e9:.1f} ({flops / ours[0] / 1e9 / peak:.0%}) "
                  f"| {traffic_bytes(case) / ours[0] / 1e9:.1f} |", flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
