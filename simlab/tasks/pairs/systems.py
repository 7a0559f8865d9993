"""Scoring the systems of a pairs run: each system's threshold tuned on val, frozen for test.

`token_overlap` is the model-free reference system; `features` feeds the `fields` and
`hybrid` systems (`simlab.models.field_matcher`).
"""

from __future__ import annotations

import re

import numpy as np

from simlab.models.field_matcher import field_features
from simlab.training.pairs import REPORTED, PairSet


def token_overlap(pairs: PairSet, image: bool = False) -> np.ndarray:
    """Jaccard overlap of lower-cased word sets: the model-free baseline, scored like the model.
    With `image`, the texts' last field (the image path of `data.image_field`) is left out."""
    from simlab.models.fields import FIELD_SEP

    def words(t: str) -> set[str]:
        return set(re.findall(r"\w+", (t.rpartition(FIELD_SEP)[0] if image else t).lower()))

    out = []
    for a, b in zip(pairs.left, pairs.right):
        wa, wb = words(a), words(b)
        out.append(len(wa & wb) / len(wa | wb) if wa | wb else 0.0)
    return np.array(out)


def features(pairs: PairSet) -> np.ndarray:
    """The per-field similarity features of `simlab.models.field_matcher`, `[n, n_fields * 5]`."""
    return field_features(pairs.left_values, pairs.right_values)


def add_system(summary, name: str, scores_val, scores_test, val: PairSet, test: PairSet, by: str) -> dict:
    """Score system `name` into `summary`: the threshold that maximises `by` on val, frozen for test; its
    test and val metrics (metrics.json) and per-pair rows (perquery.tsv). Returns the test metrics."""
    from simlab.evaluation.pairs import best_threshold, pair_metrics, per_item_rows

    thr, _ = best_threshold(scores_val, val.labels, by)
    val_m = pair_metrics(scores_val, val.labels, thr)
    test_m = pair_metrics(scores_test, test.labels, thr)  # val's threshold, frozen
    summary.metrics[name] = (
        {k: float(test_m[k]) for k in REPORTED}
        | {"threshold": float(thr)}
        | {f"val_{k}": float(val_m[k]) for k in REPORTED}
    )
    summary.items += per_item_rows(name, test.ids, test.labels, scores_test, float(thr))
    return test_m
