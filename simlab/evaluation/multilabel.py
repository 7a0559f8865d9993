r"""Multi-label metrics: pure functions over (items, labels) arrays, vectorised over labels.

`y` is a boolean (n, L) truth matrix, `scores` an (n, L) float matrix (probabilities), `pred`
a boolean (n, L) prediction `scores >= thresholds` (one threshold, or one per label). With
$TP_l, FP_l, FN_l$ the counts of label $l$:

- micro: $P = \sum TP / \sum (TP + FP)$, $R = \sum TP / \sum (TP + FN)$, $F_1 = 2PR / (P + R)$;
- macro: the mean over labels of the per-label $P_l, R_l, F_{1,l}$ (0 when undefined, as
  scikit-learn's `zero_division=0`);
- AP: per label $\sum_k (R_k - R_{k-1}) P_k$ over the distinct score thresholds, in decreasing
  order (scikit-learn's `average_precision_score`), averaged over the labels with a positive;
- hamming loss: the share of wrong cells; exact match: the share of items with every label right;
- per item: sample $F_1 = 2|y \cap \hat y| / (|y| + |\hat y|)$ (1 when both are empty).

Thresholds are tuned on val (`tune_thresholds`) and applied, frozen, to test.
"""

from __future__ import annotations

import numpy as np

REPORTED = (
    "f1_micro",
    "f1_macro",
    "precision_micro",
    "recall_micro",
    "precision_macro",
    "recall_macro",
    "ap",
    "hamming",
    "exact_match",
    "sample_f1",
)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def counts(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TP, FP, FN) per label, each (L,)."""
    y, pred = np.asarray(y, dtype=bool), np.asarray(pred, dtype=bool)
    return (y & pred).sum(0), (~y & pred).sum(0), (y & ~pred).sum(0)


def per_label_prf(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per label (L,), 0 where undefined."""
    tp, fp, fn = counts(y, pred)
    return _div(tp, tp + fp), _div(tp, tp + fn), _div(2 * tp, 2 * tp + fp + fn)


def average_precision(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AP per label (L,), NaN for a label without a positive."""
    y, scores = np.asarray(y, dtype=bool), np.asarray(scores, dtype=np.float64)
    out = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        pos = y[:, j].sum()
        if pos == 0:
            continue
        order = np.argsort(-scores[:, j], kind="stable")
        s, t = scores[order, j], y[order, j]
        tp, fp = np.cumsum(t), np.cumsum(~t)
        last = np.r_[s[1:] != s[:-1], True]  # the last item of each run of tied scores
        tp, fp = tp[last], fp[last]
        precision, recall = tp / (tp + fp), tp / pos
        out[j] = np.sum(np.diff(np.r_[0.0, recall]) * precision)
    return out


def item_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item (n,) arrays: `sample_f1`, `exact_match` (0/1), `hamming` (share of wrong labels),
    `label_accuracy` (1 - hamming), and the item's `tp`, `fp`, `fn` over its labels (their sums
    give the micro metrics)."""
    y, pred = np.asarray(y, dtype=bool), np.asarray(pred, dtype=bool)
    inter = (y & pred).sum(1)
    size = y.sum(1) + pred.sum(1)
    f1 = np.where(size > 0, _div(2 * inter, size), 1.0)
    return {
        "sample_f1": f1,
        "exact_match": (y == pred).all(1).astype(np.float64),
        "hamming": (y != pred).mean(1),
        "label_accuracy": (y == pred).mean(1),
        "tp": inter.astype(np.float64),
        "fp": (~y & pred).sum(1).astype(np.float64),
        "fn": (y & ~pred).sum(1).astype(np.float64),
    }


def predict(scores: np.ndarray, thresholds: float | np.ndarray) -> np.ndarray:
    """(n, L) bool: `scores >= thresholds` (a scalar, or one threshold per label)."""
    return np.asarray(scores) >= np.asarray(thresholds, dtype=np.float64)


def multilabel_metrics(y: np.ndarray, scores: np.ndarray, thresholds: float | np.ndarray) -> dict[str, float]:
    """Every metric of `REPORTED` at the given threshold(s); see the module docstring."""
    y = np.asarray(y, dtype=bool)
    pred = predict(scores, thresholds)
    tp, fp, fn = counts(y, pred)
    p_l, r_l, f_l = per_label_prf(y, pred)
    ap = average_precision(y, scores)
    items = item_scores(y, pred)
    return {
        "f1_micro": float(_div(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum())),
        "f1_macro": float(f_l.mean()),
        "precision_micro": float(_div(tp.sum(), tp.sum() + fp.sum())),
        "recall_micro": float(_div(tp.sum(), tp.sum() + fn.sum())),
        "precision_macro": float(p_l.mean()),
        "recall_macro": float(r_l.mean()),
        "ap": float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0,
        "hamming": float((y != pred).mean()),
        "exact_match": float(items["exact_match"].mean()),
        "sample_f1": float(items["sample_f1"].mean()),
    }


def per_label_table(
    y: np.ndarray, scores: np.ndarray, thresholds: float | np.ndarray, vocab: list[str]
) -> dict[str, dict[str, float]]:
    """label -> precision, recall, f1, ap (None without a positive), support, threshold."""
    y = np.asarray(y, dtype=bool)
    p, r, f = per_label_prf(y, predict(scores, thresholds))
    ap = average_precision(y, scores)
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (len(vocab),))
    return {
        lab: {
            "precision": float(p[j]),
            "recall": float(r[j]),
            "f1": float(f[j]),
            "ap": None if np.isnan(ap[j]) else float(ap[j]),
            "support": int(y[:, j].sum()),
            "threshold": float(thr[j]),
        }
        for j, lab in enumerate(vocab)
    }


ITEM_METRICS = ("sample_f1", "exact_match", "label_accuracy", "tp", "fp", "fn")
"""The per-item metrics of `item_scores` a run writes to perquery.tsv (all higher-is-better or counts)."""

GRID = np.round(np.arange(0.02, 0.99, 0.01), 2)
"""Candidate thresholds: 0.02, 0.03, ..., 0.98."""


def tune_thresholds(
    y: np.ndarray, scores: np.ndarray, mode: str, by: str = "f1_micro", min_positives: int = 1
) -> np.ndarray:
    """Thresholds that maximise F1 on (y, scores), over `GRID`: (L,), all equal for `global`.

    `global`: one threshold maximising `by` (f1_micro or f1_macro); `per_label`: each label with at
    least `min_positives` positives in `y` gets its own F1-optimal threshold, the others the global one
    (a threshold tuned on one or two positives fits those, not the label). Ties go to the threshold
    closest to 0.5.
    """
    y = np.asarray(y, dtype=bool)
    n_labels = y.shape[1]
    pred = np.asarray(scores)[None, :, :] >= GRID[:, None, None]  # (G, n, L)
    tp = (pred & y[None]).sum(1)  # (G, L)
    fp = (pred & ~y[None]).sum(1)
    fn = (~pred & y[None]).sum(1)
    closeness = -np.abs(GRID - 0.5) * 1e-9  # breaks ties towards 0.5
    if by == "f1_macro":
        objective = _div(2 * tp, 2 * tp + fp + fn).mean(1)
    else:
        objective = _div(2 * tp.sum(1), 2 * tp.sum(1) + fp.sum(1) + fn.sum(1))
    thresholds = np.full(n_labels, GRID[np.argmax(objective + closeness)])
    if mode == "per_label":
        own = GRID[np.argmax(_div(2 * tp, 2 * tp + fp + fn) + closeness[:, None], axis=0)]  # (L,)
        thresholds = np.where(y.sum(0) >= min_positives, own, thresholds)
    return thresholds
