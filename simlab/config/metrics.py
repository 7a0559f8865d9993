"""Retrieval metric names: ranx-style (`ndcg@10`, `mrr@10`, `map`), checked and mapped to ir_measures.

Pure string handling, so that a config is checked before any work (`simlab.evaluation.metrics`
computes the metrics).
"""

from __future__ import annotations

import re

from simlab.errors import ConfigError

# simlab metric family -> (ir_measures measure name, cutoff: "required" | "optional")
_FAMILIES: dict[str, tuple[str, str]] = {
    "ndcg": ("nDCG", "required"),
    "mrr": ("RR", "required"),
    "recall": ("R", "required"),
    "precision": ("P", "required"),
    "map": ("AP", "optional"),
}

METRICS: dict[str, str] = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "RR@10",
    "recall@10": "R@10",
    "recall@100": "R@100",
    "map": "AP",
}
"""The usual metrics: simlab name -> ir_measures measure. `parse_metric` accepts any cutoff."""

_NAME_RE = re.compile(r"^([a-z]+)(?:@(\d+))?$")


def valid_forms() -> list[str]:
    """The accepted metric name forms, generated from the family table (for error messages)."""
    forms = []
    for family, (_, cutoff) in sorted(_FAMILIES.items()):
        forms.append(f"{family}@k")
        if cutoff == "optional":
            forms.append(family)
    return forms


def parse_metric(name: str) -> tuple[str, str]:
    """Validate a metric name and translate it to ir_measures.

    Names are case-insensitive; `k` is a positive integer.

    Args:
        name: A simlab/ranx-style name such as `"ndcg@10"`, `"MRR@100"` or `"map"`.

    Returns:
        `(canonical simlab name, ir_measures measure name)`, e.g. `("ndcg@10", "nDCG@10")`.

    Raises:
        ConfigError: the name is not one of the forms of `valid_forms()`.

    Example:
        >>> parse_metric("nDCG@5")
        ('ndcg@5', 'nDCG@5')
        >>> parse_metric("map")
        ('map', 'AP')
    """
    canonical = str(name).strip().lower()
    match = _NAME_RE.match(canonical)
    family = match.group(1) if match else None
    if match is None or family not in _FAMILIES:
        raise ConfigError(
            f"Unknown metric {name!r}. Valid forms: {', '.join(valid_forms())} "
            f"(k a positive integer, e.g. {', '.join(sorted(METRICS))})."
        )
    measure, cutoff_rule = _FAMILIES[family]
    cutoff = match.group(2)
    if cutoff is None:
        if cutoff_rule == "required":
            raise ConfigError(f"Metric {name!r} needs a cutoff: write it as {family}@k, e.g. {family}@10.")
        return canonical, measure
    if int(cutoff) < 1:
        raise ConfigError(f"Metric {name!r}: the cutoff k must be a positive integer, e.g. {family}@10.")
    k = int(cutoff)
    return f"{family}@{k}", f"{measure}@{k}"


METRIC_CHOICES = "ndcg@k, mrr@k, recall@k, precision@k, map, map@k"
