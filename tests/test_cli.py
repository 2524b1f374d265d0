"""The ``pyconv`` command line: parsing, error exits, a real 1-epoch run, checkpoint / eval /
predict / resume end to end, an MNIST-format folder, bench and check."""

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from pyconv import cli, training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_module(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pyconv", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


# ----- parsing -------------------------------------------------------------------------------


def test_train_defaults():
    args = cli.build_parser().parse_args(["train"])
    assert (args.model, args.dataset, args.data_dir, args.augment) == (
        "lenet_digits", "digits", None, None)
    assert (args.epochs, args.batch_size, args.lr, args.optimizer) == (
        cli.DEFAULT_EPOCHS, cli.DEFAULT_BATCH_SIZE, None, "adam")
    assert (args.seed, args.test_fraction, args.val_fraction, args.backend, args.quiet) == (
        0, 0.2, cli.DEFAULT_VAL_FRACTION, None, False)
    assert (args.checkpoint, args.resume, args.plots, args.noise) == (None, False, None, 0.0)
    assert args.schedule == "cosine"


def test_train_options():
    args = cli.build_parser().parse_args(
        ["train", "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--optimizer", "sgd",
         "--momentum", "0.5", "--seed", "3", "--test-fraction", "0.3", "--backend", "numpy",
         "--quiet", "--save", "w.npz", "--threads", "2", "--schedule", "step",
         "--model", "lenet", "--dataset", "mnist", "--data-dir", "d", "--augment", "flip",
         "--val-fraction", "0", "--noise", "0.2", "--resume", "--plots", "p",
         "--option", "cell=gru", "--option", "widths=[4, 8]", "--input-size", "12x10"])
    assert (args.epochs, args.batch_size, args.lr, args.optimizer, args.momentum) == (
        2, 16, 0.01, "sgd", 0.5)
    assert (args.seed, args.test_fraction, args.backend, args.quiet, args.checkpoint,
            args.threads) == (3, 0.3, "numpy", True, "w.npz", 2)
    assert (args.model, args.dataset, args.data_dir, args.augment, args.val_fraction) == (
        "lenet", "mnist", "d", "flip", 0.0)
    assert (args.schedule, args.noise, args.resume, args.plots) == ("step", 0.2, True, "p")
    assert args.option == [("cell", "gru"), ("widths", [4, 8])] and args.input_size == (12, 10)


@pytest.mark.parametrize("argv,option", [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--batch-size", "x"], "--batch-size"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--optimizer", "rmsprop"], "--optimizer"),
    (["train", "--test-fraction", "1.5"], "--test-fraction"),
    (["train", "--val-fraction", "1"], "--val-fraction"),
    (["train", "--noise", "-0.1"], "--noise"),
    (["train", "--model", "vgg99"], "--model"),
    (["train", "--dataset", "imagenet"], "--dataset"),
    (["train", "--schedule", "linear"], "--schedule"),
    (["train", "--bogus"], "--bogus"),
    (["train", "--option", "cell"], "--option"),
    (["predict", "x.png"], "--checkpoint"),
    (["predict", "--checkpoint", "c.npz", "x.png", "--top-k", "0"], "--top-k"),
    ([], "{train,eval,predict,bench,check}"),
    (["frobnicate"], "frobnicate"),
])
def test_bad_arguments_exit_2_naming_the_option(argv, option, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["train", "--resume"], "--resume needs --checkpoint"),
    (["train", "--checkpoint", "model.pt"], "--checkpoint must end in .safetensors or .npz"),
    (["train", "--augment", "flip,spin=3", "--epochs", "1"], "--augment"),
    (["train", "--dataset", "mnist", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),
    (["eval"], "--checkpoint"),
    (["train", "--model", "rnn_classifier", "--option", "cells=gru"], "has no option 'cells'"),
    (["eval", "--checkpoint", "model.pt"], "must end in .safetensors or .npz"),
])
def test_bad_values_found_after_parsing_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pyconv {argv[0]}: error: ") and message in err, err


def test_unknown_backend_is_a_clean_error_in_process(capsys):
    assert cli.main(["train", "--backend", "nope", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "pyconv train: error: unknown backend 'nope'" in err and "numpy" in err


def test_unknown_backend_exits_2_without_traceback():
    proc = _run_module("train", "--backend", "nope")
    assert proc.returncode == 2
    assert "unknown backend 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# ----- running -------------------------------------------------------------------------------


def test_one_epoch_run_then_eval_and_predict_via_python_m_pyconv(tmp_path):
    ckpt = str(tmp_path / "digits.safetensors")
    proc = _run_module("train", "--epochs", "1", "--checkpoint", ckpt)
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"^final test accuracy: (\d+\.\d\d)% \((\d+)/(\d+)\)$", proc.stdout, re.M)
    assert match, proc.stdout
    accuracy, correct, total = float(match[1]), int(match[2]), int(match[3])
    assert total == 359 and accuracy == pytest.approx(100 * correct / total, abs=0.006)
    assert accuracy > 30  # one epoch learns something (chance is 10%)
    assert re.search(r"^training throughput: \d+ images/s", proc.stdout, re.M)
    assert re.search(r"^epoch 1/1: train loss \d+\.\d{4}, val loss \d+\.\d{4}, "
                     r"val accuracy \d+\.\d\d%$", proc.stdout, re.M)
    # stderr is not a terminal here: exactly one progress line per epoch, no carriage returns
    progress = [line for line in proc.stderr.splitlines() if line.startswith("epoch 1/1 [")]
    assert len(progress) == 1 and "\r" not in proc.stderr
    # the 1438 training images less the default validation share, in batches of 32
    from pyconv.training_data import prepare

    trained = len(prepare("lenet_digits", "digits", val_fraction=cli.DEFAULT_VAL_FRACTION).train_labels)
    batches = -(-trained // cli.DEFAULT_BATCH_SIZE)
    assert re.search(rf"{batches}/{batches} loss \d+\.\d{{4}} acc \d+\.\d\d%", progress[0])
    _eval_and_predict_in_subprocesses(tmp_path, ckpt, match[1])


def _final_accuracy(out):
    return re.search(r"final test accuracy: (\d+\.\d\d)%", out)[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(checkpoint path, the printed test accuracy) of a 1-epoch run with split seed 2."""
    weights = str(tmp_path_factory.mktemp("trained") / "w.npz")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["train", "--epochs", "1", "--seed", "2", "--quiet", "--save",
                         weights]) == 0
    return weights, _final_accuracy(out.getvalue())


def test_save_then_eval_reports_the_same_accuracy(trained, capsys):
    weights, accuracy = trained
    assert cli.main(["eval", weights]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^test accuracy: (\d+\.\d\d)%", out, re.M)[1] == accuracy
    assert "split seed 2" in out
    rows = [line for line in out.splitlines() if re.fullmatch(r"( +\d+){10}", line)]
    assert len(rows) == 10 and sum(int(v) for row in rows for v in row.split()) == 359
    matrix = np.array([[int(v) for v in row.split()] for row in rows])
    kappa = float(re.search(r"^Cohen's kappa: (-?\d\.\d{4})$", out, re.M)[1])
    # kappa from the printed matrix, computed here from its definition
    p_observed = np.trace(matrix) / 359
    p_chance = float(matrix.sum(0) @ matrix.sum(1)) / 359 ** 2
    assert kappa == pytest.approx((p_observed - p_chance) / (1 - p_chance), abs=1e-4)
    assert re.search(r"^\s+macro avg\s+\d\.\d{3}", out, re.M)
    assert "ROC AUC" not in out  # ten classes


def test_eval_of_a_missing_file_exits_2(tmp_path, capsys):
    assert cli.main(["eval", "--checkpoint", str(tmp_path / "missing.npz")]) == 2
    assert "cannot load checkpoint" in capsys.readouterr().err


def test_resume_continues_the_epoch_count_and_the_run(tmp_path, capsys):
    # a constant learning rate: a 1-epoch cosine schedule would differ from a 2-epoch one
    common = ["train", "--quiet", "--seed", "4", "--batch-size", "64", "--augment", "shift=0.1",
              "--schedule", "none", "--test-fraction", "0.5", "--val-fraction", "0.5"]
    straight = str(tmp_path / "straight.safetensors")
    assert cli.main(common + ["--epochs", "2", "--checkpoint", straight]) == 0
    expected = _final_accuracy(capsys.readouterr().out)
    split = str(tmp_path / "split.npz")
    assert cli.main(common + ["--epochs", "1", "--checkpoint", split]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--epochs", "2", "--checkpoint", split, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/2" not in out and re.search(r"^epoch 2/2: train loss", out, re.M)
    assert "(1 epoch in" in out
    assert _final_accuracy(out) == expected
    # the same weights, optimizer state and history as the uninterrupted run
    from pyconv import checkpoint

    a, state_a = checkpoint.load_checkpoint(straight)
    b, state_b = checkpoint.load_checkpoint(split)
    for (key, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=key)
    assert state_a["epoch"] == state_b["epoch"] == 2
    def without_times(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert without_times(state_a["extra"]["history"]) == without_times(state_b["extra"]["history"])


def _write_pngs(folder, images):
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = os.path.join(folder, f"digit{i}.png")
        Image.fromarray(np.round(image[0] * 255).astype(np.uint8), mode="L").save(path)
        paths.append(path)
    return paths


def _eval_and_predict_in_subprocesses(tmp_path, ckpt, trained):
    proc = _run_module("eval", "--checkpoint", ckpt)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^test accuracy: (\d+\.\d\d)%", proc.stdout, re.M)[1] == trained

    import pyconv
    from pyconv.data import load_dataset
    from pyconv.training_loop import model_outputs, softmax

    test = load_dataset("digits", "test", seed=0)
    images = test.images[:6]
    if importlib.util.find_spec("PIL") is None:
        return  # predict needs Pillow
    paths = _write_pngs(str(tmp_path), images)
    proc = _run_module("predict", "--checkpoint", ckpt, "--top-k", "3", *paths)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 6
    # the oracle: the same model on the same 8-bit pixels, normalised as in training
    model, state = pyconv.checkpoint.load_checkpoint(ckpt)
    data = state["extra"]["data"]
    pixels = np.round(images * 255).astype(np.float32) / 255
    probs = softmax(model_outputs(model, (pixels - np.float32(data["mean"]))
                                  / np.float32(data["std"])))
    for path, line, row in zip(paths, lines, probs):
        match = re.fullmatch(re.escape(path) + r": (\d) \((\d+\.\d)%\), (\d) \((\d+\.\d)%\), "
                             r"(\d) \((\d+\.\d)%\)", line)
        assert match, line
        top = np.argsort(-row, kind="stable")[:3]
        assert [int(match[i]) for i in (1, 3, 5)] == [int(c) for c in top]
        assert float(match[2]) == pytest.approx(100 * row[top[0]], abs=0.051)


def test_predict_errors_exit_2(trained, tmp_path, capsys):
    pytest.importorskip("PIL")
    ckpt = trained[0]
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    assert cli.main(["predict", "--checkpoint", ckpt, str(not_an_image)]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_two_class_image_folder_eval_reports_roc_auc(tmp_path, capsys):
    pytest.importorskip("PIL")
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from pyconv.data import load_dataset

    rng = np.random.default_rng(1)
    for side, n in (("train", 24), ("test", 16)):
        images = rng.random((n, 1, 8, 8)) * 0.3
        labels = np.arange(n) % 2
        # class "bright": a brighter left half; faint in the test images, so the scores overlap
        images[labels == 1, 0, :, :4] += 0.1 if side == "train" else 0.02
        _write_pngs(str(tmp_path / "shapes" / side / "dark"), images[labels == 0])
        _write_pngs(str(tmp_path / "shapes" / side / "bright"), images[labels == 1])
    ckpt = str(tmp_path / "two.npz")
    assert cli.main(["train", "--dataset", "folder", "--data-dir", str(tmp_path / "shapes"),
                     "--epochs", "2", "--val-fraction", "0", "--quiet", "--checkpoint",
                     ckpt]) == 0
    capsys.readouterr()
    assert cli.main(["eval", "--checkpoint", ckpt]) == 0
    out = capsys.readouterr().out
    auc = float(re.search(r"^ROC AUC: (\d\.\d{4})$", out, re.M)[1])
    assert 0.5 < auc < 1  # not a degenerate case where any ranking agrees
    # the oracle: scikit-learn on the same model's probabilities of the same test images
    import pyconv
    from pyconv.training_loop import model_outputs, softmax

    model, state = pyconv.checkpoint.load_checkpoint(ckpt)
    data = state["extra"]["data"]
    test = load_dataset("folder", "test", str(tmp_path / "shapes"))
    assert data["classes"] == test.classes == ["bright", "dark"]
    x = (test.images - np.float32(data["mean"])) / np.float32(data["std"])
    probs = softmax(model_outputs(model, x.astype(np.float32)))
    assert auc == pytest.approx(sklearn_metrics.roc_auc_score(test.labels, probs[:, 1]),
                                abs=5e-5)


def test_mnist_format_folder_trains_lenet(tmp_path):
    from pyconv.data import write_mnist_folder

    rng = np.random.default_rng(0)

    def images(labels):
        # class c: a bright 6x6 square at one of ten positions, over faint noise
        out = rng.integers(0, 40, (len(labels), 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, col = 2 + 8 * (c // 4), 2 + 6 * (c % 4)
            out[i, r:r + 6, col:col + 6] = 250
        return out

    train_labels, test_labels = rng.integers(0, 10, 300), rng.integers(0, 10, 60)
    folder = tmp_path / "mnist"
    write_mnist_folder(str(folder), train=(images(train_labels), train_labels),
                       test=(images(test_labels), test_labels), gzip=True)
    proc = _run_module("train", "--model", "lenet", "--dataset", "mnist", "--data-dir",
                       str(folder), "--epochs", "2", "--quiet", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"^final test accuracy: (\d+\.\d\d)% \((\d+)/60\)$", proc.stdout, re.M)
    assert match, proc.stdout
    assert float(match[1]) > 50  # an easy task: far above the 10% of chance
    # a subset of the official files: one notice line per file, not Python's warning format
    notices = [line for line in proc.stderr.splitlines() if "notice:" in line]
    assert len(notices) == 4 and all(line.startswith("pyconv train: notice: MNIST: ")
                                     for line in notices), proc.stderr
    assert "DatasetNotice" not in proc.stderr, proc.stderr


class _FakeStream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_redraws_in_place_on_a_terminal_only():
    tty, plain = _FakeStream(True), _FakeStream(False)
    for stream in (tty, plain):
        bar = training.Progress(stream, total_batches=4, epochs=2, interval=0.0)
        for epoch in (1, 2):
            for done in range(1, 5):
                bar.update(epoch, done, 0.5, 0.25, 1.0)
            bar.end_epoch(epoch, 0.5, 0.25, 1.0)
    assert plain.getvalue().count("\n") == 2 and "\r" not in plain.getvalue()
    assert plain.getvalue().splitlines()[1].startswith("epoch 2/2 [" + "#" * 24 + "] 4/4")
    assert tty.getvalue().count("\r") == 2 * 4 and tty.getvalue().count("\n") == 2
    assert "epoch 1/2 [######.................." in tty.getvalue()  # 1 of 4 batches


def test_progress_pads_a_shorter_line_over_a_longer_one():
    tty = _FakeStream(True)
    bar = training.Progress(tty, total_batches=3, epochs=1, interval=0.0)
    bar.update(1, 1, 123456.0, 0.5, 10.0)
    bar.update(1, 2, 1.0, 0.5, 10.0)
    first, second = tty.getvalue().split("\r")[1:]
    assert len(second) == len(first) and second.rstrip(" ") != second


def test_progress_of_a_reconstruction_loss_has_no_accuracy():
    plain = _FakeStream(False)
    training.Progress(plain, 2, 1).end_epoch(1, 0.0123, None, 1.0)
    assert plain.getvalue() == "epoch 1/1 [" + "#" * 24 + "] 2/2 loss 0.0123 1.0s\n"


def test_quiet_progress_writes_nothing():
    stream = _FakeStream(True)
    bar = training.Progress(stream, 3, 1, enabled=False)
    bar.update(1, 1, 0.1, 0.1, 0.1)
    bar.end_epoch(1, 0.1, 0.1, 0.1)
    assert stream.getvalue() == ""


def test_check_lists_the_numpy_backend(capsys):
    code = cli.main(["check", "--backend", "numpy", "--op", "relu", "--no-torch"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "backends available here:" in out and "numpy" in out
    if importlib.util.find_spec("pyconv.check") is not None:
        rows = [line.split() for line in out.splitlines() if line.startswith("relu_")]
        assert rows and all(row[1] == "numpy" and row[-1] == "ok" for row in rows), out


def test_check_of_an_unknown_backend_exits_2(capsys):
    if importlib.util.find_spec("pyconv.check") is None:
        pytest.skip("pyconv.check is not in this tree")
    assert cli.main(["check", "--backend", "nope", "--no-torch"]) == 2
    assert "pyconv check: error: unknown backend 'nope'" in capsys.readouterr().err


def test_bench_prints_the_table(capsys):
    assert cli.main(["bench", "--quick", "--case", "max_pool2d 2x2 fwd", "--threads", "1",
                     "--against", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "| case | shape | thr |" in out
    assert "| max_pool2d 2x2 fwd | (2, 4, 10, 10) | 1 | numpy |" in out


def test_bench_errors_exit_2(capsys):
    assert cli.main(["bench", "--backend", "nope", "--repeats", "1"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err


def test_checkpoints_hold_pytorch_state_dict_keys(trained):
    with np.load(trained[0]) as f:
        keys = set(f.files)
    assert {"features.0.weight", "features.2.bias", "classifier.2.weight"} <= keys
