"""simlab.evaluation.metrics against a naive reference written here, ir_measures on files, and by hand."""

from __future__ import annotations

import copy
import math

import pytest

from simlab.config.metrics import METRICS, parse_metric
from simlab.errors import ConfigError, DataError
from simlab.evaluation.metrics import EvalResult, evaluate, per_query_rows
from simlab.records import Qrels, Run

# Graded qrels. q3 is judged but missing from the run (scores 0); q5 has no relevant document
# (not evaluated); the run's qx has no judgements (ignored).
QRELS = Qrels(
    {
        "q1": {"d1": 2, "d2": 1, "d3": 0, "d4": 1},
        "q2": {"d2": 1, "d5": 3, "d6": 0},
        "q3": {"d6": 1},
        "q4": {"d1": 1, "d7": 2, "d8": 1, "d9": 3, "d10": 1},
        "q5": {"d9": 0},
    }
)
# No score ties within a query, so no tie rule matters for the reference comparison.
RUN = Run(
    "fixture",
    {
        "q1": {"d3": 0.9, "d1": 0.8, "d5": 0.7, "d2": 0.6, "d4": 0.5},
        "q2": {
            "d1": 3.0,
            "d6": 2.5,
            "d7": 2.0,
            "d8": 1.5,
            "d9": 1.2,
            "d10": 1.1,
            "d11": 1.0,
            "d12": 0.9,
            "d13": 0.8,
            "d14": 0.7,
            "d5": 0.6,
            "d2": 0.5,
        },
        "q4": {"d9": 10.0, "d2": 9.0, "d8": 8.0, "d3": 7.0, "d7": 6.0, "d1": -1.0},
        "q5": {"d9": 1.0},
        "qx": {"d1": 1.0, "d2": 0.5},
    },
)
NAMES = ["ndcg@3", "ndcg@10", "mrr@10", "mrr@2", "recall@3", "recall@10", "precision@3", "map", "map@3"]


# ---- independent reference, plain Python (trec_eval definitions) -------------------------------


def _ranking(scores: dict[str, float]) -> list[str]:
    return [d for d, _ in sorted(scores.items(), key=lambda kv: -kv[1])]


def _ndcg(rels: dict[str, int], ranking: list[str], k: int) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 1) for i, d in enumerate(ranking[:k], start=1))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 1) for i, r in enumerate(ideal, start=1))
    return dcg / idcg


def _rr(rels: dict[str, int], ranking: list[str], k: int) -> float:
    return next((1 / i for i, d in enumerate(ranking[:k], start=1) if rels.get(d, 0) >= 1), 0.0)


def _recall(rels: dict[str, int], ranking: list[str], k: int) -> float:
    relevant = {d for d, r in rels.items() if r >= 1}
    return len(relevant & set(ranking[:k])) / len(relevant)


def _precision(rels: dict[str, int], ranking: list[str], k: int) -> float:
    return sum(rels.get(d, 0) >= 1 for d in ranking[:k]) / k


def _ap(rels: dict[str, int], ranking: list[str], k: int | None) -> float:
    relevant = {d for d, r in rels.items() if r >= 1}
    hits, total = 0, 0.0
    for i, d in enumerate(ranking[:k] if k else ranking, start=1):
        if d in relevant:
            hits += 1
            total += hits / i
    return total / len(relevant)


def _reference(name: str, rels: dict[str, int], ranking: list[str]) -> float:
    family, _, k = name.partition("@")
    fn = {"ndcg": _ndcg, "mrr": _rr, "recall": _recall, "precision": _precision, "map": _ap}[family]
    return fn(rels, ranking, int(k) if k else None)


def _reference_eval(qrels: Qrels, run: Run, names: list[str]) -> dict[str, dict[str, float]]:
    judged = [q for q, docs in qrels.judgements.items() if any(r > 0 for r in docs.values())]
    return {
        name: {
            q: _reference(name, dict(qrels.judgements[q]), _ranking(dict(run.scores[q]))) if q in run.scores else 0.0
            for q in judged
        }
        for name in names
    }


# ---- tests -------------------------------------------------------------------------------------


def test_evaluate_matches_naive_reference():
    result = evaluate(QRELS, RUN, NAMES)
    expected = _reference_eval(QRELS, RUN, NAMES)

    assert isinstance(result, EvalResult)
    assert result.query_ids == ["q1", "q2", "q3", "q4"]  # q5 has no relevant doc, qx no qrels
    assert list(result.per_query) == NAMES
    for name in NAMES:
        assert list(result.per_query[name]) == result.query_ids
        for q in result.query_ids:
            assert result.per_query[name][q] == pytest.approx(expected[name][q], abs=1e-6), (name, q)
        mean = sum(expected[name].values()) / 4
        assert result.means[name] == pytest.approx(mean, abs=1e-6), name
        assert result.per_query[name]["q3"] == 0.0  # judged, no results: 0, counted in the mean


def test_hand_computed_ndcg_and_ap():
    result = evaluate(QRELS, RUN, ["ndcg@3", "map", "mrr@10"])
    # q1 top 3: d3 (rel 0), d1 (rel 2), d5 (unjudged) -> DCG@3 = 2 / log2(3) = 1.2618595
    # ideal levels 2, 1, 1 -> IDCG@3 = 2 + 1 / log2(3) + 1 / log2(4) = 3.1309298
    # nDCG@3 = 1.2618595 / 3.1309298 = 0.4030303
    assert result.per_query["ndcg@3"]["q1"] == pytest.approx(0.4030303, abs=1e-6)
    # q4 ranking d9 d2 d8 d3 d7 d1, relevant {d1 d7 d8 d9 d10}:
    # AP = (1/1 + 2/3 + 3/5 + 4/6) / 5 = 0.5866667 (d10 never retrieved still counts in |R|)
    assert result.per_query["map"]["q4"] == pytest.approx(0.5866667, abs=1e-6)
    # q2: first relevant doc (d5) at rank 11 -> 0 within the top 10
    assert result.per_query["mrr@10"]["q2"] == 0.0


def _write_trec_run(run: Run, path) -> None:
    """TREC run format, 6 columns: qid Q0 docno rank score tag."""
    with open(path, "w", encoding="utf-8") as f:
        for q in run.scores:
            for rank, (doc, score) in enumerate(run.ranked(q), start=1):
                f.write(f"{q} Q0 {doc} {rank} {score!r} {run.name}\n")


def _write_trec_qrels(qrels: Qrels, query_ids: list[str], path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for q in query_ids:
            for doc, rel in qrels.judgements[q].items():
                f.write(f"{q} 0 {doc} {rel}\n")


def test_means_match_ir_measures_on_trec_files(tmp_path):
    import ir_measures

    result = evaluate(QRELS, RUN, NAMES)
    _write_trec_run(RUN, tmp_path / "run.trec")
    # Only the evaluated queries: ir_measures would otherwise average q5 in as a 0.
    _write_trec_qrels(QRELS, result.query_ids, tmp_path / "qrels.txt")
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert lines[0].split() == ["q1", "Q0", "d3", "1", "0.9", "fixture"]

    measures = {name: ir_measures.parse_measure(parse_metric(name)[1]) for name in NAMES}
    agg = ir_measures.calc_aggregate(
        list(measures.values()),
        ir_measures.read_trec_qrels(str(tmp_path / "qrels.txt")),
        ir_measures.read_trec_run(str(tmp_path / "run.trec")),
    )
    for name, measure in measures.items():
        assert result.means[name] == pytest.approx(agg[measure], abs=1e-6), name


def test_score_ties_are_broken_by_doc_id_descending_for_every_metric():
    import ir_measures

    qrels = Qrels({"q": {"a": 1}})
    tied = Run("tied", {"q": {"c": 1.0, "a": 1.0, "b": 1.0}})
    result = evaluate(qrels, tied, ["ndcg@10", "mrr@10"])
    # simlab reads the run as Run.ranked (and trec_eval) does: c, b, a -> the relevant doc is third.
    assert result.per_query["ndcg@10"]["q"] == pytest.approx(0.5)
    assert result.per_query["mrr@10"]["q"] == pytest.approx(1 / 3)

    # Why evaluate canonicalises: raw ir_measures reads the same tied run in two orders.
    raw = {
        m.measure: m.value
        for m in ir_measures.iter_calc(
            [ir_measures.nDCG @ 10, ir_measures.RR @ 10],
            {"q": {"a": 1}},
            {"q": {"c": 1.0, "a": 1.0, "b": 1.0}},
        )
    }
    # pytrec_eval (trec_eval): doc id descending, c b a -> a at rank 3 -> 1 / log2(4) = 0.5
    assert raw[ir_measures.nDCG @ 10] == pytest.approx(0.5)
    # ir_measures' MS MARCO RR@k: doc id ascending, a b c -> 1.0
    assert raw[ir_measures.RR @ 10] == pytest.approx(1.0)


def test_inputs_are_not_mutated():
    qrels, run = copy.deepcopy(QRELS), copy.deepcopy(RUN)
    evaluate(qrels, run, NAMES)
    assert qrels == QRELS and run == RUN


def test_empty_run_scores_zero_everywhere():
    result = evaluate(QRELS, Run("empty", {}), ["ndcg@10", "map"])
    assert result.means == {"ndcg@10": 0.0, "map": 0.0}
    assert set(result.per_query["map"]) == {"q1", "q2", "q3", "q4"}


def test_metric_names():
    assert parse_metric("NDCG@10") == ("ndcg@10", "nDCG@10")
    assert parse_metric(" mrr@100 ") == ("mrr@100", "RR@100")
    assert parse_metric("precision@5") == ("precision@5", "P@5")
    assert parse_metric("map@100") == ("map@100", "AP@100")
    assert {k: parse_metric(k)[1] for k in METRICS} == METRICS
    with pytest.raises(ConfigError, match=r"Valid forms: map@k, map, mrr@k, ndcg@k, precision@k, recall@k"):
        parse_metric("bleu@4")
    with pytest.raises(ConfigError, match="needs a cutoff"):
        parse_metric("ndcg")
    with pytest.raises(ConfigError, match="positive integer"):
        parse_metric("recall@0")
    with pytest.raises(ConfigError, match="Unknown metric"):
        parse_metric("ndcg@ten")
    with pytest.raises(ConfigError, match="No metrics"):
        evaluate(QRELS, RUN, [])


def test_duplicate_names_are_scored_once():
    result = evaluate(QRELS, RUN, ["ndcg@10", "NDCG@10", "map"])
    assert list(result.means) == ["ndcg@10", "map"]


def test_no_judged_query_is_an_error():
    with pytest.raises(DataError, match="no query with a relevant"):
        evaluate(Qrels({"q": {"d": 0}}), RUN, ["map"])


def test_per_query_rows():
    results = {"a": evaluate(QRELS, RUN, ["map", "mrr@10"]), "b": evaluate(QRELS, Run("b", {}), ["map"])}
    rows = per_query_rows(results)
    assert len(rows) == 4 * 2 + 4
    assert rows[0] == {
        "system": "a",
        "query_id": "q1",
        "metric": "map",
        "value": results["a"].per_query["map"]["q1"],
    }
    assert rows[-1] == {"system": "b", "query_id": "q4", "metric": "map", "value": 0.0}
