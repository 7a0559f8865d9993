"""Hard negatives: for (anchor, positive) training pairs, and the record miners of pair sampling.

Model mining is sentence-transformers' `util.mine_hard_negatives`; BM25 mining ranks the
same document side with bm25s. Both skip the top `range_min` candidates (likely unlabelled
positives), look no deeper than `range_max`, never return a labelled positive of the anchor,
and drop pairs for which fewer than `num` negatives were found (the count is reported).

`bm25_miner` and `model_miner` rank records for `simlab.data.sampling.sample_pairs` (the
`HardMiner` it takes): here, above the data layer, because they search with an index or a model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simlab.data.matching import Records
from simlab.data.pairs import TrainingPairs
from simlab.data.sampling import HardMiner
from simlab.records import Corpus, Queries

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from simlab.config import HardNegativesConfig


@dataclass(frozen=True)
class MinedPairs:
    """Training rows: anchor, positive and `num` negatives each (texts), and how many pairs were dropped."""

    anchors: list[str]
    positives: list[str]
    negatives: list[list[str]]
    dropped: int

    def to_dataset(self):
        """A `datasets.Dataset` with columns anchor, positive, negative_1..negative_n."""
        from datasets import Dataset

        columns = {"anchor": self.anchors, "positive": self.positives}
        for j in range(len(self.negatives[0]) if self.negatives else 0):
            columns[f"negative_{j + 1}"] = [row[j] for row in self.negatives]
        return Dataset.from_dict(columns)


def no_negatives(pairs: TrainingPairs) -> MinedPairs:
    return MinedPairs(pairs.anchors, pairs.positives, [], 0)


def mine_bm25(pairs: TrainingPairs, cfg: HardNegativesConfig) -> MinedPairs:
    """BM25 (bm25s) hard negatives, taken in rank order from [range_min, range_max)."""
    from simlab.index.bm25 import BM25Retriever

    ids = list(pairs.doc_texts)
    retriever = BM25Retriever.build(Corpus(ids, [pairs.doc_texts[d] for d in ids]))
    positives_of: dict[str, set[str]] = defaultdict(set)
    for a, d in zip(pairs.anchors, pairs.positive_ids):
        positives_of[a].add(d)
    unique = list(positives_of)
    run = retriever.search(Queries([str(i) for i in range(len(unique))], unique), k=cfg.range_max)
    ranked = {a: [d for d, _ in run.ranked(str(i))] for i, a in enumerate(unique)}
    rows = []
    for a, d in zip(pairs.anchors, pairs.positive_ids):
        cands = [c for c in ranked[a][cfg.range_min :] if c not in positives_of[a]][: cfg.num]
        if len(cands) == cfg.num:
            rows.append((a, pairs.doc_texts[d], [pairs.doc_texts[c] for c in cands]))
    return MinedPairs([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], len(pairs.anchors) - len(rows))


def mine_model(pairs: TrainingPairs, cfg: HardNegativesConfig, model: SentenceTransformer) -> MinedPairs:
    """The model's own hard negatives through `sentence_transformers.util.mine_hard_negatives`."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    mined = mine_hard_negatives(
        Dataset.from_dict({"anchor": pairs.anchors, "positive": pairs.positives}),
        model,
        corpus=list(pairs.doc_texts.values()),
        range_min=cfg.range_min,
        range_max=cfg.range_max,
        absolute_margin=cfg.margin,
        num_negatives=cfg.num,
        sampling_strategy="top",
        output_format="n-tuple",
        batch_size=256,
        verbose=False,
    )
    cols = [f"negative_{j + 1}" for j in range(cfg.num)]
    negatives = [list(row) for row in zip(*(mined[c] for c in cols))]
    return MinedPairs(list(mined["anchor"]), list(mined["positive"]), negatives, len(pairs.anchors) - len(mined))


def mine(pairs: TrainingPairs, cfg: HardNegativesConfig, model: SentenceTransformer) -> MinedPairs:
    """Dispatch on `cfg.source` (none, bm25, model)."""
    if cfg.source == "bm25":
        return mine_bm25(pairs, cfg)
    if cfg.source == "model":
        return mine_model(pairs, cfg, model)
    return no_negatives(pairs)


def bm25_miner(records: Records, text_fields: Sequence[str] | None = None) -> HardMiner:
    """A `HardMiner` ranking by BM25 (`simlab.index.bm25.BM25Retriever`) over the records' text.

    The text of a record is its `text_fields` (default: all fields) joined by spaces; the
    same text is the query. The index over a pool is built once and reused while the miner is
    called with the same pool. Records sharing no term with the query are not returned.

    Args:
        records: All records (the miner receives indices into them).
        text_fields: Fields to index and query with.
    """
    from simlab.records import Corpus, Queries

    texts = records.texts(text_fields)
    cache: dict[tuple[int, ...], object] = {}

    def miner(queries: Sequence[int], pool: Sequence[int], k: int) -> list[list[int]]:
        from simlab.index.bm25 import BM25Retriever

        key = tuple(pool)
        if key not in cache:
            cache.clear()
            cache[key] = BM25Retriever.build(Corpus([records.ids[i] for i in pool], [texts[i] for i in pool]))
        retriever = cache[key]
        qids = [records.ids[q] for q in queries]
        run = retriever.search(Queries(qids, [texts[q] for q in queries]), k=max(1, k))  # type: ignore[attr-defined]
        return [[records.position[d] for d, _ in run.ranked(qid)] for qid in qids]

    return miner


def model_miner(records: Records, model, text_fields: Sequence[str] | None = None) -> HardMiner:
    """A `HardMiner` ranking by the cosine similarity of `model`'s embeddings of the records' text.

    The records are encoded once, when the miner is made, so a miner made from the current
    model mines that model's hard negatives (make a new one to re-mine after training).
    """
    import numpy as np

    emb = model.encode(records.texts(text_fields), batch_size=256, convert_to_numpy=True, normalize_embeddings=True)

    def miner(queries: Sequence[int], pool: Sequence[int], k: int) -> list[list[int]]:
        pool_idx = np.asarray(pool)
        out = []
        for start in range(0, len(queries), 1024):  # bounded memory: 1024 x len(pool) scores at a time
            chunk = np.asarray(queries[start : start + 1024])
            sims = emb[chunk] @ emb[pool_idx].T  # (chunk, pool)
            kk = min(k, len(pool_idx))
            top = (
                np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
                if kk < len(pool_idx)
                else np.tile(np.arange(len(pool_idx)), (len(chunk), 1))
            )
            for row, cand in zip(sims, top):
                order = cand[np.argsort(-row[cand], kind="stable")]
                out.append([int(pool_idx[j]) for j in order])
        return out

    return miner
