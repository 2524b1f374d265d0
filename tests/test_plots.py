"""Plots (pyconv.plots, ``--plots``): each function writes a real PNG of the expected layout,
bad inputs are errors, and ``pyconv train/eval --plots`` write their files."""

import os
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from pyconv import cli, plots  # noqa: E402

HISTORY = [
    {"epoch": 1, "train_loss": 1.0, "val_loss": 0.8, "train_accuracy": 0.6, "val_accuracy": 0.7},
    {"epoch": 2, "train_loss": 0.5, "val_loss": 0.4, "train_accuracy": 0.8, "val_accuracy": 0.85},
]


def _png_size(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.load()
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 0  # something was drawn
    return image.size


def test_training_curves_have_two_panels_for_a_classifier(tmp_path):
    wide = _png_size(plots.training_curves(HISTORY, tmp_path / "c.png"))
    mse_history = [{"epoch": h["epoch"], "train_loss": h["train_loss"], "val_mse": h["val_loss"]}
                   for h in HISTORY]
    narrow = _png_size(plots.training_curves(mse_history, tmp_path / "m.png"))
    assert wide[0] > 1.5 * narrow[0]  # loss + accuracy side by side vs the MSE alone
    with pytest.raises(ValueError, match="history is empty"):
        plots.training_curves([], tmp_path / "e.png")


def test_confusion_matrix_and_its_shape_check(tmp_path):
    matrix = np.array([[5, 1, 0], [0, 6, 1], [2, 0, 4]])
    _png_size(plots.confusion_matrix(matrix, ["a", "b", "c"], tmp_path / "cm.png"))
    with pytest.raises(ValueError, match=r"K = len\(classes\) = 2, got \(3, 3\)"):
        plots.confusion_matrix(matrix, ["a", "b"], tmp_path / "bad.png")


def test_filters_draw_one_tile_per_output_channel(tmp_path):
    weight = np.random.default_rng(0).standard_normal((16, 3, 3, 3))
    eight = _png_size(plots.filters(weight, tmp_path / "f16.png"))
    four = _png_size(plots.filters(weight[:4], tmp_path / "f4.png"))
    assert eight[1] > 1.5 * four[1]  # 16 filters: two rows of eight; 4: one row
    with pytest.raises(ValueError, match=r"must be \(O, I, kH, kW\)"):
        plots.filters(weight[0], tmp_path / "bad.png")


def test_first_conv_weight_finds_the_first_convolution():
    from pyconv import models

    model = models.create("lenet_digits")
    np.testing.assert_array_equal(plots.first_conv_weight(model),
                                  np.asarray(model.features[0].weight.detach()))
    assert plots.first_conv_weight(models.create("rnn_classifier", input_size=(6, 6))) is None


def test_reconstruction_grid_has_a_row_per_stage(tmp_path):
    rng = np.random.default_rng(0)
    clean = rng.random((5, 1, 8, 8))
    three = _png_size(plots.reconstructions(clean, clean * 0.5, clean, tmp_path / "r3.png"))
    two = _png_size(plots.reconstructions(clean, None, clean, tmp_path / "r2.png"))
    assert three[1] > two[1]
    rgb = rng.random((2, 3, 8, 8))
    _png_size(plots.reconstructions(rgb, None, rgb, tmp_path / "rgb.png"))
    with pytest.raises(ValueError, match="reconstruction has shape"):
        plots.reconstructions(clean, None, clean[:2], tmp_path / "bad.png")


def test_train_and_eval_write_their_plots(tmp_path, capsys):
    ckpt = str(tmp_path / "ae.npz")
    out_dir = tmp_path / "train_plots"
    assert cli.main(["train", "--model", "conv_autoencoder", "--input-size", "8", "--noise",
                     "0.2", "--epochs", "2", "--quiet", "--test-fraction", "0.5",
                     "--checkpoint", ckpt, "--plots", str(out_dir)]) == 0
    out = capsys.readouterr().out
    trained = re.search(r"^final test reconstruction error \(MSE\): (\d\.\d{5})$", out, re.M)
    assert trained, out
    written = sorted(os.listdir(out_dir))
    assert written == ["curves.png", "filters.png", "reconstructions.png"]
    for name in written:
        _png_size(out_dir / name)
    eval_dir = tmp_path / "eval_plots"
    assert cli.main(["eval", "--checkpoint", ckpt, "--plots", str(eval_dir)]) == 0
    from pyconv.data import load_dataset

    n_test = len(load_dataset("digits", "test", test_fraction=0.5).labels)
    # eval rebuilds the same noisy test inputs: the same error as train reported
    assert re.search(rf"^test reconstruction error \(MSE\): {trained[1]} on {n_test} images",
                     capsys.readouterr().out, re.M)
    _png_size(eval_dir / "reconstructions.png")


def test_a_missing_matplotlib_says_how_to_install_it(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plots.training_curves(HISTORY, tmp_path / "c.png")


def test_eval_plots_the_confusion_matrix_of_a_classifier(tmp_path, capsys):
    import pyconv
    from pyconv import models

    pyconv.manual_seed(0)
    model = models.create("lenet_digits")  # untrained: eval works on any checkpoint
    data = {"dataset": "digits", "seed": 0, "test_fraction": 0.2, "channels": 1,
            "input_size": [8, 8], "task": "classification", "mean": 0.3, "std": 0.4,
            "classes": [str(c) for c in range(10)]}
    ckpt = str(tmp_path / "m.safetensors")
    pyconv.save(model, ckpt, extra={"data": data})
    assert cli.main(["eval", "--checkpoint", ckpt, "--plots", str(tmp_path / "p")]) == 0
    assert "confusion matrix" in capsys.readouterr().out
    _png_size(tmp_path / "p" / "confusion_matrix.png")
