"""Rank fusion: combine the runs of several retrievers (e.g. BM25 + a dense model) into one.

`FUSIONS` maps a method name to its function; `get_fusion` looks one up by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from simlab.errors import ConfigError
from simlab.records import Run


def rrf(runs: list[Run], k: float = 60, name: str = "hybrid", top: int | None = None) -> Run:
    r"""Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009).

    $$
    \mathrm{RRF}(q, d) = \sum_{r \in \mathrm{runs}} \frac{[d \in r_q]}{k + \mathrm{rank}_r(q, d)}
    $$

    where $\mathrm{rank}_r(q, d)$ counts from 1 in the order of `Run.ranked` (score
    descending, ties broken by doc id descending), and a document missing from a run's list
    for $q$ gets nothing from that run. Only ranks matter, so runs with incomparable score
    scales fuse without normalisation.

    Reference: G. V. Cormack, C. L. A. Clarke, S. Büttcher. "Reciprocal Rank Fusion
    Outperforms Condorcet and Individual Rank Learning Methods." SIGIR 2009, 758-759.

    Args:
        runs: The runs to fuse; the inputs are not modified.
        k: The smoothing constant, >= 0; 60 as in the paper.
        name: The name of the fused run.
        top: Keep only the `top` best documents per query (ties by doc id); None keeps all.

    Returns:
        A run over the union of the queries of `runs`, scored by RRF.

    Raises:
        ConfigError: no runs, `k` < 0, or `top` < 1.

    Example:
        >>> a = Run("a", {"q": {"d1": 2.0, "d2": 1.0}})
        >>> b = Run("b", {"q": {"d2": 9.0}})
        >>> rrf([a, b], k=1).scores["q"]  # d1: 1/(1+1); d2: 1/(1+2) + 1/(1+1)
        {'d2': 0.8333333333333333, 'd1': 0.5}
    """
    if not runs:
        raise ConfigError("rrf: no runs to fuse; pass at least one Run.")
    if not (math.isfinite(k) and k >= 0):
        raise ConfigError(f"rrf: k={k!r} must be a finite number >= 0 (60 is the usual value).")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ConfigError(f"rrf: top={top!r} must be a positive integer or None.")

    query_ids = list(dict.fromkeys(q for run in runs for q in run.scores))
    fused: dict[str, dict[str, float]] = {}
    for q in query_ids:
        scores: dict[str, float] = {}
        for run in runs:
            for rank, (doc, _) in enumerate(run.ranked(q), start=1):
                scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
        ranked = sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)  # `Run.ranked`'s order
        fused[q] = dict(ranked if top is None else ranked[:top])
    return Run(name, fused)


FUSIONS: dict[str, Callable[..., Run]] = {"rrf": rrf}


def get_fusion(method: str) -> Callable[..., Run]:
    """The fusion function registered as `method`.

    Raises:
        ConfigError: no such method; the message lists the registered ones.
    """
    try:
        return FUSIONS[method]
    except KeyError:
        raise ConfigError(f"Unknown fusion method {method!r}; choose one of {', '.join(sorted(FUSIONS))}.") from None
