"""Training pairs (qrels or title -> body), the dev set, BM25 mining, negatives per step."""

from __future__ import annotations

import pytest

from simlab.config import HardNegativesConfig
from simlab.data.pairs import build_pairs
from simlab.errors import DataError
from simlab.records import Collection, Corpus, Qrels, Queries
from simlab.training.dense import evaluator_key, negatives_per_query
from simlab.training.mining import mine_bm25


def collection(with_train: bool = True) -> Collection:
    titles = ["Sourdough starter", "Bicycle brakes", "Saturn rings", "Compost heaps", "Bread crust", ""]
    texts = [
        "Sourdough starter: feed flour and water daily to keep the yeast alive",
        "adjust bicycle brakes so the pads meet the rim evenly",
        "the rings of saturn are made of ice and rock",
        "turn compost heaps weekly so they rot evenly",
        "a crisp bread crust needs steam in the oven",
        "an untitled note about flour",
    ]
    qrels = {"test": Qrels({"q3": {"d3": 1}})}
    if with_train:
        qrels["train"] = Qrels({"q1": {"d1": 2, "d5": 1}, "q2": {"d2": 1, "d4": 0}})
    return Collection(
        "toy",
        Corpus([f"d{i}" for i in range(1, 7)], texts, titles),
        Queries(["q1", "q2", "q3"], ["sourdough bread flour", "adjust the bicycle brakes evenly", "saturn rings"]),
        qrels,
    )


def test_pairs_from_train_qrels_keep_only_relevant():
    pairs = build_pairs(collection(), "train", "dev", seed=0)
    assert sorted(zip(pairs.anchors, pairs.positive_ids)) == [
        ("adjust the bicycle brakes evenly", "d2"),
        ("sourdough bread flour", "d1"),
        ("sourdough bread flour", "d5"),
    ]
    assert pairs.positives[pairs.positive_ids.index("d2")].startswith("Bicycle brakes adjust")
    assert "qrels split 'train'" in pairs.source
    assert pairs.dev.queries == {}  # no dev split and qrels pairs: nothing is held out


def test_pairs_from_corpus_strip_repeated_title_and_hold_out_dev():
    pairs = build_pairs(collection(with_train=False), "train", "dev", seed=0)
    assert "title -> body" in pairs.source
    assert pairs.doc_texts["d1"] == "feed flour and water daily to keep the yeast alive"  # title removed
    assert "d6" not in pairs.positive_ids  # no title, no pair
    assert len(pairs.anchors) + len(pairs.dev.queries) == 5
    held_out = {next(iter(docs)) for docs in pairs.dev.relevant.values()}
    assert held_out.isdisjoint(pairs.positive_ids)


def test_without_train_or_dev_queries_a_share_of_the_test_queries_is_val_and_no_pair_is_held_out():
    base = collection(with_train=False)
    ids = [f"t{i}" for i in range(20)]
    queries = Queries(ids, [f"question {i} about bread" for i in ids])
    test = Qrels({q: {f"d{1 + i % 5}": 1} for i, q in enumerate(ids)})
    c = Collection(base.name, base.corpus, queries, {"test": test})
    pairs = build_pairs(c, "train", "dev", seed=0, test_split="test")
    assert pairs.dev.split == "test" and len(pairs.dev.queries) == 6  # VAL_TEST_SHARE 0.3 of 20
    assert set(pairs.dev.queries) < set(ids) and pairs.dev.full_corpus
    assert pairs.dev.qrels.judgements == {q: test.judgements[q] for q in pairs.dev.queries}
    assert len(pairs.anchors) == 5  # every title -> body pair trains: none is held out as dev
    assert "held out as val" in pairs.dev.source and "other 14" in pairs.dev.source
    assert build_pairs(c, "train", "dev", seed=1, test_split="test").dev.queries != pairs.dev.queries
    few = build_pairs(base, "train", "dev", seed=0, test_split="test")  # 1 test query: title -> body pairs
    assert few.dev.split is None and "title -> body" in few.dev.source


def test_dev_split_is_used_when_present():
    c = collection()
    c = Collection(c.name, c.corpus, c.queries, {**c.qrels, "dev": Qrels({"q3": {"d3": 1}})})
    pairs = build_pairs(c, "train", "dev", seed=0)
    assert pairs.dev.queries == {"q3": "saturn rings"} and pairs.dev.relevant == {"q3": {"d3"}}
    assert pairs.dev.corpus["d3"].startswith("Saturn rings")


def test_max_pairs_and_no_pairs_error():
    assert len(build_pairs(collection(), "train", "dev", seed=1, max_pairs=2).anchors) == 2
    empty = Collection("empty", Corpus(["d1"], ["text"], [""]), Queries([], []), {})
    with pytest.raises(DataError, match="no training pairs.*train.enabled: false"):
        build_pairs(empty, "train", "dev", seed=0)


def test_bm25_negatives_never_positives_and_respect_range():
    pairs = build_pairs(collection(), "train", "dev", seed=0)
    mined = mine_bm25(pairs, HardNegativesConfig(source="bm25", num=1, range_min=0, range_max=6))
    assert len(mined.anchors) + mined.dropped == len(pairs.anchors)
    assert mined.dropped == 0  # every anchor shares a word with some non-positive document
    positives_of = {"sourdough bread flour": {"d1", "d5"}, "adjust the bicycle brakes evenly": {"d2"}}
    text_to_id = {v: k for k, v in pairs.doc_texts.items()}
    for anchor, negs in zip(mined.anchors, mined.negatives):
        assert len(negs) == 1 and text_to_id[negs[0]] not in positives_of[anchor]
    ds = mined.to_dataset()
    assert ds.column_names == ["anchor", "positive", "negative_1"]


def test_negatives_per_query_counts_in_batch_and_hard():
    # batches of 4, 4, 2; each anchor sees b - 1 other positives + b * h hard negatives
    assert negatives_per_query(10, 4, 1) == pytest.approx((8 * (3 + 4) + 2 * (1 + 2)) / 10)
    assert negatives_per_query(8, 4, 0) == pytest.approx(3.0)


def test_evaluator_keys():
    assert evaluator_key("ndcg@10") == "dev_cosine_ndcg@10"
    assert evaluator_key("map") == "dev_cosine_map@100"
    assert evaluator_key("MRR@5") == "dev_cosine_mrr@5"
