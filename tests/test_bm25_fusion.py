"""BM25Retriever against a hand-written BM25, save/load, and RRF against hand-computed fusion."""

from __future__ import annotations

import copy
import json
import math
import re
from collections import Counter

import pytest

from simlab.errors import ConfigError, DataError, RunFolderError
from simlab.index.bm25 import BM25Retriever
from simlab.index.fusion import FUSIONS, get_fusion, rrf
from simlab.records import Corpus, Queries, Run

# No one-letter words: bm25s' tokeniser (regex \b\w\w+\b) drops them, the naive one below does not.
CORPUS = Corpus(
    ids=["d1", "d2", "d3", "d4", "d5"],
    texts=[
        "Solar panels convert sunlight into electricity",
        "Wind turbines convert wind energy into electricity",
        "The cat sat on the warm mat",
        "Electricity prices rose sharply this winter, winter after winter",
        "Panels of judges discuss solar policy and energy policy",
    ],
)


def _naive_tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^0-9a-z]+", text.lower()) if t]


def _naive_bm25_lucene(corpus: Corpus, query: str, k1: float = 1.5, b: float = 0.75) -> dict[str, float]:
    """score = sum_t ln(1 + (N - df + 0.5) / (df + 0.5)) * tf / (tf + k1 (1 - b + b |d| / avgdl))."""
    docs = [Counter(_naive_tokens(t)) for t in corpus.texts]
    lengths = [sum(c.values()) for c in docs]
    n, avgdl = len(docs), sum(lengths) / len(docs)
    scores = {}
    for doc_id, tf, dl in zip(corpus.ids, docs, lengths):
        s = 0.0
        for t in _naive_tokens(query):
            df = sum(t in d for d in docs)
            if tf[t]:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                s += idf * tf[t] / (tf[t] + k1 * (1 - b + b * dl / avgdl))
        scores[doc_id] = s
    return scores


def test_obvious_match_ranks_first():
    bm25 = BM25Retriever.build(CORPUS)
    run = bm25.search(Queries(["q"], ["a cat on the mat"]), k=3)
    assert run.name == "bm25"
    assert run.ranked("q")[0][0] == "d3"
    assert list(run.scores["q"]) == ["d3"]  # the other documents score 0 and are left out


def test_scores_equal_naive_lucene_bm25():
    query = "solar electricity policy winter"
    bm25 = BM25Retriever.build(CORPUS, stopwords=None)
    run = bm25.search(Queries(["q"], [query]), k=5)
    expected = _naive_bm25_lucene(CORPUS, query)
    assert set(run.scores["q"]) == {d for d, s in expected.items() if s > 0} == {"d1", "d2", "d4", "d5"}
    for doc, score in run.scores["q"].items():
        assert score == pytest.approx(expected[doc], abs=1e-5), doc
    assert [d for d, _ in run.ranked("q")] == sorted(run.scores["q"], key=lambda d: -expected[d])


def test_k_larger_than_corpus_and_empty_queries():
    bm25 = BM25Retriever.build(CORPUS)
    run = bm25.search(Queries(["q1", "q2", "q3"], ["electricity", "zebra", "the of"]), k=1000)
    assert set(run.scores["q1"]) == {"d1", "d2", "d4"}
    assert run.scores["q2"] == {} and run.scores["q3"] == {}  # unknown word; only stop words
    with pytest.raises(ConfigError, match="positive integer"):
        bm25.search(Queries(["q"], ["cat"]), k=0)


def test_ties_at_the_cutoff_go_to_the_larger_doc_id_as_in_trec_eval():
    bm25 = BM25Retriever.build(Corpus(["x2", "x1", "x3"], ["green tea", "green tea", "black coffee"]))
    run = bm25.search(Queries(["q"], ["green tea"]), k=1)
    assert list(run.scores["q"]) == ["x2"]


def test_save_load_round_trip(tmp_path):
    queries = Queries(["q1", "q2"], ["solar energy", "warm winter electricity"])
    bm25 = BM25Retriever.build(CORPUS, k1=1.2, b=0.6)
    folder = bm25.save(tmp_path / "bm25")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == "simlab-bm25" and meta["format_version"] == 1 and meta["n_docs"] == 5
    assert meta["params"] == {"k1": 1.2, "b": 0.6, "method": "lucene", "stopwords": "en", "stemmer": "english"}
    assert json.loads((folder / "doc_ids.json").read_text()) == CORPUS.ids

    loaded = BM25Retriever.load(folder)
    assert loaded.params == bm25.params and loaded.doc_ids == CORPUS.ids
    assert loaded.search(queries, k=10) == bm25.search(queries, k=10)

    with pytest.raises(RunFolderError, match="already exists"):
        bm25.save(folder)
    bm25.save(folder, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["bm25"]  # no staging leftovers
    with pytest.raises(DataError, match="not a saved BM25 index"):
        BM25Retriever.load(tmp_path / "missing")


def test_build_validation():
    with pytest.raises(ConfigError, match="choose one of atire, bm25\\+, bm25l, lucene, robertson"):
        BM25Retriever.build(CORPUS, method="okapi")
    with pytest.raises(ConfigError, match="stopwords='klingon'"):
        BM25Retriever.build(CORPUS, stopwords="klingon")
    with pytest.raises(DataError, match="no documents"):
        BM25Retriever.build(Corpus([], []))


def test_stemming_is_on_by_default_and_can_be_turned_off():
    bm25 = BM25Retriever.build(CORPUS)
    assert bm25.params.stemmer == "english"
    assert "d1" in bm25.search(Queries(["q"], ["panel"]), k=5).scores["q"]  # finds "panels"
    assert "d1" not in BM25Retriever.build(CORPUS, stemmer=None).search(Queries(["q"], ["panel"]), k=5).scores["q"]
    with pytest.raises(ConfigError, match="not a PyStemmer algorithm"):
        BM25Retriever.build(CORPUS, stemmer="klingon")


# ---- fusion --------------------------------------------------------------------------------------

RUN_A = Run("a", {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}})
RUN_B = Run("b", {"q1": {"d3": 0.9, "d4": 0.8, "d1": 0.7}, "q2": {"d5": 5.0, "d7": 1.0, "d6": 1.0}})


def test_rrf_equals_hand_computed_fusion():
    a, b = copy.deepcopy(RUN_A), copy.deepcopy(RUN_B)
    fused = rrf([a, b], k=60)
    assert a == RUN_A and b == RUN_B  # inputs untouched
    assert fused.name == "hybrid"
    # q1: d1 ranks 1 in a, 3 in b; d3 ranks 3 in a, 1 in b; d2 rank 2 in a; d4 rank 2 in b.
    q1 = fused.scores["q1"]
    assert q1["d1"] == pytest.approx(1 / 61 + 1 / 63)
    assert q1["d3"] == pytest.approx(1 / 63 + 1 / 61)
    assert q1["d2"] == pytest.approx(1 / 62) and q1["d4"] == pytest.approx(1 / 62)
    assert [d for d, _ in fused.ranked("q1")] == ["d3", "d1", "d4", "d2"]  # fused ties: doc id descending
    # q2 only in b; the tied d6/d7 are ranked by doc id descending, so d7 is rank 2 and d6 rank 3.
    assert fused.scores["q2"] == pytest.approx({"d5": 1 / 61, "d7": 1 / 62, "d6": 1 / 63})


def test_rrf_top_and_registry():
    fused = rrf([RUN_A, RUN_B], k=0, name="mix", top=2)
    assert fused.name == "mix"
    assert fused.scores["q1"] == pytest.approx({"d1": 1 + 1 / 3, "d3": 1 / 3 + 1})
    assert get_fusion("rrf") is rrf is FUSIONS["rrf"]
    with pytest.raises(ConfigError, match="choose one of rrf"):
        get_fusion("combsum")
    with pytest.raises(ConfigError, match="at least one Run"):
        rrf([])
    with pytest.raises(ConfigError, match="top"):
        rrf([RUN_A], top=0)
