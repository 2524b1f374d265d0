"""The ``pyconv`` command: ``pyconv train | eval | bench | check``.

``pyconv train`` trains :class:`~pyconv.models.LeNetDigits` on the bundled 8x8 digits (seeded
stratified train/test split), shows a progress bar on stderr and the test accuracy per epoch on
stdout, and ends with the final test accuracy and the training throughput. ``pyconv eval``
scores saved weights; ``pyconv bench`` runs the benchmark suite of
:mod:`pyconv.benchmarks.suite`; ``pyconv check`` reports what this install can
run. Argument errors exit with status 2 and a one-line message, without a traceback.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .training import (
    DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, UsageError, all_samples, backend_context,
    backend_label, digits_split, load_weights, predict, save_weights, train_digits,
)


# ----- command line ---------------------------------------------------------------------------


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _fraction(text):
    value = _positive(float)(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


def add_bench_arguments(parser) -> None:
    """Options of the benchmark suite (shared by ``pyconv bench`` and bench/bench_suite.py)."""
    parser.add_argument("--case", default=None,
                        help="comma-separated groups (conv, pool, softmax, loss, rnn, train) or "
                             "parts of case names, e.g. 'conv,pool' or 'deep,lstm' (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes of every case and few repeats (a smoke run)")
    parser.add_argument("--threads", default="1,2",
                        help="comma-separated thread counts for pyconv and PyTorch (default: 1,2)")
    parser.add_argument("--backend", default=None,
                        help="pyconv backend (default: cpu when pyconv._C is built, else numpy)")
    parser.add_argument("--against", default=None,
                        help="torch and/or numpy (the NumPy reference), comma-separated "
                             "(default: torch when importable, else numpy)")
    parser.add_argument("--repeats", type=_positive(int), default=None,
                        help="minimum interleaved timed rounds per case (default: 5, quick 2)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed rounds per case first (default: 1)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds per case that cheap cases fill with extra rounds, up to "
                             "200 (default: 1.0, quick 0.05)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (steadier on a shared "
                             "machine; at 2 threads it sums both threads) (default: wall)")
    parser.add_argument("--malloc", choices=["resident", "default"], default="resident",
                        help="resident: glibc keeps freed blocks below 32 MiB mapped, so PyTorch "
                             "and NumPy reuse warm memory the way pyconv's output pool does "
                             "(the stricter comparison); default: leave malloc alone "
                             "(default: resident)")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write every number to PATH as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyconv", description="pyconv command line tools")
    sub = parser.add_subparsers(dest="command", metavar="{train,eval,bench,check}")
    sub.required = True

    train = sub.add_parser("train", help="train LeNetDigits on the bundled 8x8 digits",
                           description="Train LeNetDigits on the bundled 8x8 digits and report "
                                       "test accuracy and throughput.")
    train.add_argument("--epochs", type=_positive(int), default=DEFAULT_EPOCHS,
                       help=f"passes over the training set (default: {DEFAULT_EPOCHS})")
    train.add_argument("--batch-size", type=_positive(int), default=DEFAULT_BATCH_SIZE,
                       help=f"training batch size (default: {DEFAULT_BATCH_SIZE})")
    train.add_argument("--lr", type=_positive(float), default=None,
                       help="learning rate (default: " + ", ".join(
                           f"{v:g} for {k}" for k, v in DEFAULT_LR.items()) + ")")
    train.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam",
                       help="optimizer (default: adam)")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    train.add_argument("--schedule", choices=["cosine", "constant"], default="cosine",
                       help="learning rate over the run: cosine decay to 0 per step, or "
                            "constant (default: cosine)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the train/test split, the initial weights and the batch "
                            "order (default: 0)")
    train.add_argument("--test-fraction", type=_fraction, default=0.2,
                       help="fraction of each class held out for testing (default: 0.2)")
    train.add_argument("--backend", default=None,
                       help="kernel backend, e.g. numpy (default: $PYCONV_BACKEND or numpy)")
    train.add_argument("--threads", type=_positive(int), default=None,
                       help="threads of native backends (pyconv.set_num_threads)")
    train.add_argument("--save", metavar="PATH", default=None,
                       help="write the trained weights (state_dict) to PATH as .npz")
    train.add_argument("--quiet", action="store_true",
                       help="no progress bar and no per-epoch lines; only the final summary")

    ev = sub.add_parser("eval", help="evaluate weights saved by 'pyconv train --save'",
                        description="Accuracy, per-class precision/recall/F1 and the confusion "
                                    "matrix of saved LeNetDigits weights, on the test split they "
                                    "were trained with (override with --seed/--test-fraction).")
    ev.add_argument("weights", help=".npz file written by 'pyconv train --save'")
    ev.add_argument("--seed", type=int, default=None, help="split seed (default: from the file)")
    ev.add_argument("--test-fraction", type=_fraction, default=None,
                    help="held-out fraction (default: from the file)")
    ev.add_argument("--backend", default=None,
                    help="kernel backend (default: $PYCONV_BACKEND or numpy)")

    bench = sub.add_parser("bench", help="benchmark suite: pyconv vs PyTorch or the NumPy "
                                         "reference",
                           description="Time pyconv's conv, pooling, softmax, cross-entropy, RNN "
                                       "and whole training steps against PyTorch (or the NumPy "
                                       "reference), interleaved, at 1 and 2 threads, with "
                                       "issue 4's targets (pyconv.benchmarks.suite).")
    add_bench_arguments(bench)

    sub.add_parser("check", help="versions, backends and native build information")
    return parser


def _cmd_train(args) -> int:
    import pyconv

    if args.threads is not None:
        pyconv.set_num_threads(args.threads)
    result = train_digits(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          optimizer=args.optimizer, momentum=args.momentum, seed=args.seed,
                          test_fraction=args.test_fraction, cosine=args.schedule == "cosine",
                          backend=args.backend, quiet=args.quiet)
    print(f"final test accuracy: {100 * result.test_accuracy:.2f}% "
          f"({result.test_correct}/{result.test_total})")
    epochs = f"{args.epochs} epoch" + ("" if args.epochs == 1 else "s")
    print(f"training throughput: {result.images_per_second:.0f} images/s ({epochs} in "
          f"{result.train_seconds:.1f} s, backend {backend_label(args.backend)})")
    if args.save:
        save_weights(args.save, result.model, args.seed, args.test_fraction)
        print(f"weights written to {args.save}")
    return 0


def _cmd_eval(args) -> int:
    from .metrics import accuracy, confusion_matrix, precision_recall_f1
    from .models import LeNetDigits

    context = backend_context(args.backend)
    model = LeNetDigits()
    try:
        meta = load_weights(args.weights, model)
    except (OSError, ValueError, RuntimeError) as exc:
        raise UsageError(f"cannot load weights from {args.weights}: {exc}") from None
    seed = args.seed if args.seed is not None else int(meta.get("seed", 0))
    fraction = (args.test_fraction if args.test_fraction is not None
                else float(meta.get("test_fraction", 0.2)))
    images, labels = all_samples(digits_split(seed, fraction)[1])
    with context:
        preds = predict(model, images)
    print(f"test accuracy: {100 * accuracy(preds, labels):.2f}% on {len(labels)} images "
          f"(split seed {seed}, test fraction {fraction:g})")
    precision, recall, f1 = precision_recall_f1(preds, labels, 10, average=None)
    print("class  precision  recall     f1")
    for c in range(10):
        print(f"{c:>5}  {precision[c]:9.3f}  {recall[c]:6.3f}  {f1[c]:.3f}")
    macro = precision_recall_f1(preds, labels, 10, average="macro")
    print(f"macro  {macro[0]:9.3f}  {macro[1]:6.3f}  {macro[2]:.3f}")
    print("confusion matrix (rows: true class, columns: predicted class):")
    for row in confusion_matrix(preds, labels, 10):
        print(" ".join(f"{v:4d}" for v in row))
    return 0


def _cmd_bench(args) -> int:
    from .benchmarks import suite

    try:
        return suite.run_from_args(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _cmd_check(args) -> int:
    import platform

    import pyconv
    from . import backends

    print(f"pyconv {pyconv.__version__} (python {platform.python_version()}, "
          f"numpy {np.__version__})")
    print(f"backends available here: {', '.join(backends.available())}")
    print(f"current backend: {backend_label(None)}")
    print(f"native build: {pyconv.build_info()}")
    print(f"threads: {pyconv.get_num_threads()}")
    return 0


COMMANDS = {"train": _cmd_train, "eval": _cmd_eval, "bench": _cmd_bench, "check": _cmd_check}


def main(argv=None) -> int:
    """Entry point of the ``pyconv`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"pyconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pyconv {args.command}: interrupted", file=sys.stderr)
        return 130
