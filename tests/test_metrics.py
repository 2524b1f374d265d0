"""pyconv.metrics against hand-checked cases and scikit-learn (skipped when it is missing)."""

import numpy as np
import pytest

import pyconv
from pyconv.metrics import (accuracy, classification_report, cohen_kappa, confusion_matrix,
                            precision_recall_f1, roc_auc)


def _sklearn_metrics():
    return pytest.importorskip("sklearn.metrics")


def _random_labels(seed, n, num_classes, present=None):
    """preds and targets (n,) int64; ``present`` limits the classes that occur."""
    rng = np.random.default_rng(seed)
    high = num_classes if present is None else present
    targets = rng.integers(0, high, n)
    preds = np.where(rng.random(n) < 0.6, targets, rng.integers(0, high, n))
    return preds.astype(np.int64), targets.astype(np.int64)


# ----- accuracy ----------------------------------------------------------------------------


def test_accuracy_hand_checked():
    logits = [[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]
    assert accuracy(pyconv.tensor(logits), pyconv.tensor([1, 1, 1, 0])) == 0.75
    assert accuracy(np.array([2, 0, 1]), np.array([2, 1, 1])) == pytest.approx(2 / 3)
    assert accuracy([3], [3]) == 1.0
    assert accuracy([[0.0, 1.0]], [0]) == 0.0


def test_accuracy_on_tensors_that_require_grad_and_spatial_scores():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((4, 5, 3, 2))  # (N, C, H, W): classes on axis 1
    targets = rng.integers(0, 5, (4, 3, 2))
    expected = np.mean(scores.argmax(axis=1) == targets)
    t = pyconv.tensor(scores, requires_grad=True)
    assert accuracy(t, pyconv.tensor(targets)) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(3))
def test_accuracy_matches_sklearn(seed):
    metrics = _sklearn_metrics()
    preds, targets = _random_labels(seed, 200, 7)
    assert accuracy(preds, targets) == pytest.approx(metrics.accuracy_score(targets, preds))


def test_accuracy_errors():
    with pytest.raises(TypeError, match="logits_or_preds must hold integer class indices, got dtype float64"):
        accuracy(np.array([0.0, 1.0]), np.array([0, 1]))
    with pytest.raises(TypeError, match="targets must hold integer class indices"):
        accuracy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"must have the targets' shape \(3,\) \(predictions\) or \(3, 'C'\) \(scores\), got \(4,\)"):
        accuracy(np.zeros(4, np.int64), np.array([0, 1, 0]))
    with pytest.raises(ValueError, match=r"logits_or_preds of shape \(4, 2\) \(classes on axis 1\) do not match targets of shape \(3,\)"):
        accuracy(np.zeros((4, 2)), np.array([0, 1, 0]))
    with pytest.raises(ValueError, match=r"logits_or_preds of shape \(2, 3, 4\).*targets of shape \(2, 5\)"):
        accuracy(np.zeros((2, 3, 4)), np.zeros((2, 5), np.int64))
    with pytest.raises(ValueError, match="targets is empty"):
        accuracy(np.zeros(0, np.int64), np.zeros(0, np.int64))


# ----- confusion matrix --------------------------------------------------------------------


def test_confusion_matrix_hand_checked():
    targets = [0, 0, 1, 2, 2, 2]
    preds = [0, 1, 1, 2, 0, 2]
    cm = confusion_matrix(pyconv.tensor(preds), pyconv.tensor(targets), 4)
    expected = np.zeros((4, 4), np.int64)
    for t, p in zip(targets, preds):
        expected[t, p] += 1
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)
    np.testing.assert_array_equal(cm[3], 0)  # class 3 never occurs


@pytest.mark.parametrize("seed,n,num_classes", [(0, 50, 3), (1, 300, 10), (2, 1, 2), (3, 9, 12)])
def test_confusion_matrix_matches_sklearn(seed, n, num_classes):
    metrics = _sklearn_metrics()
    preds, targets = _random_labels(seed, n, num_classes)
    expected = metrics.confusion_matrix(targets, preds, labels=list(range(num_classes)))
    np.testing.assert_array_equal(confusion_matrix(preds, targets, num_classes), expected)


def test_confusion_matrix_of_no_samples_is_zero():
    cm = confusion_matrix(np.zeros(0, np.int64), np.zeros(0, np.int64), 3)
    assert cm.shape == (3, 3) and not cm.any()


def test_confusion_matrix_accepts_any_matching_shape_and_unsigned_ints():
    preds = np.array([[0, 1], [1, 1]], dtype=np.uint8)
    targets = np.array([[0, 1], [0, 1]], dtype=np.int32)
    np.testing.assert_array_equal(confusion_matrix(preds, targets, 2), [[1, 1], [0, 2]])


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match=r"preds holds 3, outside \[0, num_classes=3\)"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match=r"targets holds -1, outside \[0, num_classes=3\)"):
        confusion_matrix([0, 1], [0, -1], 3)
    with pytest.raises(ValueError, match=r"preds has shape \(2,\) but targets has \(3,\)"):
        confusion_matrix([0, 1], [0, 1, 1], 3)
    with pytest.raises(ValueError, match="num_classes must be >= 1, got 0"):
        confusion_matrix([0], [0], 0)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        confusion_matrix([0], [0], 2.0)
    with pytest.raises(TypeError, match="preds must hold integer class indices"):
        confusion_matrix([0.5], [0], 2)


# ----- precision, recall, F1 ---------------------------------------------------------------


def test_precision_recall_f1_hand_checked():
    # class 0: tp 1, fp 1, fn 1; class 1: tp 2, fp 1, fn 0; class 2: tp 0, fp 0, fn 1
    targets = [0, 0, 1, 1, 2]
    preds = [0, 1, 1, 1, 0]
    p, r, f = precision_recall_f1(preds, targets, 3, average=None)
    np.testing.assert_allclose(p, [1 / 2, 2 / 3, 0.0])
    np.testing.assert_allclose(r, [1 / 2, 1.0, 0.0])
    np.testing.assert_allclose(f, [1 / 2, 0.8, 0.0])
    macro = precision_recall_f1(preds, targets, 3)
    np.testing.assert_allclose(macro, [(1 / 2 + 2 / 3) / 3, 1.5 / 3, 1.3 / 3])
    micro = precision_recall_f1(preds, targets, 3, average="micro")
    np.testing.assert_allclose(micro, [3 / 5] * 3)


@pytest.mark.parametrize("average", [None, "macro", "micro", "weighted"])
@pytest.mark.parametrize("seed,n,num_classes,present", [
    (0, 100, 4, None), (1, 500, 10, None), (2, 60, 6, 4), (3, 7, 5, None), (4, 30, 3, 1),
])
def test_precision_recall_f1_match_sklearn(average, seed, n, num_classes, present):
    metrics = _sklearn_metrics()
    preds, targets = _random_labels(seed, n, num_classes, present)
    labels = list(range(num_classes))
    expected = metrics.precision_recall_fscore_support(
        targets, preds, labels=labels, average=average, zero_division=0)[:3]
    ours = precision_recall_f1(preds, targets, num_classes, average=average)
    for name, a, e in zip(("precision", "recall", "f1"), ours, expected):
        np.testing.assert_allclose(a, e, atol=1e-12, err_msg=f"{name} ({average})")


def test_micro_average_equals_accuracy():
    preds, targets = _random_labels(9, 250, 10)
    micro = precision_recall_f1(preds, targets, 10, average="micro")
    np.testing.assert_allclose(micro, [accuracy(preds, targets)] * 3)


def test_precision_recall_f1_errors():
    with pytest.raises(ValueError, match="average must be None, 'macro', 'micro' or 'weighted', got 'samples'"):
        precision_recall_f1([0], [0], 2, average="samples")
    with pytest.raises(ValueError, match="preds holds 5"):
        precision_recall_f1([5], [0], 2)


# ----- Cohen's kappa -----------------------------------------------------------------------


def test_cohen_kappa_hand_checked():
    # cm = [[2, 1], [0, 1]]: observed agreement 3/4; expected (3*2 + 1*2) / 16 = 1/2
    assert cohen_kappa([0, 1, 0, 1], [0, 0, 0, 1], 2) == pytest.approx((0.75 - 0.5) / 0.5)
    assert cohen_kappa([2, 0, 1], [2, 0, 1], 3) == 1.0
    # a single class in both inputs: chance explains everything, kappa is 0/0
    assert np.isnan(cohen_kappa([1, 1], [1, 1], 3))


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed,n,num_classes,present", [
    (0, 100, 4, None), (1, 400, 10, None), (2, 60, 6, 3), (3, 8, 5, None), (4, 2, 3, None),
])
def test_cohen_kappa_matches_sklearn(weights, seed, n, num_classes, present):
    metrics = _sklearn_metrics()
    preds, targets = _random_labels(seed, n, num_classes, present)
    expected = metrics.cohen_kappa_score(targets, preds, labels=list(range(num_classes)),
                                         weights=weights)
    assert cohen_kappa(preds, targets, num_classes, weights=weights) == pytest.approx(
        expected, abs=1e-12, nan_ok=True)


def test_cohen_kappa_errors():
    with pytest.raises(ValueError,
                       match="weights must be None, 'linear' or 'quadratic', got 'square'"):
        cohen_kappa([0], [0], 2, weights="square")
    with pytest.raises(ValueError, match="targets is empty"):
        cohen_kappa(np.zeros(0, np.int64), np.zeros(0, np.int64), 2)
    with pytest.raises(ValueError, match=r"targets holds 2, outside \[0, num_classes=2\)"):
        cohen_kappa([0], [2], 2)


# ----- ROC AUC -----------------------------------------------------------------------------


def test_roc_auc_hand_checked():
    targets = [0, 0, 1, 1]
    assert roc_auc([0.1, 0.2, 0.8, 0.9], targets) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], targets) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], targets) == 0.5
    # pairs (pos, neg): 0.8 > 0.1, 0.8 > 0.8 ties (1/2), 0.3 > 0.1, 0.3 < 0.8: (1 + 0.5 + 1) / 4
    assert roc_auc([0.1, 0.8, 0.8, 0.3], targets) == pytest.approx(2.5 / 4)
    # integer scores and tensors work too
    assert roc_auc(pyconv.tensor([0, 1, 1, 0]), pyconv.tensor([0, 1, 1, 0])) == 1.0


def test_roc_auc_of_two_column_scores_ranks_column_1_against_column_0():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((40, 2))
    targets = rng.integers(0, 2, 40)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = roc_auc(probs[:, 1], targets)
    assert roc_auc(logits, targets) == pytest.approx(expected)
    assert roc_auc(probs, targets) == pytest.approx(expected)


@pytest.mark.parametrize("seed,n,decimals", [(0, 50, None), (1, 300, 1), (2, 13, 0), (3, 1000, 2)])
def test_roc_auc_matches_sklearn_including_ties(seed, n, decimals):
    metrics = _sklearn_metrics()
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 2, n)
    targets[:2] = [0, 1]
    scores = rng.random(n) + 0.3 * targets
    if decimals is not None:  # rounding makes many ties, within and across the classes
        scores = np.round(scores, decimals)
    assert roc_auc(scores, targets) == pytest.approx(metrics.roc_auc_score(targets, scores),
                                                     abs=1e-12)


def test_roc_auc_errors():
    with pytest.raises(ValueError, match="targets holds only class 1; ROC AUC needs samples"):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match=r"targets holds 2, outside \[0, num_classes=2\)"):
        roc_auc([0.1, 0.2, 0.3], [0, 1, 2])
    with pytest.raises(ValueError, match=r"scores must have shape \(N,\) or \(N, 2\) and targets "
                                         r"\(N,\), got scores \(3, 3\) and targets \(3,\)"):
        roc_auc(np.zeros((3, 3)), [0, 1, 0])
    with pytest.raises(ValueError, match="scores holds NaN"):
        roc_auc([0.1, np.nan], [0, 1])
    with pytest.raises(TypeError, match="targets must hold integer class indices"):
        roc_auc([0.1, 0.2], [0.0, 1.0])


# ----- classification report ---------------------------------------------------------------


@pytest.mark.parametrize("seed,n,num_classes,present,digits", [
    (0, 100, 4, None, 2), (1, 500, 10, None, 4), (2, 60, 6, 4, 3), (3, 7, 3, None, 2),
])
def test_classification_report_matches_sklearn(seed, n, num_classes, present, digits):
    metrics = _sklearn_metrics()
    preds, targets = _random_labels(seed, n, num_classes, present)
    labels = list(range(num_classes))
    names = [f"class {c}" for c in labels] if seed % 2 else None
    kwargs = dict(labels=labels, target_names=names, zero_division=0)
    expected = metrics.classification_report(targets, preds, digits=digits, **kwargs)
    assert classification_report(preds, targets, num_classes, names, digits=digits) == expected
    ours = classification_report(preds, targets, num_classes, names, output_dict=True)
    theirs = metrics.classification_report(targets, preds, output_dict=True, **kwargs)
    assert list(ours) == list(theirs)
    for key, row in theirs.items():
        if key == "accuracy":
            assert ours[key] == pytest.approx(row)
        else:
            assert ours[key] == pytest.approx(row), key


def test_classification_report_errors():
    with pytest.raises(ValueError, match="class_names must have num_classes=3 entries, got 2"):
        classification_report([0], [0], 3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="targets is empty"):
        classification_report(np.zeros(0, np.int64), np.zeros(0, np.int64), 2)
