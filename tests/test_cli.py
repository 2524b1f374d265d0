"""The ``pyconv`` command line: parsing, error exits, a real 1-epoch run, save/eval, bench."""

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
    assert (args.epochs, args.batch_size, args.lr, args.optimizer) == (
        cli.DEFAULT_EPOCHS, cli.DEFAULT_BATCH_SIZE, None, "adam")
    assert (args.seed, args.test_fraction, args.backend, args.quiet, args.save) == (
        0, 0.2, None, False, None)
    assert args.schedule == "cosine"


def test_train_options():
    args = cli.build_parser().parse_args(
        ["train", "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--optimizer", "sgd",
         "--momentum", "0.5", "--seed", "3", "--test-fraction", "0.3", "--backend", "numpy",
         "--quiet", "--save", "w.npz", "--threads", "2", "--schedule", "constant"])
    assert (args.epochs, args.batch_size, args.lr, args.optimizer, args.momentum) == (
        2, 16, 0.01, "sgd", 0.5)
    assert (args.seed, args.test_fraction, args.backend, args.quiet, args.save, args.threads) == (
        3, 0.3, "numpy", True, "w.npz", 2)
    assert args.schedule == "constant"


@pytest.mark.parametrize("argv,option", [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--batch-size", "x"], "--batch-size"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--optimizer", "rmsprop"], "--optimizer"),
    (["train", "--test-fraction", "1.5"], "--test-fraction"),
    (["train", "--bogus"], "--bogus"),
    ([], "{train,eval,bench,check}"),
    (["frobnicate"], "frobnicate"),
])
def test_bad_arguments_exit_2_naming_the_option(argv, option, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert option in capsys.readouterr().err


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


def test_one_epoch_run_via_python_m_pyconv():
    proc = _run_module("train", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"^final test accuracy: (\d+\.\d\d)% \((\d+)/(\d+)\)$", proc.stdout, re.M)
    assert match, proc.stdout
    accuracy, correct, total = float(match[1]), int(match[2]), int(match[3])
    assert total == 359 and accuracy == pytest.approx(100 * correct / total, abs=0.006)
    assert accuracy > 30  # one epoch learns something (chance is 10%)
    assert re.search(r"^training throughput: \d+ images/s", proc.stdout, re.M)
    assert re.search(r"^epoch 1/1: test accuracy \d+\.\d\d%$", proc.stdout, re.M)
    # stderr is not a terminal here: exactly one progress line per epoch, no carriage returns
    progress = [line for line in proc.stderr.splitlines() if line.startswith("epoch 1/1 [")]
    assert len(progress) == 1 and "\r" not in proc.stderr
    assert re.search(r"45/45 loss \d+\.\d{4} acc \d+\.\d\d%", progress[0])


def test_save_then_eval_reports_the_same_accuracy(tmp_path, capsys):
    weights = str(tmp_path / "w.npz")
    assert cli.main(["train", "--epochs", "1", "--seed", "2", "--quiet", "--save", weights]) == 0
    out = capsys.readouterr().out
    trained = re.search(r"final test accuracy: (\d+\.\d\d)%", out)[1]
    assert cli.main(["eval", weights]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^test accuracy: (\d+\.\d\d)%", out, re.M)[1] == trained
    assert "split seed 2" in out
    rows = [line for line in out.splitlines() if re.fullmatch(r"( +\d+){10}", line)]
    assert len(rows) == 10 and sum(int(v) for row in rows for v in row.split()) == 359


def test_eval_of_a_missing_file_exits_2(tmp_path, capsys):
    assert cli.main(["eval", str(tmp_path / "missing.npz")]) == 2
    assert "cannot load weights" in capsys.readouterr().err


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


def test_quiet_progress_writes_nothing():
    stream = _FakeStream(True)
    bar = training.Progress(stream, 3, 1, enabled=False)
    bar.update(1, 1, 0.1, 0.1, 0.1)
    bar.end_epoch(1, 0.1, 0.1, 0.1)
    assert stream.getvalue() == ""


def test_check_lists_the_numpy_backend(capsys):
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert "backends available here:" in out and "numpy" in out


def test_bench_prints_the_table(capsys):
    assert cli.main(["bench", "--quick", "--case", "max_pool2d 2x2 fwd", "--threads", "1",
                     "--against", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "| case | shape | thr |" in out
    assert "| max_pool2d 2x2 fwd | (2, 4, 10, 10) | 1 | numpy |" in out


def test_bench_errors_exit_2(capsys):
    assert cli.main(["bench", "--backend", "nope", "--repeats", "1"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err


def test_saved_weights_hold_pytorch_state_dict_keys(tmp_path):
    import pyconv
    from pyconv.models import LeNetDigits

    path = str(tmp_path / "w.npz")
    pyconv.manual_seed(0)
    model = LeNetDigits()
    training.save_weights(path, model, seed=4, test_fraction=0.3)
    with np.load(path) as f:
        keys = set(f.files)
    assert {"features.0.weight", "features.2.bias", "classifier.2.weight"} <= keys
    other = LeNetDigits()
    assert training.load_weights(path, other) == {"seed": 4, "test_fraction": 0.3}
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
