"""Pair metrics: F1-optimal threshold vs brute force, metrics vs scikit-learn, the epoch line."""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, precision_score, recall_score

import simlab.evaluation.pairs as pairs_module
from simlab.errors import DataError
from simlab.evaluation.pairs import best_threshold, epoch_line, pair_metrics


def brute_force(scores, labels):
    """Try every distinct score as threshold (positive iff score >= t); exact F1; largest t on ties."""
    best = None
    for t in sorted(set(scores.tolist()), reverse=True):
        pred = scores >= t
        tp = int((pred & (labels == 1)).sum())
        fp = int((pred & (labels == 0)).sum())
        fn = int((~pred & (labels == 1)).sum())
        f1 = Fraction(2 * tp, 2 * tp + fp + fn)
        if best is None or f1 > best[1]:
            best = (t, f1)
    return best


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    if seed % 3 == 0:  # many ties
        scores = rng.integers(0, 6, n) / 5
    elif seed % 3 == 1:
        scores = np.round(rng.normal(size=n), 2)
    else:
        scores = rng.random(n)
    labels = (rng.random(n) < rng.uniform(0.05, 0.8)).astype(int)
    labels[int(rng.integers(n))] = 1  # at least one positive
    return scores, labels


def test_doctests():
    assert doctest.testmod(pairs_module).failed == 0


@pytest.mark.parametrize("seed", range(40))
def test_best_threshold_equals_brute_force(seed):
    scores, labels = random_case(seed)
    threshold, f1 = best_threshold(scores, labels)
    t_ref, f1_ref = brute_force(scores, labels)
    assert threshold == t_ref
    assert f1 == pytest.approx(float(f1_ref), abs=1e-12)
    # the F1 reported is the F1 of that threshold, and agrees with scikit-learn
    assert f1 == pytest.approx(f1_score(labels, scores >= threshold), abs=1e-12)
    assert pair_metrics(scores, labels, threshold)["f1"] == pytest.approx(f1, abs=1e-12)


def test_best_threshold_ties_and_edges():
    # all scores equal: the only cut point predicts everything positive
    assert best_threshold([0.5, 0.5, 0.5], [1, 0, 0]) == (0.5, 0.5)
    # perfect separation: the lowest positive score
    assert best_threshold([0.1, 0.9, 0.8, 0.2], [0, 1, 1, 0]) == (0.8, 1.0)
    # equal F1 at 0.9 (1 TP, 0 FP: 2/3) and at 0.5 (2 TP, 2 FP: 2/3): the larger threshold wins
    t, f1 = best_threshold([0.9, 0.7, 0.6, 0.5], [1, 0, 0, 1])
    assert (t, f1) == (0.9, pytest.approx(2 / 3))
    assert best_threshold([3], [1]) == (3.0, 1.0)


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        ([], [], "no pairs"),
        ([0.1, 0.2], [1], "2 scores but 1 labels"),
        ([0.1, float("nan")], [1, 0], "NaN or infinite"),
        ([0.1, 0.2], [1, 2], "label 2 is not 0 or 1"),
        ([0.1, 0.2], [0, 0], "no positive pair"),
    ],
)
def test_best_threshold_rejects_bad_input(scores, labels, match):
    with pytest.raises(DataError, match=match):
        best_threshold(scores, labels)


SCORES = np.array([0.95, 0.9, 0.8, 0.75, 0.6, 0.55, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
LABELS = np.array([1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0])


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.55, 0.77, 0.96])
def test_pair_metrics_against_sklearn(threshold):
    m = pair_metrics(SCORES, LABELS, threshold)
    pred = (SCORES >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(LABELS, pred, labels=[0, 1]).ravel()
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)
    assert m["precision"] == pytest.approx(precision_score(LABELS, pred, zero_division=0))
    assert m["recall"] == m["pos_acc"] == pytest.approx(recall_score(LABELS, pred))
    assert m["f1"] == pytest.approx(f1_score(LABELS, pred, zero_division=0))
    assert m["neg_acc"] == pytest.approx(tn / (tn + fp))
    assert m["avg_acc"] == pytest.approx((tp / (tp + fn) + tn / (tn + fp)) / 2)
    assert m["accuracy"] == pytest.approx((tp + tn) / len(LABELS))
    assert m["ap"] == pytest.approx(average_precision_score(LABELS, SCORES))
    assert m["threshold"] == threshold


def test_pair_metrics_hand_checked():
    m = pair_metrics(SCORES, LABELS, 0.55)  # predicted: first 6 -> TP 4, FP 2; FN 1, TN 5
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (4, 2, 1, 5)
    assert m["pos_acc"] == 0.8 and m["neg_acc"] == pytest.approx(5 / 7)
    assert m["f1"] == pytest.approx(8 / 11)


def test_pair_metrics_without_positives():
    m = pair_metrics([0.2, 0.8], [0, 0], 0.5)
    assert m["pos_acc"] == m["precision"] == m["f1"] == 0.0
    assert m["neg_acc"] == 0.5 and math.isnan(m["ap"])


def test_frozen_test_threshold():
    """Test is scored with val's threshold, not with its own optimum."""
    rng = np.random.default_rng(7)
    val_labels = rng.integers(0, 2, 200)
    val_scores = val_labels * 0.3 + rng.random(200)
    test_labels = rng.integers(0, 2, 200)
    test_scores = test_labels * 0.3 + rng.random(200) + 0.2  # shifted: the test optimum differs
    thr, _ = best_threshold(val_scores, val_labels)
    test = pair_metrics(test_scores, test_labels, thr)
    assert test["threshold"] == thr
    assert test["f1"] == pytest.approx(f1_score(test_labels, test_scores >= thr))
    test_thr, test_best = best_threshold(test_scores, test_labels)
    assert test_thr != thr and test_best >= test["f1"]


def test_epoch_line_matches_the_seed_format():
    m = {"pos_acc": 0.842, "neg_acc": 0.677, "avg_acc": (0.842 + 0.677) / 2, "f1": 0.787}
    line = epoch_line("val", 5, 0.5040, m, 0.369)
    assert line == "[val] Epoch 5 - loss 0.5040, P Acc 0.842, N Acc 0.677, Avg Acc 0.760, F1 0.787, thr* 0.369"
    test = epoch_line("test", 5, None, m, 0.369, optimised=False)
    assert test == "[test] Epoch 5 - loss n/a, P Acc 0.842, N Acc 0.677, Avg Acc 0.760, F1 0.787, thr 0.369"


def test_epoch_line_from_pair_metrics():
    thr, _ = best_threshold(SCORES, LABELS)
    line = epoch_line("val", 1, 0.25, pair_metrics(SCORES, LABELS, thr), thr)
    assert line.startswith("[val] Epoch 1 - loss 0.2500, P Acc ")
    assert line.endswith(f", thr* {thr:.3f}")


def test_per_item_rows_reproduce_the_split_metrics():
    from simlab.evaluation.pairs import pair_metrics, per_item_rows
    from simlab.evaluation.significance import RATIO_METRICS

    rng = np.random.default_rng(5)
    labels = (rng.random(200) < 0.3).astype(int)
    scores = labels * 0.3 + rng.random(200)
    rows = per_item_rows("trained", range(200), labels, scores, 0.8)
    values: dict[str, list[float]] = {}
    for _, _, metric, value in rows:
        values.setdefault(metric, []).append(float(value))
    m = pair_metrics(scores, labels, 0.8)
    assert np.mean(values["pos_acc"]) == pytest.approx(m["pos_acc"]) and len(values["pos_acc"]) == labels.sum()
    assert np.mean(values["neg_acc"]) == pytest.approx(m["neg_acc"])
    f1 = RATIO_METRICS["f1"](*(np.sum(values[c]) for c in ("tp", "fp", "fn")))
    assert f1 == pytest.approx(m["f1"]) and np.mean(values["correct"]) == pytest.approx(m["accuracy"])
