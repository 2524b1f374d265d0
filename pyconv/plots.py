"""PNG plots of a training run: loss/accuracy curves, a confusion matrix, first-layer filters,
and an autoencoder's input / noisy input / reconstruction grid.

matplotlib is optional: it is imported on first use with the non-interactive Agg backend, and a
missing install raises ImportError saying ``pip install matplotlib``. Every function writes one
PNG to ``path`` and returns ``path``.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["confusion_matrix", "filters", "first_conv_weight", "pyplot", "reconstructions",
           "training_curves"]


def pyplot():
    """matplotlib.pyplot with the Agg backend; ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return path


def training_curves(history: list, path, title: str = "") -> str:
    """Per-epoch curves from ``history`` (dicts with 'epoch', 'train_loss' and optionally
    'val_loss', 'train_accuracy', 'val_accuracy', 'val_mse'): the loss (or MSE) on the left,
    the accuracies on the right when there are any."""
    if not history:
        raise ValueError("training_curves: history is empty (no epoch was trained)")
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    has_acc = any("train_accuracy" in h for h in history)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5, 3.6),
                             squeeze=False)
    loss_ax = axes[0][0]
    val_key = "val_loss" if has_acc else "val_mse"
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    if any(val_key in h for h in history):
        loss_ax.plot(epochs, [h.get(val_key, np.nan) for h in history], "s-", label="validation")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy loss" if has_acc else "reconstruction MSE")
    loss_ax.legend()
    loss_ax.grid(alpha=0.3)
    if has_acc:
        acc_ax = axes[0][1]
        acc_ax.plot(epochs, [100 * h.get("train_accuracy", np.nan) for h in history], "o-",
                    label="train")
        if any("val_accuracy" in h for h in history):
            acc_ax.plot(epochs, [100 * h.get("val_accuracy", np.nan) for h in history], "s-",
                        label="validation")
        acc_ax.set_xlabel("epoch")
        acc_ax.set_ylabel("accuracy (%)")
        acc_ax.legend()
        acc_ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(matrix: np.ndarray, classes: list, path, title: str = "") -> str:
    """matrix (K, K) counts, rows the true class, columns the predicted class."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(classes):
        raise ValueError(f"confusion_matrix: matrix must be (K, K) with K = len(classes) = "
                         f"{len(classes)}, got {matrix.shape}")
    plt = pyplot()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * k, 0.8 + 0.45 * k))
    ax.imshow(matrix, cmap="Blues")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > threshold else "black")
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=90 if k > 12 else 0)
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "confusion matrix")
    return _save(fig, path)


def first_conv_weight(model):
    """The weight (O, I, kH, kW) of the model's first 4-D parameter (its first convolution) as
    an array, or None when it has none (e.g. the RNN classifier)."""
    for name, param in model.named_parameters():
        if name.endswith("weight") and len(param.shape) == 4:
            return np.asarray(param.detach())
    return None


def filters(weight: np.ndarray, path, title: str = "") -> str:
    """One tile per output channel of weight (O, I, kH, kW): the mean over input channels,
    each tile scaled to its own range."""
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 4:
        raise ValueError(f"filters: weight must be (O, I, kH, kW), got shape {weight.shape}")
    plt = pyplot()
    tiles = weight.mean(axis=1)
    n = tiles.shape[0]
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.4), squeeze=False)
    for index, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if index < n:
            ax.imshow(tiles[index], cmap="gray", interpolation="nearest")
    fig.suptitle(title or f"first-layer filters ({weight.shape[0]} x {weight.shape[1]} x "
                          f"{weight.shape[2]} x {weight.shape[3]})")
    return _save(fig, path)


def _image(array: np.ndarray) -> tuple:
    """(C, H, W) in [0, 1] -> an imshow-able array and colormap."""
    array = np.clip(array, 0, 1)
    if array.shape[0] == 1:
        return array[0], "gray"
    return np.transpose(array[:3], (1, 2, 0)), None


def reconstructions(clean: np.ndarray, noisy: np.ndarray | None, output: np.ndarray, path,
                    title: str = "") -> str:
    """A grid with one column per sample: the input (N, C, H, W), the noisy input (if not
    None) and the model's reconstruction, all in [0, 1]."""
    rows = [("input", clean)] + ([("noisy input", noisy)] if noisy is not None else [])
    rows.append(("reconstruction", output))
    n = clean.shape[0]
    for label, array in rows:
        if array.shape != clean.shape:
            raise ValueError(f"reconstructions: {label} has shape {array.shape}, expected "
                             f"{clean.shape}")
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), n, figsize=(1.0 * n + 1.2, 1.1 * len(rows)),
                             squeeze=False)
    for r, (label, array) in enumerate(rows):
        for c in range(n):
            image, cmap = _image(array[c])
            axes[r][c].imshow(image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        axes[r][0].set_ylabel(label, fontsize=8)
    fig.suptitle(title or "autoencoder: input, noisy input, reconstruction")
    return _save(fig, path)
