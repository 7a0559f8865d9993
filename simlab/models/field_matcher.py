r"""Per-field similarity features and a logistic regression over them: the `fields` and `hybrid` pair systems.

For a pair of records $(a, b)$ and each text field $f$, with $W(x)$ the set of lower-cased
words of $x$ and $n(x)$ its lower-cased letters and digits only (so `DCS-T5G` = `dcs t5g`):

- `jaccard` $= |W(a_f) \cap W(b_f)| / |W(a_f) \cup W(b_f)|$ (0 when both are empty);
- `exact` $= [n(a_f) = n(b_f) \ne \varepsilon]$;
- `a_in_b` $= [n(a_f) \ne \varepsilon$ and $n(a_f)$ occurs in $n(b)$, all of $b$'s fields
  joined$]$, `b_in_a` the same the other way (a model number written inside the other
  record's title);
- `missing` $= [n(a_f) = \varepsilon$ or $n(b_f) = \varepsilon]$.

A logistic regression (scikit-learn) on these features, fitted on the train pairs, scores a
pair by its match probability: the `fields` system, model-free. The `hybrid` system adds the
trained siamese model's similarity as one more feature, fitted the same way. This is the
attribute-similarity matcher of Magellan (Konda et al., VLDB 2016) in its smallest form:
exact identifiers such as model numbers decide many product matches, and a static embedding
model sees them only as a few word pieces among others.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

FEATURES = ("jaccard", "exact", "a_in_b", "b_in_a", "missing")
"""The features of one field, in column order (see the module docstring)."""

_WORD = re.compile(r"\w+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def _norm(text: str) -> str:
    return _NOT_ALNUM.sub("", text.lower())


def field_features(left: Sequence[Sequence[str]], right: Sequence[Sequence[str]]) -> np.ndarray:
    """The `FEATURES` of every field of every pair.

    Args:
        left, right: Per pair, the field values of its left and right record (the same
            fields in the same order for every pair).

    Returns:
        Float array `[n_pairs, n_fields * len(FEATURES)]`, field-major.
    """
    import numpy as np

    rows = []
    for a, b in zip(left, right):
        whole_a, whole_b = _norm(" ".join(a)), _norm(" ".join(b))
        row = []
        for x, y in zip(a, b):
            wx, wy = set(_WORD.findall(x.lower())), set(_WORD.findall(y.lower()))
            nx, ny = _norm(x), _norm(y)
            union = wx | wy
            row += [
                len(wx & wy) / len(union) if union else 0.0,
                float(bool(nx) and nx == ny),
                float(bool(nx) and nx in whole_b),
                float(bool(ny) and ny in whole_a),
                float(not nx or not ny),
            ]
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


class FieldMatcher:
    """A logistic regression on pair features; `fit` on train pairs, then `score` any pairs."""

    def __init__(self, seed: int = 0):
        from sklearn.linear_model import LogisticRegression

        self.classifier = LogisticRegression(max_iter=2000, random_state=seed)

    def fit(self, features: np.ndarray, labels: Sequence[int]) -> FieldMatcher:
        """Fit on `[n, k]` features and 0/1 labels (both classes needed)."""
        self.classifier.fit(features, list(labels))
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        """The match probability of each pair, `[n]`."""
        return self.classifier.predict_proba(features)[:, 1]
