"""Retrieval metrics: ranx-style names (`ndcg@10`, `mrr@10`, `map`) computed with ir_measures.

The numbers are trec_eval's: nDCG, recall, precision and AP come from pytrec_eval (trec_eval's
C code) and RR@k from ir_measures' MS MARCO implementation, both called through ir_measures.
This module only fixes *which* queries are averaged and *in what order* a run is read, so that
every metric sees the same ranking and the same query set.

Conventions (`evaluate` applies them to every metric):

* **Queries.** A run is evaluated over the queries of the qrels that have at least one
  relevant (> 0) document, `Qrels.query_ids()`. A judged query with no results in the run
  scores 0 on every metric and still counts in the mean. Run results for queries without such
  judgements are ignored.
* **Relevance.** Graded, as in trec_eval: the gain of nDCG is the relevance level itself;
  recall, precision, RR and AP count a document as relevant when its level is >= 1.
* **Ties.** A run is read in the order of `Run.ranked`: score descending, ties broken by doc
  id descending (trec_eval's own rule), for every metric. Left to themselves the two back ends disagree: trec_eval
  (pytrec_eval) breaks score ties by doc id *descending* and the MS MARCO RR@k code by doc id
  *ascending*, so one tied run would be read in two different orders within a single
  evaluation. `evaluate` therefore hands ir_measures rank-derived scores (n, n-1, ..., 1) in
  `Run.ranked` order. On runs without score ties this changes nothing.

Aggregation beyond the per-metric mean (confidence intervals, significance tests, tables)
happens one layer up, from `EvalResult.per_query`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simlab.config.metrics import parse_metric, valid_forms
from simlab.errors import ConfigError, DataError
from simlab.records import Qrels, Run


@dataclass(frozen=True)
class EvalResult:
    """The scores of one run.

    Attributes:
        per_query: metric name -> query id -> value, every metric over every id of `query_ids`.
        means: metric name -> arithmetic mean over `query_ids`.
        query_ids: the evaluated queries (`Qrels.query_ids()`, in qrels order).
    """

    per_query: dict[str, dict[str, float]]
    means: dict[str, float]
    query_ids: list[str]


def evaluate(qrels: Qrels, run: Run, metrics: list[str]) -> EvalResult:
    r"""Score a run against qrels; see the module docstring for the query, relevance and tie rules.

    Let $d_1, d_2, \dots$ be the run's ranking of query $q$ (`Run.ranked`), $rel_i$ the
    relevance level of $d_i$ (0 if unjudged), $R_q = \{d : rel(d) \ge 1\}$ and
    $[\cdot]$ the indicator. Then, per query:

    - `ndcg@k`: $\mathrm{DCG@k} / \mathrm{IDCG@k}$ with
      $\mathrm{DCG@k} = \sum_{i=1}^{k} rel_i / \log_2(i + 1)$ and IDCG@k the DCG@k of the
      judged documents sorted by relevance level.
    - `mrr@k`: $1 / \min\{i \le k : rel_i \ge 1\}$, or 0 when no relevant document is in the top k.
    - `recall@k`: $|\{i \le k : rel_i \ge 1\}| / |R_q|$.
    - `precision@k`: $|\{i \le k : rel_i \ge 1\}| / k$ (k, not the number retrieved).
    - `map@k` (`map`: $k = \infty$):
      $\frac{1}{|R_q|} \sum_{i=1}^{k} [rel_i \ge 1] \cdot \mathrm{P@i}$, divided by all of
      $|R_q|$ even when $|R_q| > k$, as trec_eval's `map_cut`.

    `means` are plain averages of these over `query_ids`. The inputs are not modified.

    Args:
        qrels: The judgements.
        run: The run to score.
        metrics: Metric names (see `parse_metric`); duplicates are scored once.

    Returns:
        An `EvalResult` keyed by the canonical metric names, in the order given.

    Raises:
        ConfigError: an unknown metric name, or an empty metric list.
        DataError: the qrels hold no query with a relevant document.
    """
    parsed = dict(parse_metric(m) for m in metrics)  # canonical -> ir_measures name, ordered
    if not parsed:
        raise ConfigError(f"No metrics given; choose from the forms {', '.join(valid_forms())}.")
    query_ids = qrels.query_ids()
    if not query_ids:
        raise DataError(
            "The qrels hold no query with a relevant (> 0) document, so there is nothing to "
            "evaluate; check that the qrels split matches the queries."
        )

    per_query: dict[str, dict[str, float]] = {name: {} for name in parsed}
    run_dict = _ranked_run(run, query_ids)
    if run_dict:
        qrels_dict = {q: {d: int(r) for d, r in qrels.judgements[q].items()} for q in query_ids}
        for name, value, qid in _compute(parsed, qrels_dict, run_dict):
            per_query[name][qid] = value

    # Judged queries absent from the run score 0 (some ir_measures versions omit them).
    per_query = {name: {q: per_query[name].get(q, 0.0) for q in query_ids} for name in parsed}
    means = {name: math.fsum(v.values()) / len(query_ids) for name, v in per_query.items()}
    return EvalResult(per_query=per_query, means=means, query_ids=list(query_ids))


def _ranked_run(run: Run, query_ids: list[str]) -> dict[str, dict[str, float]]:
    """The run restricted to `query_ids`, scores replaced by n..1 in `Run.ranked` order."""
    out = {}
    for q in query_ids:
        ranked = run.ranked(q)
        if ranked:
            n = len(ranked)
            out[q] = {doc: float(n - i) for i, (doc, _) in enumerate(ranked)}
    return out


def _compute(parsed: dict[str, str], qrels_dict: dict, run_dict: dict) -> list[tuple[str, float, str]]:
    """(metric name, value, query id) triples from pytrec_eval / MS MARCO via ir_measures."""
    import ir_measures
    from ir_measures.providers import FallbackProvider

    # Explicit providers: never the ranx one (numba compile), same numbers on every install.
    provider = FallbackProvider([ir_measures.pytrec_eval, ir_measures.msmarco])
    by_measure: dict[Any, str] = {ir_measures.parse_measure(m): name for name, m in parsed.items()}
    evaluator = provider.evaluator(list(by_measure), qrels_dict)
    return [
        (by_measure[m.measure], float(m.value), m.query_id)
        for m in evaluator.iter_calc(run_dict)
        if m.measure in by_measure
    ]


def per_query_rows(results: dict[str, EvalResult]) -> list[dict[str, Any]]:
    """Flatten results to rows `{system, query_id, metric, value}` for a per-query TSV.

    Args:
        results: system (run) name -> its `EvalResult`.

    Returns:
        One row per system, query and metric, in system, query and metric order.
    """
    return [
        {"system": system, "query_id": q, "metric": metric, "value": res.per_query[metric][q]}
        for system, res in results.items()
        for q in res.query_ids
        for metric in res.per_query
    ]
