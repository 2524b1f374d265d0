"""max_pool2d, softmax, log_softmax and cross-entropy on the cpu backend vs PyTorch CPU.

The PERFORMANCE.md shapes, float32, at each thread count: interleaved runs (pyconv, torch, ...)
after a warm-up, median (min-max), the ratio pyconv/torch and the GB/s each reaches (bytes the op
must read + write once). Both libraries run as installed (allocator settings untouched).

    python bench/bench_cpu_pool_softmax.py                      # 1 and 2 threads
    python bench/bench_cpu_pool_softmax.py --threads 1 --repeats 21 --clock cpu
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import pyconv
from bench_cpu_conv import CLOCKS, fmt, interleaved
from pyconv.backends import cpu


def cases(torch):
    """(name, target ratio, bytes moved, pyconv fn, torch fn) for every benchmarked op."""
    rng = np.random.default_rng(0)
    F = torch.nn.functional
    out = []

    x = rng.standard_normal((64, 32, 26, 26), dtype=np.float32)
    tx = torch.from_numpy(x)
    y, idx = cpu.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    pool_bytes = x.nbytes + y.nbytes + idx.nbytes

    def torch_pool():
        with torch.no_grad():
            F.max_pool2d(tx, 2, return_indices=True)
    out.append(("max_pool2d 2x2 fwd (64,32,26,26)", 0.2, pool_bytes,
                lambda: cpu.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False), torch_pool))
    g = rng.standard_normal(y.shape, dtype=np.float32)
    ttx = tx.clone().requires_grad_(True)
    ty, _ = F.max_pool2d(ttx, 2, return_indices=True)
    tg = torch.from_numpy(g)
    out.append(("max_pool2d 2x2 bwd (64,32,26,26)", None, g.nbytes + idx.nbytes + x.nbytes,
                lambda: cpu.max_pool2d_backward(g, idx, x.shape, (2, 2), (2, 2), (0, 0), (1, 1)),
                lambda: torch.autograd.grad(ty, ttx, tg, retain_graph=True)))

    # average pooling, 2x2 and global (ResNet heads), on a (64,64,56,56) activation
    xa = rng.standard_normal((64, 64, 56, 56), dtype=np.float32)
    txa = torch.from_numpy(xa)
    ga2 = rng.standard_normal((64, 64, 28, 28), dtype=np.float32)
    ga1 = rng.standard_normal((64, 64, 1, 1), dtype=np.float32)
    tga2, tga1 = torch.from_numpy(ga2), torch.from_numpy(ga1)
    aten = torch.ops.aten
    out.append(("avg_pool2d 2x2 fwd (64,64,56,56)", None, xa.nbytes + ga2.nbytes,
                lambda: cpu.avg_pool2d_forward(xa, (2, 2), (2, 2), (0, 0), False, True, None),
                lambda: F.avg_pool2d(txa, 2)))
    out.append(("avg_pool2d 2x2 bwd (64,64,56,56)", None, xa.nbytes + ga2.nbytes,
                lambda: cpu.avg_pool2d_backward(ga2, xa.shape, (2, 2), (2, 2), (0, 0), False, True, None),
                lambda: aten.avg_pool2d_backward(tga2, txa, [2, 2], [2, 2], [0, 0], False, True, None)))
    out.append(("adaptive_avg_pool2d 1x1 fwd (64,64,56,56)", None, xa.nbytes,
                lambda: cpu.adaptive_avg_pool2d_forward(xa, (1, 1)), lambda: F.adaptive_avg_pool2d(txa, 1)))
    out.append(("adaptive_avg_pool2d 1x1 bwd (64,64,56,56)", None, xa.nbytes,
                lambda: cpu.adaptive_avg_pool2d_backward(ga1, xa.shape),
                lambda: aten._adaptive_avg_pool2d_backward(tga1, txa)))

    logits = rng.standard_normal((4096, 1000), dtype=np.float32) * 3
    tl = torch.from_numpy(logits)
    grad = rng.standard_normal(logits.shape, dtype=np.float32)
    tgrad = torch.from_numpy(grad)
    for name, fwd, bwd, tfn, tbwd in [
            ("softmax", cpu.softmax_forward, cpu.softmax_backward, torch.softmax,
             torch.ops.aten._softmax_backward_data),
            ("log_softmax", cpu.log_softmax_forward, cpu.log_softmax_backward, torch.log_softmax,
             torch.ops.aten._log_softmax_backward_data)]:
        yv = fwd(logits, 1)
        tyv = torch.from_numpy(yv)
        out.append((f"{name} fwd (4096,1000)", 0.7, 2 * logits.nbytes,
                    lambda fwd=fwd: fwd(logits, 1), lambda tfn=tfn: tfn(tl, 1)))
        out.append((f"{name} bwd (4096,1000)", 0.7, 3 * logits.nbytes,
                    lambda bwd=bwd, yv=yv: bwd(grad, yv, 1),
                    lambda tbwd=tbwd, tyv=tyv: tbwd(tgrad, tyv, 1, torch.float32)))

    target = rng.integers(0, 1000, 4096)
    ttarget = torch.from_numpy(target)
    one = np.array(1.0, np.float32)

    def ours_ce():
        _, lp = cpu.cross_entropy_forward(logits, target, None, "mean", -100, 0.0)
        cpu.cross_entropy_backward(one, lp, target, None, "mean", -100, 0.0)

    tlg = tl.clone().requires_grad_(True)

    def torch_ce():
        loss = F.cross_entropy(tlg, ttarget)
        torch.autograd.grad(loss, tlg)
    out.append(("cross_entropy fwd+bwd (4096,1000)", 0.7, 4 * logits.nbytes, ours_ce, torch_ce))

    # binary_cross_entropy_with_logits (autoencoders, multi-label): both gradients, as autograd asks
    probs = rng.random((4096, 1000), dtype=np.float32)
    tprobs = torch.from_numpy(probs)

    def ours_bce_logits():
        cpu.binary_cross_entropy_with_logits_forward(logits, probs, None, None, "mean")
        cpu.binary_cross_entropy_with_logits_backward(one, logits, probs, None, None, "mean")

    def torch_bce_logits():
        loss = F.binary_cross_entropy_with_logits(tlg, tprobs)
        torch.autograd.grad(loss, tlg)
    out.append(("bce_with_logits fwd+bwd (4096,1000)", None, 5 * logits.nbytes, ours_bce_logits, torch_bce_logits))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (steadier on a loaded machine)")
    args = parser.parse_args(argv)
    import torch

    clock = CLOCKS[args.clock]
    print(f"pyconv {pyconv.build_info()['isa']} build; torch {torch.__version__}; repeats "
          f"{args.repeats}, interleaved, 1 warm-up; {args.clock} times in ms: median (min-max)\n")
    for threads in args.threads:
        pyconv.set_num_threads(threads)
        torch.set_num_threads(threads)
        print(f"## {threads} thread(s)\n")
        print("| op | pyconv ms | torch ms | ratio | target | pyconv GB/s | torch GB/s |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, target, nbytes, ours, theirs in cases(torch):
            a, b = interleaved([ours, theirs], args.repeats, warmup=2, clock=clock)
            ratio = a[0] / b[0]
            verdict = "" if target is None else f"<= {target} {'met' if ratio <= target else 'NOT met'}"
            print(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio:.2f} | {verdict} | {nbytes / a[0] / 1e9:.1f} "
                  f"| {nbytes / b[0] / 1e9:.1f} |", flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
