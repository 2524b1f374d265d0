"""Activations, dropout, batch norm and Adam on the cpu backend (pyconv._C) vs PyTorch CPU.

Interleaved runs (pyconv, torch, pyconv, torch, ...) after a warm-up, at each thread count:
median (min-max) ms, the ratio pyconv/torch and the GB/s each achieves (bytes that must move:
inputs read once, outputs written once). float32. Both libraries run as installed.

    python bench/bench_cpu_elementwise.py                  # 1 and 2 threads
    python bench/bench_cpu_elementwise.py --threads 1 --repeats 5 --clock cpu
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import pyconv
from pyconv.backends import cpu

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def interleaved(fns, repeats, clock):
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = clock()
            fn()
            times[i].append(clock() - start)
    return [(statistics.median(t), min(t), max(t)) for t in times]


def cases(torch, n_small, n_large):
    """(label, bytes moved, pyconv fn, torch fn)."""
    rng = np.random.default_rng(0)
    out = []
    for n in (n_small, n_large):
        x = rng.standard_normal(n).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        b2, b3 = 8 * n, 12 * n
        out += [
            (f"relu fwd n={n:.0e}", b2, lambda x=x: cpu.relu_forward(x), lambda t=tx: torch.relu(t)),
            (f"relu bwd n={n:.0e}", b3, lambda g=g, x=x: cpu.relu_backward(g, x),
             lambda g=tg, t=tx: torch.ops.aten.threshold_backward(g, t, 0)),
            (f"sigmoid fwd n={n:.0e}", b2, lambda x=x: cpu.sigmoid_forward(x), lambda t=tx: torch.sigmoid(t)),
            (f"tanh fwd n={n:.0e}", b2, lambda x=x: cpu.tanh_forward(x), lambda t=tx: torch.tanh(t)),
            (f"gelu fwd n={n:.0e}", b2, lambda x=x: cpu.gelu_forward(x, "none"),
             lambda t=tx: torch.nn.functional.gelu(t)),
            (f"gelu bwd n={n:.0e}", b3, lambda g=g, x=x: cpu.gelu_backward(g, x, "none"),
             lambda g=tg, t=tx: torch.ops.aten.gelu_backward(g, t)),
            (f"gelu-tanh fwd n={n:.0e}", b2, lambda x=x: cpu.gelu_forward(x, "tanh"),
             lambda t=tx: torch.nn.functional.gelu(t, approximate="tanh")),
            (f"dropout fwd n={n:.0e}", 9 * n, lambda x=x: cpu.dropout_forward(x, 0.5, 7),
             lambda t=tx: torch.nn.functional.dropout(t, 0.5, True)),
        ]
    # batch norm (64, 32, 26, 26), training forward (with running stats) and backward
    shape = (64, 32, 26, 26)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w, b = np.ones(32, np.float32), np.zeros(32, np.float32)
    rm, rv = np.zeros(32, np.float32), np.ones(32, np.float32)
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    tw, tb, trm, trv = (torch.from_numpy(a.copy()) for a in (w, b, rm, rv))
    mean, invstd = cpu.batch_norm_forward(x, w, b, rm, rv, True, 0.1, 1e-5)[1:]
    tmean, tinvstd = torch.from_numpy(mean), torch.from_numpy(invstd)
    size = x.size * 4
    out += [
        ("batch_norm fwd train (64,32,26,26)", 2 * size,
         lambda: cpu.batch_norm_forward(x, w, b, rm, rv, True, 0.1, 1e-5),
         lambda: torch.ops.aten.native_batch_norm(tx, tw, tb, trm, trv, True, 0.1, 1e-5)),
        ("batch_norm bwd train (64,32,26,26)", 3 * size,
         lambda: cpu.batch_norm_backward(g, x, w, mean, invstd, True),
         lambda: torch.ops.aten.native_batch_norm_backward(tg, tx, tw, trm, trv, tmean, tinvstd,
                                                           True, 1e-5, [True, True, True])),
    ]
    # Adam on a 1e6 parameter: reads param, grad, m, v; writes param, m, v
    n = 1_000_000
    p, gr = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    tp, tgr, tm, tv = (torch.from_numpy(a.copy()) for a in (p, gr, m, v))
    tstep = torch.tensor(1.0)
    out.append(("adam step n=1e6", 28 * n,
                lambda: cpu.adam_step(p, gr, m, v, None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False,
                                      False, False),
                lambda: torch.optim._functional.adam([tp], [tgr], [tm], [tv], [], [tstep],
                                                     foreach=False, amsgrad=False, beta1=0.9,
                                                     beta2=0.999, lr=1e-3, weight_decay=0.0,
                                                     eps=1e-8, maximize=False)))
    # binary cross-entropy (mean) on 1e6 probabilities / logits
    prob = rng.uniform(0.01, 0.99, n).astype(np.float32)
    t = rng.uniform(0, 1, n).astype(np.float32)
    logit = rng.standard_normal(n).astype(np.float32)
    one = np.ones((), np.float32)
    tprob, tt, tlogit, tone = (torch.from_numpy(a) for a in (prob, t, logit, one))
    out += [
        ("bce fwd mean n=1e6", 8 * n, lambda: cpu.binary_cross_entropy_forward(prob, t, None, "mean"),
         lambda: torch.nn.functional.binary_cross_entropy(tprob, tt)),
        ("bce bwd mean n=1e6", 12 * n, lambda: cpu.binary_cross_entropy_backward(one, prob, t, None, "mean"),
         lambda: torch.ops.aten.binary_cross_entropy_backward(tone, tprob, tt, None, 1)),
        ("bce_with_logits fwd mean n=1e6", 8 * n,
         lambda: cpu.binary_cross_entropy_with_logits_forward(logit, t, None, None, "mean"),
         lambda: torch.nn.functional.binary_cross_entropy_with_logits(tlogit, tt)),
    ]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--sizes", type=float, nargs=2, default=[1e6, 1e7])
    parser.add_argument("--only", nargs="+", default=[], help="run cases whose label contains one of these")
    args = parser.parse_args()
    import torch

    cpu.check_available()
    clock = CLOCKS[args.clock]
    all_cases = [c for c in cases(torch, int(args.sizes[0]), int(args.sizes[1]))
                 if not args.only or any(word in c[0] for word in args.only)]
    for threads in args.threads:
        pyconv.set_num_threads(threads)
        torch.set_num_threads(threads)
        print(f"\n{threads} thread(s), clock={args.clock}, median (min-max) of {args.repeats}\n")
        print("| op | pyconv ms | torch ms | ratio | pyconv GB/s | torch GB/s |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, nbytes, ours, theirs in all_cases:
            (a, a_lo, a_hi), (b, b_lo, b_hi) = interleaved([ours, theirs], args.repeats, clock)
            print(f"| {label} | {a * 1e3:.3f} ({a_lo * 1e3:.3f}-{a_hi * 1e3:.3f}) | "
                  f"{b * 1e3:.3f} ({b_lo * 1e3:.3f}-{b_hi * 1e3:.3f}) | {a / b:.2f} | "
                  f"{nbytes / a / 1e9:.1f} | {nbytes / b / 1e9:.1f} |", flush=True)


if __name__ == "__main__":
    main()
