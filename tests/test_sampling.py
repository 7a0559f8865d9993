"""Pair sampling: exact counts per kind, limits, determinism, false negatives, labelled-pair limits."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import replace

import pytest

from simlab.data.matching import LabelledPairs, Records, group_split, groups_from_pairs, read_deepmatcher
from simlab.data.sampling import SamplingConfig, half_up, limit_labelled_pairs, sample_pairs
from simlab.errors import ConfigError, DataError
from simlab.training.mining import bm25_miner


def make_records(n_groups: int = 80, seed: int = 0) -> Records:
    """Groups of 1-5 records, contiguous indices; text says which group."""
    rng = random.Random(seed)
    ids, groups, names = [], [], []
    for g in range(n_groups):
        for j in range(rng.choice([1, 2, 2, 3, 4, 5])):
            ids.append(f"r{len(ids)}")
            groups.append(f"g{g}")
            names.append(f"item{g} variant{j}")
    return Records(ids, {"name": names}, groups, "fixture")


def neighbour_miner(queries, pool, k):
    """Ranks the pool by index distance: the query's own group (contiguous) comes first."""
    return [sorted(pool, key=lambda i, q=q: (abs(i - q), i))[:k] for q in queries]


def per_query(pairs):
    counts = defaultdict(Counter)
    for q, kind in zip(pairs.left_idx, pairs.kinds):
        counts[q][kind] += 1
    return {q: (c["pos"], c["hard"], c["random"]) for q, c in counts.items()}


def check_labels(records, pairs, pool):
    for a, b, y, kind in zip(pairs.left_idx, pairs.right_idx, pairs.labels, pairs.kinds):
        assert a in pool and b in pool and a != b
        assert y == (kind == "pos")
        assert (records.groups[a] == records.groups[b]) == (y == 1), "a positive labelled negative (or vice versa)"
    seen = list(zip(pairs.left_idx, pairs.right_idx))
    assert len(seen) == len(set(seen)), "a pair is repeated for one query"


@pytest.mark.parametrize("ratio", [1, 2, 4, 8])
@pytest.mark.parametrize("hard_share", [0.0, 0.3, 0.7, 1.0])
def test_exact_counts(ratio, hard_share):
    records = make_records()
    pool = list(range(len(records)))
    cfg = SamplingConfig(pos_neg_ratio=ratio, hard_soft_ratio=hard_share, seed=3)
    pairs = sample_pairs(records, pool, cfg, neighbour_miner)
    sizes = Counter(records.groups)
    queries = [i for i in pool if sizes[records.groups[i]] > 1]
    assert list(dict.fromkeys(pairs.left_idx)) == queries
    expected = {q: (sizes[records.groups[q]] - 1,) for q in queries}
    got = per_query(pairs)
    for q in queries:
        n_pos = expected[q][0]
        n_neg = half_up(n_pos * ratio)
        n_hard = half_up(n_neg * hard_share)
        assert got[q] == (n_pos, n_hard, n_neg - n_hard), q
    total = {k: sum(v[i] for v in got.values()) for i, k in enumerate(("pos", "hard", "random"))}
    counts = pairs.counts()
    assert {k: counts[k] for k in total} == total
    assert counts["hard_shortfall"] == counts["neg_shortfall"] == 0
    assert counts["pos"] + counts["hard"] + counts["random"] == len(pairs)
    check_labels(records, pairs, set(pool))


def test_hard_negatives_follow_the_miner_and_false_negatives_are_counted():
    records = make_records()
    pool = list(range(len(records)))
    cfg = SamplingConfig(pos_neg_ratio=2, hard_soft_ratio=1.0)
    pairs = sample_pairs(records, pool, cfg, neighbour_miner)
    sizes = Counter(records.groups)
    fn = 0
    for q in dict.fromkeys(pairs.left_idx):
        hard = [b for a, b, k in zip(pairs.left_idx, pairs.right_idx, pairs.kinds) if a == q and k == "hard"]
        ranked = [c for c in neighbour_miner([q], pool, len(pool))[0] if c != q]
        others = [c for c in ranked if records.groups[c] != records.groups[q]]
        assert hard == others[: len(hard)]
        # every group member is nearer than the first other-group record, so all are skipped
        fn += sizes[records.groups[q]] - 1
    assert pairs.counts()["false_negatives_skipped"] == fn > 0


def test_false_negatives_only_counted_until_enough_hard_negatives():
    records = Records(["a", "b", "c", "x", "y"], {"t": ["", "", "", "", ""]}, ["g", "g", "g", "h", "i"])

    def miner(queries, pool, k):
        return [[3, 1, 2, 4, 0] for _ in queries]  # for query 0: x first, then b, c (same group)

    cfg = SamplingConfig(pos_neg_ratio=0.5, hard_soft_ratio=1.0)  # 2 positives -> 1 hard negative
    pairs = sample_pairs(records, range(5), cfg, miner)
    assert pairs.counts()["hard"] == 3
    # query 0 takes x at once; query 1 (b) skips nothing before x; query 2 (c) likewise
    assert pairs.counts()["false_negatives_skipped"] == 0
    pairs = sample_pairs(records, range(5), replace(cfg, pos_neg_ratio=1.0), miner)
    # 2 hard each: x, then b/c skipped (one or two of them are the query itself), then y
    # query 0: skips b, c -> 2; query 1 (b): skips c (b is itself) -> 1; query 2 (c): skips b -> 1
    assert pairs.counts()["false_negatives_skipped"] == 4
    assert pairs.counts()["hard"] == 6


def test_limits():
    records = make_records()
    pool = list(range(len(records)))
    cfg = SamplingConfig(pos_neg_ratio=2, hard_soft_ratio=0.5, limit_pos_pairs_per_query=2, limit_queries=7)
    pairs = sample_pairs(records, pool, cfg, neighbour_miner)
    queries = list(dict.fromkeys(pairs.left_idx))
    assert len(queries) == 7
    got = per_query(pairs)
    sizes = Counter(records.groups)
    for q in queries:
        n_pos = min(2, sizes[records.groups[q]] - 1)
        assert got[q] == (n_pos, half_up(n_pos * 2 * 0.5), n_pos * 2 - half_up(n_pos * 2 * 0.5))
    check_labels(records, pairs, set(pool))
    big = next(i for i in pool if sizes[records.groups[i]] == 5)
    only_big = sample_pairs(records, pool, replace(cfg, limit_queries=None), neighbour_miner)
    assert per_query(only_big)[big][0] == 2


def test_deterministic_in_seed():
    records = make_records()
    pool = list(range(len(records)))
    cfg = SamplingConfig(pos_neg_ratio=4, hard_soft_ratio=0.3, limit_pos_pairs_per_query=2, limit_queries=30, seed=5)
    a = sample_pairs(records, pool, cfg, neighbour_miner)
    b = sample_pairs(records, pool, cfg, neighbour_miner)
    assert a == b
    c = sample_pairs(records, pool, replace(cfg, seed=6), neighbour_miner)
    assert (a.left_idx, a.right_idx) != (c.left_idx, c.right_idx)


def test_pairs_stay_inside_the_split():
    records = make_records(seed=1)
    split = group_split(records.groups, 0.2, 0.2, seed=0)
    for name, ids in split.items():
        pairs = sample_pairs(records, ids, SamplingConfig(pos_neg_ratio=2, hard_soft_ratio=0.5), neighbour_miner)
        assert len(pairs) > 0, name
        check_labels(records, pairs, set(ids))


def test_shortfalls_are_reported():
    records = Records(list("abcde"), {"t": list("abcde")}, ["g", "g", "h", "h", "i"])
    cfg = SamplingConfig(pos_neg_ratio=8, hard_soft_ratio=0.5)  # 1 positive -> 8 negatives, 4 hard
    pairs = sample_pairs(records, range(5), cfg, lambda qs, pool, k: [[] for _ in qs])
    counts = pairs.counts()
    # every query (a, b, c, d) has 3 other-group records: no hard, 3 random, 5 missing
    assert counts == {
        "pos": 4,
        "hard": 0,
        "random": 12,
        "false_negatives_skipped": 0,
        "hard_shortfall": 16,
        "neg_shortfall": 20,
    }
    check_labels(records, pairs, set(range(5)))


def test_errors():
    records = make_records()
    with pytest.raises(ConfigError, match="hard_soft_ratio=0.5 asks for hard negatives but no miner"):
        sample_pairs(records, range(10), SamplingConfig(hard_soft_ratio=0.5))
    no_groups = Records(["a"], {"t": ["x"]}, None, "items.csv")
    with pytest.raises(DataError, match="items.csv: no group ids"):
        sample_pairs(no_groups, [0], SamplingConfig())
    with pytest.raises(DataError, match="out of range"):
        sample_pairs(records, [0, 10_000], SamplingConfig())
    with pytest.raises(DataError, match="repeat"):
        sample_pairs(records, [0, 0], SamplingConfig())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pos_neg_ratio": -1}, "pos_neg_ratio=-1"),
        ({"pos_neg_ratio": float("inf")}, "pos_neg_ratio=inf"),
        ({"hard_soft_ratio": 1.5}, r"hard_soft_ratio=1.5 must be a number in \[0, 1\]"),
        ({"limit_queries": 0}, "limit_queries=0 must be a positive integer"),
        ({"limit_pos_pairs_per_query": 2.5}, "limit_pos_pairs_per_query=2.5"),
        ({"seed": "x"}, "seed='x'"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SamplingConfig(**kwargs)


def test_bm25_miner():
    texts = [
        "red ceramic coffee mug",
        "coffee mug red ceramic 300ml",
        "blue ballpoint pen",
        "red coffee cup",
        "ceramic red vase",
        "green tea",
    ]
    records = Records([f"r{i}" for i in range(6)], {"name": texts}, ["m", "m", "p", "c", "v", "t"])
    miner = bm25_miner(records)
    ranked = miner([0, 2], list(range(6)), 4)
    assert ranked[0][0] in (0, 1) and set(ranked[0][:2]) == {0, 1}
    assert 5 not in ranked[0]  # no shared term
    assert ranked[1] == [2]
    cfg = SamplingConfig(pos_neg_ratio=2, hard_soft_ratio=0.5)
    pairs = sample_pairs(records, range(6), cfg, miner)
    assert pairs.counts()["false_negatives_skipped"] == 2  # each mug finds the other mug first
    hard = [b for a, b, k in zip(pairs.left_idx, pairs.right_idx, pairs.kinds) if k == "hard"]
    assert set(hard) <= {3, 4}
    labelled = pairs.to_labelled(records, "train")
    assert labelled.left_ids[0] == "r0" and labelled.counts()["pos"] == 2


def test_bm25_miner_on_real_data(shared_data):
    data = read_deepmatcher(shared_data / "amazon-google")
    records = groups_from_pairs(data)
    split = group_split(records.groups, 0.1, 0.1, seed=42)
    cfg = SamplingConfig(pos_neg_ratio=2, hard_soft_ratio=0.7, limit_queries=300)
    pairs = sample_pairs(records, split["train"], cfg, bm25_miner(records, ["title", "manufacturer"]))
    counts = pairs.counts()
    assert counts["false_negatives_skipped"] > 0  # BM25 ranks true matches near the top
    assert counts["hard"] + counts["random"] == sum(half_up(n * 2) for n, _, _ in per_query(pairs).values())
    check_labels(records, pairs, set(split["train"]))


# ---------------------------------------------------------------- labelled pairs


def test_limit_labelled_pairs():
    pairs = LabelledPairs(
        ["a", "a", "a", "a", "b", "b", "c"],
        ["1", "2", "3", "4", "1", "5", "6"],
        [1, 1, 0, 1, 1, 0, 0],
        "train",
    )
    assert limit_labelled_pairs(pairs) == pairs
    one = limit_labelled_pairs(pairs, limit_pos_pairs_per_query=1, seed=0)
    assert one.counts() == {"pos": 2, "neg": 3}
    assert [r for q, r, y in zip(one.left_ids, one.right_ids, one.labels) if y == 0] == ["3", "5", "6"]
    assert Counter(q for q, y in zip(one.left_ids, one.labels) if y == 1) == {"a": 1, "b": 1}
    rows = list(zip(pairs.left_ids, pairs.right_ids))
    kept = [rows.index(p) for p in zip(one.left_ids, one.right_ids)]
    assert kept == sorted(kept)  # original order
    assert one == limit_labelled_pairs(pairs, limit_pos_pairs_per_query=1, seed=0)
    two = limit_labelled_pairs(pairs, limit_queries=2, seed=1)
    assert len(set(two.left_ids)) == 2 and two.split == "train"
    with pytest.raises(ConfigError, match="limit_queries=0"):
        limit_labelled_pairs(pairs, limit_queries=0)
