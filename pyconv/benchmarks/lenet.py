"""LeNet-MNIST training step: pyconv against the textbook NumPy im2col baseline.

One step = forward, softmax cross-entropy, backward and an Adam update, on a batch of random
(N, 1, 28, 28) float32 images with random labels. Both implementations start from the same
weights (pyconv's LeNetMNIST loads the baseline's initial parameters), so they compute the same
thing and their losses can be compared after the run.

Method: build both, run ``--warmup`` untimed steps of each, then ``--repeats`` timed steps
alternating A B A B ... (so drifts in machine load hit both alike), each timed with
time.perf_counter around one step. Reported: median / min / max milliseconds per step, images
per second at the median, and the speed ratio (baseline median / pyconv median; > 1 means pyconv
is faster). Threads: whatever NumPy's BLAS uses by default on this machine (not pinned).

Run as ``python bench/bench_lenet.py [--repeats N ...]`` (which calls :func:`main`), or through
pytest-benchmark: ``pytest bench/``. (``pyconv bench`` is the issue-4 suite of
:mod:`pyconv.benchmarks.suite`, which compares with PyTorch or the NumPy reference.)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from .textbook_im2col import TextbookLeNet

PYCONV = "pyconv"
TEXTBOOK = "textbook im2col"

# the baseline's parameter names -> the state_dict keys of pyconv.models.LeNetMNIST
TEXTBOOK_TO_PYCONV = {
    "conv1.weight": "features.0.weight", "conv1.bias": "features.0.bias",
    "conv2.weight": "features.3.weight", "conv2.bias": "features.3.bias",
    "fc1.weight": "classifier.0.weight", "fc1.bias": "classifier.0.bias",
    "fc2.weight": "classifier.2.weight", "fc2.bias": "classifier.2.bias",
}
LR = 1e-3


def random_batch(batch_size: int, seed: int, dtype=np.float32):
    """images (N, 1, 28, 28) standard normal and labels int64 (N,) in 0..9."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch_size, 1, 28, 28)).astype(dtype),
            rng.integers(0, 10, batch_size).astype(np.int64))


def pyconv_lenet(textbook: TextbookLeNet, dtype=np.float32):
    """pyconv's LeNetMNIST holding the baseline's current parameters."""
    from pyconv.models import LeNetMNIST

    model = LeNetMNIST().to(dtype)
    model.load_state_dict({TEXTBOOK_TO_PYCONV[k]: v for k, v in textbook.params.items()})
    return model


def make_pyconv_step(batch_size: int = 64, seed: int = 0, backend: str = "numpy"):
    """A no-argument callable running one pyconv training step; returns the loss."""
    import pyconv
    import pyconv.functional as F

    model = pyconv_lenet(TextbookLeNet(seed=seed, lr=LR))
    opt = pyconv.optim.Adam(model.parameters(), lr=LR)
    images, labels = random_batch(batch_size, seed)
    x, y = pyconv.from_numpy(images), pyconv.from_numpy(labels)

    def step():
        with pyconv.backends.use(backend):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return float(loss.item())

    return step


def make_textbook_step(batch_size: int = 64, seed: int = 0):
    """A no-argument callable running one baseline training step; returns the loss."""
    net = TextbookLeNet(seed=seed, lr=LR)
    images, labels = random_batch(batch_size, seed)
    return lambda: net.train_step(images, labels)


def time_interleaved(steps: dict, repeats: int, warmup: int):
    """Seconds per call of each step, alternating between them; also the last losses."""
    losses = {}
    for _ in range(warmup):
        for name, step in steps.items():
            losses[name] = step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            losses[name] = step()
            times[name].append(time.perf_counter() - start)
    return times, losses


def machine_notes() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    env = {k: os.environ.get(k, "(unset)") for k in
           ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    return {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "env": env,
            "load": os.getloadavg() if hasattr(os, "getloadavg") else None}


def run_benchmark(batch_size: int = 64, repeats: int = 20, warmup: int = 3, seed: int = 0,
                  backend: str = "numpy") -> dict:
    """Time both implementations; returns per-implementation statistics and the ratio."""
    steps = {PYCONV: make_pyconv_step(batch_size, seed, backend),
             TEXTBOOK: make_textbook_step(batch_size, seed)}
    load_before = machine_notes()["load"]
    times, losses = time_interleaved(steps, repeats, max(warmup, 0))
    results = {}
    for name, seconds in times.items():
        median = statistics.median(seconds)
        results[name] = {"median_ms": 1e3 * median, "min_ms": 1e3 * min(seconds),
                         "max_ms": 1e3 * max(seconds), "images_per_s": batch_size / median,
                         "final_loss": losses[name]}
    return {
        "batch_size": batch_size, "repeats": repeats, "warmup": warmup, "backend": backend,
        "results": results,
        "ratio": results[TEXTBOOK]["median_ms"] / results[PYCONV]["median_ms"],
        "machine": machine_notes(), "load_before": load_before,
    }


def format_table(run: dict) -> str:
    m = run["machine"]
    lines = [
        f"LeNet-MNIST training step (forward + backward + Adam), batch {run['batch_size']}, "
        f"28x28 float32, {run['repeats']} interleaved steps after {run['warmup']} warm-up",
        f"machine: {m['cpu']}, {m['cpus']} CPUs, python {m['python']}, numpy {m['numpy']}, "
        + ", ".join(f"{k}={v}" for k, v in m["env"].items()),
        "",
        f"{'implementation':<24} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'images/s':>9} "
        f"{'final loss':>10}",
    ]
    for name, r in run["results"].items():
        label = f"{name} ({run['backend']})" if name == PYCONV else name
        lines.append(f"{label:<24} {r['median_ms']:10.1f} {r['min_ms']:8.1f} {r['max_ms']:8.1f} "
                     f"{r['images_per_s']:9.0f} {r['final_loss']:10.4f}")
    lines.append("")
    lines.append(f"ratio (textbook median / pyconv median): {run['ratio']:.2f}x "
                 + ("(pyconv faster)" if run["ratio"] >= 1 else "(pyconv slower)"))
    if run.get("load_before") is not None:
        lines.append("load average before timing: "
                     + " ".join(f"{v:.2f}" for v in run["load_before"]))
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--batch-size", type=int, default=64,
                        help="images per training step (default: 64)")
    parser.add_argument("--repeats", type=int, default=20,
                        help="timed steps per implementation, interleaved (default: 20)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps per implementation first (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of inputs and weights")
    parser.add_argument("--backend", default="numpy", help="pyconv backend (default: numpy)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench_lenet.py", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(format_table(run_benchmark(args.batch_size, args.repeats, args.warmup, args.seed,
                                     args.backend)))
    return 0

