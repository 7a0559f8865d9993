"""Multi-label metrics against scikit-learn on fixed predictions; thresholds tuned on val, frozen for test."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from simlab.config import ThresholdsConfig
from simlab.evaluation.multilabel import (
    GRID,
    average_precision,
    item_scores,
    multilabel_metrics,
    per_label_table,
    tune_thresholds,
)
from simlab.tasks.multilabel.run import frozen_threshold_eval


@pytest.fixture
def fixed():
    rng = np.random.default_rng(7)
    y = rng.random((60, 5)) < np.array([0.5, 0.3, 0.2, 0.1, 0.6])
    y[0, :] = True  # every label has a positive
    scores = np.clip(0.35 * y + rng.random((60, 5)) * 0.7, 0, 1).round(2)  # rounded: many tied scores
    return y, scores


def test_metrics_match_sklearn(fixed):
    y, scores = fixed
    thr = np.array([0.5, 0.4, 0.6, 0.3, 0.5])
    pred = scores >= thr
    got = multilabel_metrics(y, scores, thr)
    kw = {"zero_division": 0}
    assert got["f1_micro"] == pytest.approx(skm.f1_score(y, pred, average="micro", **kw))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro", **kw))
    assert got["precision_micro"] == pytest.approx(skm.precision_score(y, pred, average="micro", **kw))
    assert got["recall_micro"] == pytest.approx(skm.recall_score(y, pred, average="micro", **kw))
    assert got["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro", **kw))
    assert got["recall_macro"] == pytest.approx(skm.recall_score(y, pred, average="macro", **kw))
    assert got["ap"] == pytest.approx(skm.average_precision_score(y, scores, average="macro"))
    assert got["hamming"] == pytest.approx(skm.hamming_loss(y, pred))
    assert got["exact_match"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["sample_f1"] == pytest.approx(skm.f1_score(y, pred, average="samples", zero_division=1.0))


def test_per_label_ap_and_table_match_sklearn(fixed):
    y, scores = fixed
    expected = skm.average_precision_score(y, scores, average=None)
    np.testing.assert_allclose(average_precision(y, scores), expected)
    table = per_label_table(y, scores, 0.5, list("abcde"))
    f1 = skm.f1_score(y, scores >= 0.5, average=None, zero_division=0)
    assert [table[k]["f1"] for k in "abcde"] == pytest.approx(list(f1))
    assert [table[k]["support"] for k in "abcde"] == y.sum(0).tolist()


def test_item_scores_and_empty_sets():
    y = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=bool)
    pred = np.array([[1, 1, 0], [0, 0, 0], [0, 1, 0]], dtype=bool)
    s = item_scores(y, pred)
    assert s["sample_f1"].tolist() == pytest.approx([0.5, 1.0, 1.0])  # both empty counts as right
    assert s["exact_match"].tolist() == [0.0, 1.0, 1.0]
    assert s["hamming"].tolist() == pytest.approx([2 / 3, 0.0, 0.0])
    assert s["label_accuracy"].tolist() == pytest.approx([1 / 3, 1.0, 1.0])
    assert (s["tp"].tolist(), s["fp"].tolist(), s["fn"].tolist()) == ([1, 0, 1], [1, 0, 0], [1, 0, 0])


def test_label_without_positive_is_left_out_of_ap():
    y = np.array([[1, 0], [0, 0], [1, 0]], dtype=bool)
    scores = np.array([[0.9, 0.1], [0.2, 0.3], [0.6, 0.2]])
    assert np.isnan(average_precision(y, scores)[1])
    assert multilabel_metrics(y, scores, 0.5)["ap"] == pytest.approx(1.0)


def test_tuned_thresholds_are_the_best_on_the_grid(fixed):
    y, scores = fixed
    glob = tune_thresholds(y, scores, "global")
    assert len(set(glob.tolist())) == 1
    best = max(skm.f1_score(y, scores >= t, average="micro", zero_division=0) for t in GRID)
    assert skm.f1_score(y, scores >= glob[0], average="micro", zero_division=0) == pytest.approx(best)
    per = tune_thresholds(y, scores, "per_label")
    for j in range(y.shape[1]):
        best_j = max(skm.f1_score(y[:, j], scores[:, j] >= t, zero_division=0) for t in GRID)
        assert skm.f1_score(y[:, j], scores[:, j] >= per[j], zero_division=0) == pytest.approx(best_j)


def test_a_label_with_few_positives_takes_the_global_threshold(fixed):
    y, scores = fixed
    counts = y.sum(0)
    cut = int(np.median(counts)) + 1  # some labels below, some at or above
    mixed = tune_thresholds(y, scores, "per_label", min_positives=cut)
    glob, own = tune_thresholds(y, scores, "global"), tune_thresholds(y, scores, "per_label")
    assert (counts < cut).any() and (counts >= cut).any()
    for j in range(y.shape[1]):
        assert mixed[j] == (own[j] if counts[j] >= cut else glob[j])


@pytest.mark.parametrize("mode", ["global", "per_label"])
def test_thresholds_tuned_on_val_are_used_for_test(mode):
    # val wants a low threshold, test would want a high one: the test metrics must be val's.
    y_val = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    s_val = np.array([[0.30, 0.32], [0.31, 0.10], [0.05, 0.33], [0.10, 0.12]])
    y_test = np.array([[1, 1], [0, 0], [0, 0], [1, 1]], dtype=np.float32)
    s_test = np.array([[0.90, 0.85], [0.40, 0.45], [0.50, 0.42], [0.80, 0.88]])
    cfg = ThresholdsConfig(mode=mode, min_positives=1)
    thr, val_m, test_m = frozen_threshold_eval(y_val, s_val, y_test, s_test, cfg)
    on_val = tune_thresholds(y_val >= 0.5, s_val, mode)
    np.testing.assert_array_equal(thr, on_val)
    assert test_m == multilabel_metrics(y_test >= 0.5, s_test, on_val)
    assert val_m == multilabel_metrics(y_val >= 0.5, s_val, on_val)
    on_test = tune_thresholds(y_test >= 0.5, s_test, mode)
    assert not np.array_equal(on_test, on_val)
    assert test_m["f1_micro"] < multilabel_metrics(y_test >= 0.5, s_test, on_test)["f1_micro"]


def test_fixed_threshold_mode():
    y = np.array([[1, 0]], dtype=np.float32)
    s = np.array([[0.7, 0.2]])
    thr, _, test_m = frozen_threshold_eval(y, s, y, s, ThresholdsConfig(mode="fixed", value=0.8))
    assert thr.tolist() == [0.8, 0.8]
    assert test_m["recall_micro"] == 0.0
