"""Using a trained model: the work behind ``pyconv eval``, ``pyconv predict`` and the plots of
``pyconv train --plots``.

A checkpoint written by ``pyconv train`` carries, next to the model, how its inputs were made
(``extra["data"]``: dataset, split seed and fractions, channels, input size, the normalisation
mean and std, the class names), so evaluation and prediction feed the model exactly what it was
trained on.
"""

from __future__ import annotations

import os

import numpy as np

from .training import UsageError
from .training_data import Prepared, fit_to_model, load_split, standardize
from .training_loop import VAL_NOISE_SEED, evaluate_outputs, model_outputs, noisy, softmax

__all__ = ["evaluate_checkpoint", "load_for_inference", "predict_files", "write_training_plots"]

RECONSTRUCTION_SAMPLES = 8  # columns of the autoencoder grid


def load_for_inference(path) -> tuple:
    """``(model, data_info)`` of a checkpoint, errors as UsageError (exit status 2)."""
    from . import checkpoint as ckpt

    try:
        model, state = ckpt.load_checkpoint(path)
    except (OSError, ValueError) as exc:  # missing, corrupt, foreign, wrong extension
        raise UsageError(f"cannot load checkpoint {path}: {exc}") from None
    data = state["extra"].get("data")
    if not data:
        raise UsageError(f"{path} has no record of its training data (extra['data']); it was "
                         f"not written by 'pyconv train'")
    return model, data


def _normalize(images: np.ndarray, data: dict) -> np.ndarray:
    return standardize(images, data["mean"], data["std"])


def _test_arrays(data: dict, dataset, data_dir, seed, test_fraction) -> tuple:
    name = dataset or data["dataset"]
    directory = data_dir if dataset is not None or data_dir is not None else data.get("data_dir")
    seed = data["seed"] if seed is None else seed
    fraction = data["test_fraction"] if test_fraction is None else test_fraction
    test = load_split(name, "test", directory, seed, fraction)
    images = fit_to_model(np.asarray(test.images, dtype=np.float32), data["channels"],
                          tuple(data["input_size"]))
    return name, seed, fraction, images, np.asarray(test.labels, dtype=np.int64), list(test.classes)


def evaluate_checkpoint(model, data: dict, dataset=None, data_dir=None, seed=None,
                        test_fraction=None, plots=None) -> str:
    """The text report of ``pyconv eval`` for ``model`` on the test split of ``dataset``
    (default: the checkpoint's, with its split seed and fraction). Classification: accuracy,
    per-class precision/recall/F1, Cohen's kappa, ROC AUC (two classes), the confusion matrix;
    reconstruction: the mean squared error. ``plots``: a directory for PNGs."""
    from . import metrics
    from . import plots as plotting

    name, seed, fraction, images, labels, classes = _test_arrays(data, dataset, data_dir, seed,
                                                                 test_fraction)
    where = f"{len(labels)} images (dataset {name}, split seed {seed}, test fraction {fraction:g})"
    if data.get("task") == "reconstruction":
        noise = float(data.get("noise", 0.0))
        inputs = noisy(images, noise, np.random.default_rng(seed + VAL_NOISE_SEED))
        outputs = model_outputs(model, _normalize(inputs, data))
        mse = evaluate_outputs("reconstruction", outputs, images)["mse"]
        if plots:
            k = min(RECONSTRUCTION_SAMPLES, len(images))
            plotting.reconstructions(images[:k], inputs[:k] if noise > 0 else None, outputs[:k],
                                     os.path.join(plots, "reconstructions.png"))
        return f"test reconstruction error (MSE): {mse:.5f} on {where}, input noise std {noise:g}"
    trained_classes = data.get("classes") or classes
    k = len(trained_classes)
    if labels.size and labels.max() >= k:
        raise UsageError(f"dataset {name} has {labels.max() + 1} classes but the model was "
                         f"trained on {k}")
    logits = model_outputs(model, _normalize(images, data))
    preds = logits.argmax(axis=1)
    lines = [f"test accuracy: {100 * metrics.accuracy(preds, labels):.2f}% on {where}", ""]
    lines.append(metrics.classification_report(preds, labels, k, class_names=trained_classes,
                                               digits=3).rstrip("\n"))
    lines.append("")
    lines.append(f"Cohen's kappa: {metrics.cohen_kappa(preds, labels, k):.4f}")
    if k == 2 and 0 < np.count_nonzero(labels) < labels.size:
        lines.append(f"ROC AUC: {metrics.roc_auc(softmax(logits)[:, 1], labels):.4f}")
    matrix = metrics.confusion_matrix(preds, labels, k)
    lines.append("confusion matrix (rows: true class, columns: predicted class):")
    lines.extend(" ".join(f"{v:4d}" for v in row) for row in matrix)
    if plots:
        plotting.confusion_matrix(matrix, trained_classes,
                                  os.path.join(plots, "confusion_matrix.png"))
    return "\n".join(lines)


def _read_image(path: str, channels: int) -> np.ndarray:
    """An image file as float32 (channels, H, W) in [0, 1] (Pillow)."""
    try:
        from PIL import Image
    except ImportError:
        raise UsageError("reading image files needs Pillow: pip install pillow") from None
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read image {path}: {exc}") from None
    return array[None] if array.ndim == 2 else np.transpose(array, (2, 0, 1))


def predict_files(model, data: dict, paths: list, top_k: int = 1) -> list:
    """One line per file: ``path: class (probability)``, the ``top_k`` most probable classes."""
    if data.get("task") == "reconstruction":
        raise UsageError("predict needs a classification model; this checkpoint holds a "
                         "reconstruction model (use 'pyconv eval')")
    channels, size = int(data["channels"]), tuple(data["input_size"])
    batch = np.concatenate([fit_to_model(_read_image(p, channels)[None], channels, size)
                            for p in paths])
    probs = softmax(model_outputs(model, _normalize(batch, data)))
    classes = data.get("classes") or [str(c) for c in range(probs.shape[1])]
    lines = []
    for path, row in zip(paths, probs):
        best = np.argsort(-row, kind="stable")[:top_k]
        lines.append(f"{path}: " + ", ".join(f"{classes[c]} ({100 * row[c]:.1f}%)" for c in best))
    return lines


def write_training_plots(result, directory) -> list:
    """PNGs of a :class:`~pyconv.training_loop.RunResult` in ``directory``: the curves, and the
    confusion matrix and first-layer filters (classifier) or the reconstruction grid
    (autoencoder). Returns the paths written."""
    from . import metrics
    from . import plots as plotting

    prepared: Prepared = result.prepared
    model_name = result.model.config.get("name", "model")
    written = [plotting.training_curves(result.history, os.path.join(directory, "curves.png"),
                                        title=f"{model_name} on {prepared.info['dataset']}")]
    weight = plotting.first_conv_weight(result.model)
    if weight is not None:
        written.append(plotting.filters(weight, os.path.join(directory, "filters.png")))
    images = prepared.test_images
    if result.task == "reconstruction":
        k = min(RECONSTRUCTION_SAMPLES, len(images))
        noise = float(prepared.info.get("noise", 0.0))
        inputs = noisy(images[:k], noise, np.random.default_rng(prepared.info["seed"]
                                                                 + VAL_NOISE_SEED))
        outputs = model_outputs(result.model, prepared.normalize(inputs))
        written.append(plotting.reconstructions(images[:k], inputs if noise > 0 else None,
                                                outputs,
                                                os.path.join(directory, "reconstructions.png")))
    else:
        preds = model_outputs(result.model, prepared.normalize(images)).argmax(axis=1)
        matrix = metrics.confusion_matrix(preds, prepared.test_labels, len(prepared.classes))
        written.append(plotting.confusion_matrix(matrix, prepared.classes,
                                                 os.path.join(directory, "confusion_matrix.png")))
    return written
