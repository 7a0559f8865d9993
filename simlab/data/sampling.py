"""Pair sampling for the siamese matcher: positives from a record's group, hard and random negatives.

For every query record of a split (records of a group of two or more, up to
`limit_queries` of them) `sample_pairs` builds, with `half_up(x) = floor(x + 0.5)`:

- positives: the other records of its group in the split, at most
  `limit_pos_pairs_per_query` (a seeded sample when there are more): `n_pos` pairs;
- `n_neg = half_up(n_pos * pos_neg_ratio)` negatives, of which
  `n_hard = half_up(n_neg * hard_soft_ratio)` are hard: the miner's best-ranked records of
  other groups. Mined records of the query's own group are skipped and counted as
  `false_negatives_skipped` (they are positives a naive miner would have labelled 0);
- the other `n_neg - n_hard` negatives are random records of other groups.

Negatives are drawn from the same split as the query, never twice for one query. When the
miner runs out of candidates, the missing hard negatives are drawn at random instead
(`hard_shortfall`); when the split has too few records of other groups, fewer negatives are
built (`neg_shortfall`). Everything is deterministic in `seed`.

A record is in its own group, so a pair (a, b) of one group appears once with a as query
and once with b as query (both directions), as the per-query definition implies.

For labelled pairs (DeepMatcher layout) nothing is sampled: `limit_labelled_pairs` keeps the
given pairs and applies `limit_pos_pairs_per_query` and `limit_queries`.
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simlab.data.matching import LabelledPairs, Records
from simlab.errors import ConfigError, DataError

HardMiner = Callable[[Sequence[int], Sequence[int], int], list[list[int]]]
"""`miner(queries, pool, k)`: for each query record index, up to `k` record indices taken from
`pool`, most similar first. The query itself and records of its group may be among them;
`sample_pairs` skips them."""

KINDS = ("pos", "hard", "random")


def half_up(x: float) -> int:
    """Round half up (`half_up(2.5) == 3`), unlike Python's `round` (`round(2.5) == 2`)."""
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class SamplingConfig:
    """How pairs are sampled for one split (use `dataclasses.replace` for per-split limits).

    Attributes:
        pos_neg_ratio: Negatives per positive, >= 0 (2.0: two negatives per positive).
        hard_soft_ratio: Share of negatives that are hard (mined), in [0, 1]; the rest are random.
        limit_pos_pairs_per_query: At most this many positives per query, or None (all).
        limit_queries: At most this many query records (a seeded sample), or None (all).
        seed: Random seed.
    """

    pos_neg_ratio: float = 1.0
    hard_soft_ratio: float = 0.0
    limit_pos_pairs_per_query: int | None = None
    limit_queries: int | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        ratio = self.pos_neg_ratio
        if not _is_number(ratio) or not (math.isfinite(ratio) and ratio >= 0):
            raise ConfigError(f"pos_neg_ratio={ratio!r} must be a number >= 0 (1.0: one negative per positive).")
        share = self.hard_soft_ratio
        if not _is_number(share) or not 0 <= share <= 1:
            raise ConfigError(f"hard_soft_ratio={share!r} must be a number in [0, 1] (the share of hard negatives).")
        for name in ("limit_pos_pairs_per_query", "limit_queries"):
            _check_limit(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ConfigError(f"seed={self.seed!r} must be an integer.")


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _check_limit(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer, or None for no limit.")


@dataclass(frozen=True)
class SampledPairs:
    """Sampled pairs as record indices, with label (1 = match) and kind (`"pos"`, `"hard"`, `"random"`).

    Attributes:
        left_idx: Query record index per pair.
        right_idx: Other record index per pair.
        labels: 1 for `"pos"` pairs, 0 for `"hard"` and `"random"` ones.
        kinds: How each pair was made.
        false_negatives_skipped: Mined candidates that were in the query's group (skipped).
        hard_shortfall: Hard negatives the miner could not supply (drawn at random instead).
        neg_shortfall: Negatives not built because the split had too few other-group records.
    """

    left_idx: list[int]
    right_idx: list[int]
    labels: list[int]
    kinds: list[str]
    false_negatives_skipped: int = 0
    hard_shortfall: int = 0
    neg_shortfall: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """Pairs of each kind, plus the mining and shortfall counters."""
        counts = dict.fromkeys(KINDS, 0)
        for kind in self.kinds:
            counts[kind] += 1
        counts["false_negatives_skipped"] = self.false_negatives_skipped
        counts["hard_shortfall"] = self.hard_shortfall
        counts["neg_shortfall"] = self.neg_shortfall
        return counts

    def to_labelled(self, records: Records, split: str) -> LabelledPairs:
        """The same pairs as record ids (`LabelledPairs`), the form labelled datasets come in."""
        return LabelledPairs(
            [records.ids[i] for i in self.left_idx],
            [records.ids[i] for i in self.right_idx],
            list(self.labels),
            split,
            records.source,
        )


def sample_pairs(
    records: Records, indices: Sequence[int], cfg: SamplingConfig, hard_miner: HardMiner | None = None
) -> SampledPairs:
    """Build positive, hard negative and random negative pairs among `records[indices]`.

    Args:
        records: Records with group ids.
        indices: The split's record indices (e.g. one value of `group_split`); queries,
            positives and negatives all come from them.
        cfg: Ratios, limits and seed (see the module docstring for the exact counts).
        hard_miner: Ranks candidates for hard negatives (`simlab.training.mining.bm25_miner(...)`, or one built on the
            current model); needed when `cfg.hard_soft_ratio > 0`.

    Raises:
        DataError: the records have no group ids, or an index is out of range or repeated.
        ConfigError: hard negatives are asked for without a miner.
    """
    groups = records.groups
    if groups is None:
        raise DataError(
            f"{records.source or 'records'}: no group ids, so pairs cannot be sampled; read the records "
            "with group_field=<the group column>, or use labelled pairs (limit_labelled_pairs)."
        )
    pool = _check_indices(indices, len(records))
    if cfg.hard_soft_ratio > 0 and cfg.pos_neg_ratio > 0 and hard_miner is None:
        raise ConfigError(
            f"hard_soft_ratio={cfg.hard_soft_ratio} asks for hard negatives but no miner was given; pass "
            "hard_miner=bm25_miner(records) (or a model miner), or set hard_soft_ratio to 0."
        )
    rng = random.Random(cfg.seed)
    members: dict[str, list[int]] = {}
    for i in pool:
        members.setdefault(groups[i], []).append(i)
    queries = [i for i in pool if len(members[groups[i]]) > 1]
    if cfg.limit_queries is not None and len(queries) > cfg.limit_queries:
        keep = set(rng.sample(queries, cfg.limit_queries))
        queries = [q for q in queries if q in keep]

    plan: list[tuple[int, list[int], int, int]] = []  # (query, positives, n_hard, n_random)
    for q in queries:
        positives = [i for i in members[groups[q]] if i != q]
        if cfg.limit_pos_pairs_per_query is not None and len(positives) > cfg.limit_pos_pairs_per_query:
            keep = set(rng.sample(positives, cfg.limit_pos_pairs_per_query))
            positives = [i for i in positives if i in keep]
        n_neg = half_up(len(positives) * cfg.pos_neg_ratio)
        n_hard = half_up(n_neg * cfg.hard_soft_ratio)
        plan.append((q, positives, n_hard, n_neg - n_hard))

    mined = _mine(hard_miner, plan, pool, members, groups)
    left: list[int] = []
    right: list[int] = []
    kinds: list[str] = []
    false_negatives = hard_shortfall = neg_shortfall = 0
    for q, positives, n_hard, n_random in plan:
        group = groups[q]
        hard: list[int] = []
        used: set[int] = set()
        for c in mined.get(q, ()):
            if len(hard) == n_hard:
                break
            if c == q or c in used:
                continue
            if groups[c] == group:
                false_negatives += 1
                continue
            hard.append(c)
            used.add(c)
        hard_shortfall += n_hard - len(hard)
        n_random += n_hard - len(hard)
        available = len(pool) - len(members[group]) - len(hard)
        neg_shortfall += max(0, n_random - available)
        randoms = _random_others(rng, pool, groups, group, used, min(n_random, available), available)
        for items, kind in ((positives, "pos"), (hard, "hard"), (randoms, "random")):
            left.extend([q] * len(items))
            right.extend(items)
            kinds.extend([kind] * len(items))
    labels = [1 if k == "pos" else 0 for k in kinds]
    return SampledPairs(left, right, labels, kinds, false_negatives, hard_shortfall, neg_shortfall)


def _check_indices(indices: Sequence[int], n: int) -> list[int]:
    pool = [int(i) for i in indices]
    bad = next((i for i in pool if not 0 <= i < n), None)
    if bad is not None:
        raise DataError(f"record index {bad} is out of range for {n} records.")
    if len(set(pool)) != len(pool):
        raise DataError("the split's record indices repeat a record; pass each index once.")
    return pool


def _mine(
    hard_miner: HardMiner | None,
    plan: list[tuple[int, list[int], int, int]],
    pool: list[int],
    members: dict[str, list[int]],
    groups: list[str],
) -> dict[int, list[int]]:
    """Mined candidates per query that needs hard negatives (deep enough to skip its own group)."""
    wanted = [(q, n_hard) for q, _, n_hard, _ in plan if n_hard > 0]
    if not wanted or hard_miner is None:
        return {}
    k = min(len(pool), max(n_hard + len(members[groups[q]]) for q, n_hard in wanted))
    query_ids = [q for q, _ in wanted]
    ranked = hard_miner(query_ids, pool, k)
    if len(ranked) != len(query_ids):
        raise ValueError(f"the hard-negative miner returned {len(ranked)} lists for {len(query_ids)} queries.")
    in_pool = set(pool)
    out = {}
    for q, cands in zip(query_ids, ranked):
        cands = [int(c) for c in cands]
        stray = next((c for c in cands if c not in in_pool), None)
        if stray is not None:
            raise ValueError(f"the hard-negative miner returned record {stray}, which is not in the pool.")
        out[q] = cands
    return out


def _random_others(
    rng: random.Random,
    pool: list[int],
    groups: list[str],
    group: str,
    used: set[int],
    need: int,
    available: int,
) -> list[int]:
    """`need` distinct pool records outside `group` and `used`, drawn at random."""
    if need <= 0:
        return []
    if 2 * (available - need) < len(pool):  # few eligible records: sample from the explicit list
        candidates = [i for i in pool if groups[i] != group and i not in used]
        return rng.sample(candidates, need)
    chosen: list[int] = []
    taken = set(used)
    while len(chosen) < need:  # rejection sampling: every draw succeeds with probability >= 1/2
        c = pool[rng.randrange(len(pool))]
        if groups[c] != group and c not in taken:
            chosen.append(c)
            taken.add(c)
    return chosen


def limit_labelled_pairs(
    pairs: LabelledPairs,
    *,
    limit_pos_pairs_per_query: int | None = None,
    limit_queries: int | None = None,
    seed: int = 42,
) -> LabelledPairs:
    """Given labelled pairs, limited per query (left id); nothing is sampled or relabelled.

    Args:
        pairs: One split's pairs.
        limit_pos_pairs_per_query: Keep at most this many label-1 pairs per left id (a seeded
            sample); label-0 pairs are all kept.
        limit_queries: Keep the pairs of at most this many left ids (a seeded sample).
        seed: Random seed.

    Returns:
        The kept pairs, in their original order.

    Raises:
        ConfigError: a limit is not a positive integer or None.
    """
    _check_limit("limit_pos_pairs_per_query", limit_pos_pairs_per_query)
    _check_limit("limit_queries", limit_queries)
    rng = random.Random(seed)
    queries = list(dict.fromkeys(pairs.left_ids))
    keep_queries = set(queries)
    if limit_queries is not None and len(queries) > limit_queries:
        keep_queries = set(rng.sample(queries, limit_queries))
    rows = [i for i, q in enumerate(pairs.left_ids) if q in keep_queries]
    if limit_pos_pairs_per_query is not None:
        positives: dict[str, list[int]] = {}
        for i in rows:
            if pairs.labels[i] == 1:
                positives.setdefault(pairs.left_ids[i], []).append(i)
        dropped: set[int] = set()
        for rows_q in positives.values():
            if len(rows_q) > limit_pos_pairs_per_query:
                dropped.update(set(rows_q) - set(rng.sample(rows_q, limit_pos_pairs_per_query)))
        rows = [i for i in rows if i not in dropped]
    return LabelledPairs(
        [pairs.left_ids[i] for i in rows],
        [pairs.right_ids[i] for i in rows],
        [pairs.labels[i] for i in rows],
        pairs.split,
        pairs.source,
    )
