"""Per-field similarity features (by hand) and the logistic regression over them."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.models.field_matcher import FEATURES, FieldMatcher, field_features


def test_features_by_hand():
    x = field_features([("Acme DCS-T5G camera", "acme")], [("acme dcs t5g", "")])
    # field 0: words {acme, dcs, t5g, camera} vs {acme, dcs, t5g}; "acmedcst5g" inside "acmedcst5gcameraacme"
    # field 1: "acme" vs nothing: missing, but "acme" occurs in the right record's text
    assert x.shape == (1, 2 * len(FEATURES))
    assert x[0].tolist() == pytest.approx([3 / 4, 0, 0, 1, 0, 0, 0, 1, 0, 1])
    same = field_features([("Sony  KDL-40", "")], [("sony kdl40", "")])[0]  # words {sony, kdl, 40} vs {sony, kdl40}
    assert same[:3].tolist() == [1 / 4, 1.0, 1.0]  # exact once punctuation and case are ignored


def test_matcher_learns_an_exact_identifier():
    rng = np.random.default_rng(0)
    codes = [f"x{n}{chr(97 + n % 26)}" for n in range(60)]
    left = [(f"camera {c}",) for c in codes]
    match = rng.random(60) < 0.5
    right = [(f"photo camera {c if m else codes[(i + 7) % 60]}",) for i, (c, m) in enumerate(zip(codes, match))]
    x = field_features(left, right)
    scores = FieldMatcher().fit(x, match.astype(int)).score(x)
    assert scores[match].min() > scores[~match].max()
