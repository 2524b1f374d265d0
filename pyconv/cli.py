"""The ``pyconv`` command: ``pyconv train | eval | predict | bench | check``.

``pyconv train`` trains a model of :mod:`pyconv.models` (default ``lenet_digits``) on a dataset
of :mod:`pyconv.data` (default the bundled 8x8 digits, seeded stratified train/test split),
shows a progress bar on stderr and one line per epoch on stdout (training loss and the
held-out validation scores), and ends with the final test accuracy and the training
throughput. ``pyconv eval`` scores a checkpoint; ``pyconv predict`` classifies image files;
``pyconv bench`` runs the benchmark suite of :mod:`pyconv.benchmarks.suite`; ``pyconv check``
compares every op on every backend with the reference. Argument errors exit with status 2 and a
one-line message naming the argument, without a traceback.
"""

from __future__ import annotations

import argparse
import sys

from .training import (
    DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_VAL_FRACTION, UsageError,
    backend_context, backend_label,
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


def _nonnegative_fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected float, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _nonnegative(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected float, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _size(text):
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H or HxW, got {text!r}") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected H or HxW with positive sizes, got {text!r}")
    return (values[0], values[-1])


def _model_option(text):
    import json

    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _model_names() -> list:
    from . import models

    return models.available()


def _dataset_names() -> list:
    from . import data

    return list(data.DATASETS)


def _add_data_arguments(parser, defaults: bool) -> None:
    """--dataset / --data-dir (train: with defaults; eval: None means 'from the checkpoint')."""
    parser.add_argument("--dataset", choices=_dataset_names(),
                        default="digits" if defaults else None,
                        help="dataset (default: " + ("digits, the bundled 8x8 digits" if defaults
                                                     else "the checkpoint's") + ")")
    parser.add_argument("--data-dir", metavar="DIR", default=None,
                        help="folder of the dataset's files (default: $PYCONV_DATA)")


def _add_train_parser(sub) -> None:
    train = sub.add_parser(
        "train", help="train a model (default: lenet_digits on the bundled 8x8 digits)",
        description="Train a model of pyconv.models on a dataset, with per-epoch validation on a "
                    "held-out part of the training split, and report the test accuracy (or the "
                    "reconstruction error) and the throughput. Images are resized to the model's "
                    "input size and channel count.")
    train.add_argument("--model", choices=_model_names(), default="lenet_digits",
                       help="model (default: lenet_digits; see docs/models.md)")
    train.add_argument("--option", type=_model_option, action="append", default=[],
                       metavar="KEY=VALUE",
                       help="a model option, repeatable, e.g. --option cell=gru --option "
                            "hidden_size=64 (see docs/models.md); VALUE is read as JSON when it "
                            "parses, else as a string")
    train.add_argument("--input-size", type=_size, default=None, metavar="H[xW]",
                       help="train the model at this input size instead of its default (e.g. 8 "
                            "for the digits' own 8x8)")
    _add_data_arguments(train, defaults=True)
    train.add_argument("--augment", metavar="SPEC", default=None,
                       help="augmentation of training batches, e.g. "
                            "'flip,rotate=15,shift=0.1,zoom=0.1,crop=4,noise=0.1'")
    train.add_argument("--epochs", type=_positive(int), default=DEFAULT_EPOCHS,
                       help=f"passes over the training set (default: {DEFAULT_EPOCHS}); with "
                            f"--resume, the total to reach")
    train.add_argument("--batch-size", type=_positive(int), default=DEFAULT_BATCH_SIZE,
                       help=f"training batch size (default: {DEFAULT_BATCH_SIZE})")
    train.add_argument("--lr", type=_positive(float), default=None,
                       help="learning rate (default: " + ", ".join(
                           f"{v:g} for {k}" for k, v in DEFAULT_LR.items()) + ")")
    train.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam",
                       help="optimizer (default: adam)")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    train.add_argument("--schedule", choices=["cosine", "step", "none", "constant"],
                       default="cosine",
                       help="learning rate over the run: cosine decay to 0 per step, step "
                            "(x0.1 after each third of the epochs) or none (constant is an "
                            "alias) (default: cosine)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the splits, the initial weights, the batch order and the "
                            "augmentation (default: 0)")
    train.add_argument("--test-fraction", type=_fraction, default=0.2,
                       help="fraction of each class held out for testing when the dataset has "
                            "no test split of its own (default: 0.2)")
    train.add_argument("--val-fraction", type=_nonnegative_fraction, default=DEFAULT_VAL_FRACTION,
                       help="fraction of the training split held out for per-epoch validation, "
                            "0 for none (default: 0.1)")
    train.add_argument("--noise", type=_nonnegative, default=0.0,
                       help="std of Gaussian noise on the inputs of a reconstruction model (a "
                            "denoising autoencoder) (default: 0)")
    train.add_argument("--backend", default=None,
                       help="kernel backend, e.g. numpy (default: $PYCONV_BACKEND or cpu)")
    train.add_argument("--threads", type=_positive(int), default=None,
                       help="threads of native backends (pyconv.set_num_threads)")
    train.add_argument("--checkpoint", "--save", dest="checkpoint", metavar="PATH", default=None,
                       help="write a checkpoint (.safetensors or .npz) after every epoch "
                            "(--save is an alias)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run saved in --checkpoint up to --epochs (the "
                            "saved model, data and optimizer options are used)")
    train.add_argument("--plots", metavar="DIR", default=None,
                       help="write PNG plots (curves, confusion matrix, filters or "
                            "reconstructions) to DIR (needs matplotlib)")
    train.add_argument("--quiet", action="store_true",
                       help="no progress bar and no per-epoch lines; only the final summary")


def _add_eval_parser(sub) -> None:
    ev = sub.add_parser(
        "eval", help="score a checkpoint written by 'pyconv train'",
        description="Accuracy, per-class precision/recall/F1, the confusion matrix, Cohen's "
                    "kappa (and ROC AUC for two classes) of a checkpoint, or the reconstruction "
                    "error of an autoencoder, on the test split it was trained with (or "
                    "--dataset).")
    ev.add_argument("weights", nargs="?", default=None,
                    help="checkpoint file (same as --checkpoint)")
    ev.add_argument("--checkpoint", "--weights", dest="checkpoint", metavar="PATH", default=None,
                    help="checkpoint written by 'pyconv train --checkpoint/--save'")
    _add_data_arguments(ev, defaults=False)
    ev.add_argument("--seed", type=int, default=None, help="split seed (default: from the file)")
    ev.add_argument("--test-fraction", type=_fraction, default=None,
                    help="held-out fraction (default: from the file)")
    ev.add_argument("--backend", default=None,
                    help="kernel backend (default: $PYCONV_BACKEND or cpu)")
    ev.add_argument("--plots", metavar="DIR", default=None,
                    help="write PNG plots of the evaluation to DIR (needs matplotlib)")


def _add_predict_parser(sub) -> None:
    pr = sub.add_parser(
        "predict", help="classify image files with a checkpoint",
        description="Convert each image to the model's channels and input size, and print the "
                    "file, the predicted class name and its probability (needs Pillow).")
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    pr.add_argument("--checkpoint", "--weights", dest="checkpoint", metavar="PATH",
                    required=True, help="checkpoint written by 'pyconv train'")
    pr.add_argument("--top-k", type=_positive(int), default=1,
                    help="print the k most probable classes (default: 1)")
    pr.add_argument("--backend", default=None,
                    help="kernel backend (default: $PYCONV_BACKEND or cpu)")


def _add_check_parser(sub) -> None:
    check = sub.add_parser(
        "check", help="compare every op on every backend with the reference",
        description="Versions and backends of this install, then every op on every available "
                    "backend against the NumPy float64 reference (and PyTorch when importable); "
                    "exits 1 on any failure.")
    check.add_argument("--backend", default=None, metavar="B[,B...]",
                       help="comma-separated backends (default: every available one)")
    check.add_argument("--op", default=None, metavar="SUBSTR",
                       help="only the ops whose name contains SUBSTR (comma-separated: any of them)")
    check.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyconv", description="pyconv command line tools")
    sub = parser.add_subparsers(dest="command", metavar="{train,eval,predict,bench,check}")
    sub.required = True
    _add_train_parser(sub)
    _add_eval_parser(sub)
    _add_predict_parser(sub)
    bench = sub.add_parser("bench", help="benchmark suite: pyconv vs PyTorch or the NumPy "
                                         "reference",
                           description="Time pyconv's conv, pooling, softmax, cross-entropy, RNN "
                                       "and whole training steps against PyTorch (or the NumPy "
                                       "reference), interleaved, at 1 and 2 threads, with "
                                       "issue 4's targets (pyconv.benchmarks.suite).")
    add_bench_arguments(bench)
    _add_check_parser(sub)
    return parser


def _check_plots(directory) -> None:
    """Fail before any work when --plots is given without matplotlib."""
    if directory is None:
        return
    from . import plots

    try:
        plots.pyplot()
    except ImportError as exc:
        raise UsageError(f"--plots: {exc}") from None


def _cmd_train(args) -> int:
    import pyconv
    from .training_loop import fit

    if args.threads is not None:
        pyconv.set_num_threads(args.threads)
    if args.resume and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint PATH")
    _check_plots(args.plots)
    if args.checkpoint is not None and not args.checkpoint.lower().endswith(
            (".safetensors", ".npz")):
        raise UsageError(f"--checkpoint must end in .safetensors or .npz, got {args.checkpoint!r}")
    result = fit(args.model, args.dataset, data_dir=args.data_dir, augment=args.augment,
                 epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                 optimizer=args.optimizer, momentum=args.momentum, schedule=args.schedule,
                 val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                 seed=args.seed, noise=args.noise, input_size=args.input_size,
                 model_options=dict(args.option), backend=args.backend,
                 checkpoint=args.checkpoint, resume=args.resume, quiet=args.quiet)
    test = result.test
    if result.task == "reconstruction":
        print(f"final test reconstruction error (MSE): {test['mse']:.5f}")
    else:
        print(f"final test accuracy: {100 * test['accuracy']:.2f}% "
              f"({test['correct']}/{test['total']})")
    epochs = f"{result.epochs_run} epoch" + ("" if result.epochs_run == 1 else "s")
    print(f"training throughput: {result.images_per_second:.0f} images/s ({epochs} in "
          f"{result.train_seconds:.1f} s, backend {backend_label(args.backend)})")
    if args.checkpoint:
        print(f"checkpoint written to {args.checkpoint}")
    if args.plots:
        from .training_eval import write_training_plots

        for path in write_training_plots(result, args.plots):
            print(f"plot written to {path}")
    return 0


def _cmd_eval(args) -> int:
    from .training_eval import evaluate_checkpoint, load_for_inference

    path = args.checkpoint or args.weights
    if path is None:
        raise UsageError("the checkpoint to evaluate is missing: give --checkpoint PATH")
    _check_plots(args.plots)
    context = backend_context(args.backend)
    model, data_info = load_for_inference(path)
    with context:
        report = evaluate_checkpoint(model, data_info, dataset=args.dataset,
                                     data_dir=args.data_dir, seed=args.seed,
                                     test_fraction=args.test_fraction, plots=args.plots)
    print(report)
    return 0


def _cmd_predict(args) -> int:
    from .training_eval import load_for_inference, predict_files

    context = backend_context(args.backend)
    model, data_info = load_for_inference(args.checkpoint)
    with context:
        for line in predict_files(model, data_info, args.images, args.top_k):
            print(line)
    return 0


def _cmd_bench(args) -> int:
    from .benchmarks import suite

    try:
        return suite.run_from_args(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _cmd_check(args) -> int:
    from . import check

    names = None if args.backend is None else [b for b in args.backend.split(",") if b]
    ops = None if args.op is None else [o for o in args.op.split(",") if o]
    try:
        return check.run(backends=names, ops=ops, torch=not args.no_torch, stream=sys.stdout)
    except (KeyError, ValueError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None


COMMANDS = {"train": _cmd_train, "eval": _cmd_eval, "predict": _cmd_predict, "bench": _cmd_bench,
            "check": _cmd_check}


def _notices_as_lines(command: str):
    """Show dataset notices (a subset of MNIST, ...) as one line each, not as a warning with
    its source line; other warnings keep Python's format."""
    import warnings

    from .data.checksums import DatasetNotice

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DatasetNotice):
            print(f"pyconv {command}: notice: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def main(argv=None) -> int:
    """Entry point of the ``pyconv`` console script; returns the exit status."""
    import warnings

    args = build_parser().parse_args(argv)
    previous = warnings.showwarning
    warnings.showwarning = _notices_as_lines(args.command)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"pyconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pyconv {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous
