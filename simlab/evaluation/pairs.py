r"""Pair classification metrics: the F1-optimal threshold and the per-epoch line (workload A).

Pure functions over arrays: `scores` (higher = more similar; negate a distance first) and
`labels` (1 = match, 0 = non-match). A pair is predicted positive iff `score >= threshold`.

Per epoch, `best_threshold` is searched on val (`thr*`); the test split is scored once with
`pair_metrics(test_scores, test_labels, val_threshold)`, the val threshold frozen.

With $TP, FP, TN, FN$ the confusion counts, $P = TP + FN$ and $N = TN + FP$:

$$
\mathrm{pos\_acc} = \mathrm{recall} = \frac{TP}{P}, \quad
\mathrm{neg\_acc} = \frac{TN}{N}, \quad
\mathrm{avg\_acc} = \frac{\mathrm{pos\_acc} + \mathrm{neg\_acc}}{2}, \quad
F_1 = \frac{2\,TP}{2\,TP + FP + FN}
$$
"""

from __future__ import annotations

import math
from typing import Any

from simlab.errors import DataError


def _arrays(scores: Any, labels: Any) -> tuple[Any, Any]:
    import numpy as np

    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise DataError(f"{s.size} scores but {y.size} labels; pass one score per labelled pair.")
    if s.size == 0:
        raise DataError("no pairs to evaluate (empty scores and labels).")
    if not np.isfinite(s).all():
        raise DataError(f"{int((~np.isfinite(s)).sum())} scores are NaN or infinite; check the model's outputs.")
    if not np.isin(y, (0, 1)).all():
        bad = y[~np.isin(y, (0, 1))][0].item()
        raise DataError(f"label {bad!r} is not 0 or 1.")
    return s, y.astype(np.int64)


def best_threshold(scores: Any, labels: Any, by: str = "f1") -> tuple[float, float]:
    """The threshold maximising F1 (or accuracy, `by="accuracy"`) over all cut points, in O(n log n).

    Candidates are the distinct scores: with threshold t, pairs scoring >= t are predicted
    positive (the convention of `sklearn.metrics.precision_recall_curve`), so the returned
    threshold is itself a score, the lowest one predicted positive. Among equally good
    thresholds the largest is returned (fewest predicted positives). Scores are sorted once
    and the confusion counts of every cut point come from cumulative sums.

    Args:
        scores: One score per pair, higher = more similar.
        labels: 0/1 per pair; at least one 1.

    Returns:
        (threshold, F1 at that threshold); with `by="accuracy"`, (threshold, accuracy).

    Raises:
        DataError: empty input, mismatched lengths, non-finite scores, labels other than 0/1,
            or no positive label (F1 is then 0 at every threshold).

    Example:
        >>> best_threshold([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
        (0.3, 0.8)
    """
    import numpy as np

    s, y = _arrays(scores, labels)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise DataError("labels have no positive pair, so every threshold has F1 0; the split needs matches.")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]  # (n,) by descending score
    tp = np.cumsum(y)  # (n,) true positives when the first i+1 pairs are predicted positive
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last position of each distinct score
    predicted = last + 1  # (d,) predicted positives at each cut point
    if by == "accuracy":  # (TP + TN) / n with TN = N - FP = (n - P) - (#predicted - TP)
        value = (tp[last] + (len(y) - n_pos) - (predicted - tp[last])) / len(y)
    elif by == "f1":
        value = 2 * tp[last] / (predicted + n_pos)  # 2TP / (2TP + FP + FN) = 2TP / (#predicted + P)
    else:
        raise DataError(f"best_threshold: by={by!r}; choose f1 or accuracy.")
    best = int(np.argmax(value))  # first maximum = largest threshold
    return float(s[last[best]]), float(value[best])


def pair_metrics(scores: Any, labels: Any, threshold: float) -> dict[str, float | int]:
    """Classification metrics of pairs at a fixed `threshold` (positive iff score >= threshold).

    Ratios with an empty denominator are 0, as scikit-learn's `zero_division=0`; `ap` is
    NaN when there is no positive label.

    Returns:
        `pos_acc` (recall on positives), `neg_acc` (specificity), `avg_acc` (their mean),
        `precision`, `recall`, `f1`, `accuracy`, `ap` (average precision of the scores, by
        `sklearn.metrics.average_precision_score`, threshold-free), `threshold`, and the
        counts `tp`, `fp`, `tn`, `fn`.

    Raises:
        DataError: empty input, mismatched lengths, non-finite scores or labels other than 0/1.
    """
    s, y = _arrays(scores, labels)
    pred = s >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    tn = int((~pred & (y == 0)).sum())
    pos_acc = _ratio(tp, tp + fn)
    neg_acc = _ratio(tn, tn + fp)
    if tp + fn:
        from sklearn.metrics import average_precision_score

        ap = float(average_precision_score(y, s))
    else:
        ap = math.nan
    return {
        "pos_acc": pos_acc,
        "neg_acc": neg_acc,
        "avg_acc": (pos_acc + neg_acc) / 2,
        "precision": _ratio(tp, tp + fp),
        "recall": pos_acc,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": (tp + tn) / len(y),
        "ap": ap,
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def epoch_line(
    split: str,
    epoch: int,
    loss: float | None,
    metrics: dict[str, Any],
    threshold: float,
    *,
    optimised: bool = True,
) -> str:
    """One progress line per epoch, the format of the original experiment log.

    `thr*` marks a threshold optimised on this split; pass `optimised=False` for a split
    scored with a frozen threshold (test), which prints `thr`. A missing loss prints `n/a`.

    Example:
        >>> m = {"pos_acc": 0.842, "neg_acc": 0.677, "avg_acc": 0.7596, "f1": 0.787}
        >>> epoch_line("val", 5, 0.504, m, 0.369)
        '[val] Epoch 5 - loss 0.5040, P Acc 0.842, N Acc 0.677, Avg Acc 0.760, F1 0.787, thr* 0.369'
    """
    loss_text = "n/a" if loss is None else f"{loss:.4f}"
    thr = "thr*" if optimised else "thr"
    return (
        f"[{split}] Epoch {epoch} - loss {loss_text}, P Acc {metrics['pos_acc']:.3f}, "
        f"N Acc {metrics['neg_acc']:.3f}, Avg Acc {metrics['avg_acc']:.3f}, F1 {metrics['f1']:.3f}, "
        f"{thr} {threshold:.3f}"
    )


ITEM_METRICS = ("correct", "score", "tp", "fp", "fn", "pos_acc", "neg_acc")
"""The per-pair metrics of `per_item_rows`."""


def per_item_rows(system: str, ids: Any, labels: Any, scores: Any, threshold: float) -> list[tuple[str, str, str, Any]]:
    """The `perquery.tsv` rows `(system, query_id, metric, value)` of one system's test pairs.

    Per pair: `correct` (0/1) and `score`; the counts `tp`, `fp`, `fn` (0/1) that
    `simlab compare` sums into F1, precision and recall; `pos_acc` on positive pairs only and
    `neg_acc` on negative pairs only, so that their means are the split's pos_acc and neg_acc.
    """
    s, y = _arrays(scores, labels)
    pred = s >= threshold
    rows = []
    for pid, label, p, score in zip(ids, y.astype(bool), pred, s):
        values = {"correct": int(p == label), "score": float(score), "tp": int(p and label)}
        values |= {"fp": int(p and not label), "fn": int(label and not p)}
        values |= {"pos_acc": int(p)} if label else {"neg_acc": int(not p)}
        rows += [(system, str(pid), metric, value) for metric, value in values.items()]
    return rows
