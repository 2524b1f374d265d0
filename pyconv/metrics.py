"""Classification metrics: accuracy, confusion matrix, precision / recall / F1, Cohen's kappa,
ROC AUC (two classes) and a printable per-class report.

Inputs may be pyconv tensors, NumPy arrays or lists. Targets and predictions are integer class
indices; ``accuracy`` also takes class scores (logits or probabilities) with the classes on axis
1 (PyTorch's layout: (N, C) or (N, C, d1, ...)) and takes their argmax. Results are Python floats
or NumPy arrays: metrics are evaluation, not part of the autograd graph.
"""

from __future__ import annotations

import numbers

import numpy as np

from .tensor import Tensor

__all__ = ["accuracy", "classification_report", "cohen_kappa", "confusion_matrix",
           "precision_recall_f1", "roc_auc"]


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


def cohen_kappa(preds, targets, num_classes: int, weights: str | None = None) -> float:
    """Cohen's kappa, agreement beyond chance: ``1 - sum(w * cm) / sum(w * expected)``.

    cm is :func:`confusion_matrix` (num_classes, num_classes), expected the outer product of its
    row and column sums over the number of samples (the confusion matrix of independent
    predictions with the same class frequencies). weights: None (w = 1 off the diagonal: plain
    kappa), 'linear' (|i - j|) or 'quadratic' ((i - j)**2), for ordered classes. 1 is perfect
    agreement, 0 chance level. When chance already explains everything (a single class in both
    inputs) kappa is 0/0 and the result is NaN, as scikit-learn's ``cohen_kappa_score``.
    """
    op = "cohen_kappa"
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"{op}: weights must be None, 'linear' or 'quadratic', got {weights!r}")
    cm = confusion_matrix(preds, targets, num_classes).astype(np.float64)
    total = cm.sum()
    if total == 0:
        raise ValueError(f"{op}: targets is empty; kappa of no samples is undefined")
    expected = np.outer(cm.sum(axis=1), cm.sum(axis=0)) / total
    distance = np.abs(np.subtract.outer(np.arange(num_classes), np.arange(num_classes)))
    w = {None: (distance > 0), "linear": distance, "quadratic": distance ** 2}[weights]
    chance = float(np.sum(w * expected))
    if chance == 0:
        return float("nan")
    return 1.0 - float(np.sum(w * cm)) / chance


def roc_auc(scores, targets) -> float:
    """Area under the ROC curve of a two-class problem, in [0, 1].

    targets: (N,) classes 0 and 1 (both must occur). scores: (N,) float, higher meaning class 1
    (a probability, a logit or any monotone score), or (N, 2) per-class scores (probabilities or
    logits), ranked by column 1 minus column 0. The AUC is the probability that a random
    positive scores above a random negative, ties counting one half (Mann-Whitney U with average
    ranks), which equals scikit-learn's trapezoidal ``roc_auc_score`` ties included.
    """
    op = "roc_auc"
    targets = _class_indices(targets, op, "targets")
    scores = _array(scores, op, "scores")
    if scores.dtype.kind not in "fiub":
        raise TypeError(f"{op}: scores must be numbers, got dtype {scores.dtype}")
    given = scores.shape
    scores = scores.astype(np.float64)
    if scores.ndim == 2 and scores.shape[1] == 2:
        scores = scores[:, 1] - scores[:, 0]
    if targets.ndim != 1 or scores.shape != targets.shape:
        raise ValueError(f"{op}: scores must have shape (N,) or (N, 2) and targets (N,), got "
                         f"scores {given} and targets {targets.shape}")
    _check_range(targets, 2, op, "targets")
    if np.isnan(scores).any():
        raise ValueError(f"{op}: scores holds NaN")
    positives = np.count_nonzero(targets)
    negatives = targets.size - positives
    if positives == 0 or negatives == 0:
        only = f"only class {int(targets[0])}" if targets.size else "no samples"
        raise ValueError(f"{op}: targets holds {only}; ROC AUC needs samples of both classes 0 "
                         f"and 1")
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # rank of a tie group: the mean of the 1-based ranks it spans
    group_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = group_rank[group.ravel()]
    u = ranks[targets == 1].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def classification_report(preds, targets, num_classes: int, class_names=None, digits: int = 2,
                          output_dict: bool = False):
    """Per-class precision, recall, F1 and support (number of targets), then accuracy and the
    macro and weighted averages, as a table (str) laid out like scikit-learn's
    ``classification_report``; with output_dict=True the same numbers as a dict
    ``{name: {"precision", "recall", "f1-score", "support"}, ..., "accuracy": float,
    "macro avg": {...}, "weighted avg": {...}}``.

    class_names: num_classes names for the rows (default "0", "1", ...). digits: decimals shown.
    Ratios with a zero denominator count as 0 (see :func:`precision_recall_f1`).
    """
    op = "classification_report"
    num_classes = _check_num_classes(num_classes, op)
    names = [str(c) for c in range(num_classes)] if class_names is None else list(class_names)
    if len(names) != num_classes:
        raise ValueError(f"{op}: class_names must have num_classes={num_classes} entries, got "
                         f"{len(names)}")
    precision, recall, f1 = precision_recall_f1(preds, targets, num_classes, average=None)
    support = confusion_matrix(preds, targets, num_classes).sum(axis=1)
    total = int(support.sum())
    if total == 0:
        raise ValueError(f"{op}: targets is empty; a report of no samples is undefined")
    rows = {name: (float(p), float(r), float(f), int(n))
            for name, p, r, f, n in zip(names, precision, recall, f1, support)}
    averages = {
        "macro avg": precision_recall_f1(preds, targets, num_classes, "macro") + (total,),
        "weighted avg": precision_recall_f1(preds, targets, num_classes, "weighted") + (total,),
    }
    acc = accuracy(preds, targets)
    if output_dict:
        keys = ("precision", "recall", "f1-score", "support")
        report = {name: dict(zip(keys, row)) for name, row in rows.items()}
        report["accuracy"] = acc
        report.update({name: dict(zip(keys, row)) for name, row in averages.items()})
        return report
    width = max([len(n) for n in names] + [len("weighted avg"), digits])
    columns = ("precision", "recall", "f1-score", "support")
    lines = [" " * width + " " + "".join(f"{c:>10}" for c in columns), ""]

    def line(name, values, count):
        cells = "".join(" " * 10 if v is None else f"{v:>10.{digits}f}" for v in values)
        return f"{name:>{width}} {cells}{count:>10}"

    lines += [line(name, row[:3], row[3]) for name, row in rows.items()] + [""]
    lines.append(line("accuracy", (None, None, acc), total))
    lines += [line(name, row[:3], row[3]) for name, row in averages.items()]
    return "\n".join(lines) + "\n"
