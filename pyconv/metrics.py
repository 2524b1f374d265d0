"""Classification metrics: accuracy, confusion matrix, precision / recall / F1.

Inputs may be pyconv tensors, NumPy arrays or lists. Targets and predictions are integer class
indices; ``accuracy`` also takes class scores (logits or probabilities) with the classes on axis
1 (PyTorch's layout: (N, C) or (N, C, d1, ...)) and takes their argmax. Results are Python floats
or NumPy arrays: metrics are evaluation, not part of the autograd graph.
"""

from __future__ import annotations

import numbers

import numpy as np

from .tensor import Tensor

__all__ = ["accuracy", "confusion_matrix", "precision_recall_f1"]


def _array(value, op: str, name: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach()
    arr = np.asarray(value)
    if arr.dtype == object:
        raise TypeError(f"{op}: {name} must be a tensor, an array or a list of numbers")
    return arr


def _class_indices(value, op: str, name: str) -> np.ndarray:
    arr = _array(value, op, name)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: {name} must hold integer class indices, got dtype {arr.dtype}"
            + ("; for class scores use accuracy(logits, targets)" if arr.dtype.kind == "f" else "")
        )
    return arr


def accuracy(logits_or_preds, targets) -> float:
    """Fraction of correct predictions, in [0, 1].

    logits_or_preds: scores (N, C, *) whose argmax over axis 1 is the prediction, or integer
    predictions of the targets' shape (N, *). targets: integer classes (N, *).
    """
    targets = _class_indices(targets, "accuracy", "targets")
    scores = _array(logits_or_preds, "accuracy", "logits_or_preds")
    if scores.ndim == targets.ndim + 1:
        if scores.shape[:1] + scores.shape[2:] != targets.shape:
            raise ValueError(
                f"accuracy: logits_or_preds of shape {scores.shape} (classes on axis 1) do not "
                f"match targets of shape {targets.shape}"
            )
        preds = scores.argmax(axis=1)
    elif scores.shape == targets.shape:
        preds = _class_indices(scores, "accuracy", "logits_or_preds")
    else:
        raise ValueError(
            f"accuracy: logits_or_preds must have the targets' shape {targets.shape} "
            f"(predictions) or {targets.shape[:1] + ('C',) + targets.shape[1:]} (scores), "
            f"got {scores.shape}"
        )
    if targets.size == 0:
        raise ValueError("accuracy: targets is empty; accuracy of no samples is undefined")
    return float(np.count_nonzero(preds == targets)) / targets.size


def _check_num_classes(num_classes, op: str) -> int:
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool):
        raise TypeError(f"{op}: num_classes must be an int, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"{op}: num_classes must be >= 1, got {num_classes}")
    return int(num_classes)


def _check_range(values: np.ndarray, num_classes: int, op: str, name: str) -> None:
    bad = (values < 0) | (values >= num_classes)
    if bad.any():
        raise ValueError(
            f"{op}: {name} holds {values[bad].ravel()[0]}, outside [0, num_classes={num_classes})"
        )


def confusion_matrix(preds, targets, num_classes: int) -> np.ndarray:
    """``cm[t, p]`` = number of samples of true class t predicted as p (scikit-learn's layout:
    rows are targets, columns predictions).

    preds, targets: integer classes of one shape, each in [0, num_classes).
    Returns int64 (num_classes, num_classes).
    """
    op = "confusion_matrix"
    num_classes = _check_num_classes(num_classes, op)
    preds = _class_indices(preds, op, "preds")
    targets = _class_indices(targets, op, "targets")
    if preds.shape != targets.shape:
        raise ValueError(f"{op}: preds has shape {preds.shape} but targets has {targets.shape}")
    _check_range(preds, num_classes, op, "preds")
    _check_range(targets, num_classes, op, "targets")
    flat = targets.ravel().astype(np.int64) * num_classes + preds.ravel().astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def precision_recall_f1(preds, targets, num_classes: int, average: str | None = "macro"):
    """Precision, recall and F1 of each class, or averaged.

    For class c with tp true positives, fp false positives and fn false negatives:
    precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2 tp / (2 tp + fp + fn); a ratio
    with a zero denominator counts as 0 (scikit-learn's ``zero_division=0``).

    average: None -> three float64 arrays (num_classes,); 'macro' -> unweighted means over all
    num_classes classes (classes absent from both inputs count as 0); 'weighted' -> means
    weighted by each class's number of targets; 'micro' -> ratios of the summed counts (equal to
    accuracy when every sample has exactly one class). Returns ``(precision, recall, f1)``.
    """
    op = "precision_recall_f1"
    if average not in (None, "macro", "micro", "weighted"):
        raise ValueError(
            f"{op}: average must be None, 'macro', 'micro' or 'weighted', got {average!r}"
        )
    cm = confusion_matrix(preds, targets, num_classes)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    if average == "micro":
        tp, predicted, actual = tp.sum(), predicted.sum(), actual.sum()
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * tp, predicted + actual)
    if average is None:
        return precision, recall, f1
    if average == "micro":
        return float(precision), float(recall), float(f1)
    weights = actual if average == "weighted" else np.ones(num_classes)
    if weights.sum() == 0:
        return 0.0, 0.0, 0.0
    return tuple(float(np.average(v, weights=weights)) for v in (precision, recall, f1))
