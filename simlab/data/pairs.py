"""Training and dev pairs for dense retrieval, from qrels or from the corpus itself.

A collection with a training qrels split gives (query text, relevant document text) pairs.
A collection without one (Cranfield, CISI: every query is a test query) gives
(title, body) pairs from the corpus, a standard self-supervised substitute; the run's
report says which source was used. The dev set evaluated every epoch comes from the dev
qrels split, or from held-out pairs that are never trained on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simlab.errors import DataError
from simlab.records import Collection

DEV_HOLDOUT = 200  # title->body pairs held out for per-epoch evaluation when there are no dev qrels


@dataclass(frozen=True)
class DevSet:
    """What the per-epoch evaluator ranks: queries, documents, and the relevant doc ids per query."""

    queries: dict[str, str]
    relevant: dict[str, set[str]]
    corpus: dict[str, str]
    source: str


@dataclass(frozen=True)
class TrainingPairs:
    """(anchor, positive) texts with the positive's doc id, plus the document side they come from.

    `doc_texts` maps every doc id to its text in the form positives take (full text for
    qrels pairs, body without title for corpus pairs); mining and the dev evaluator rank it.
    """

    anchors: list[str]
    positive_ids: list[str]
    doc_texts: dict[str, str]
    source: str
    dev: DevSet

    @property
    def positives(self) -> list[str]:
        return [self.doc_texts[d] for d in self.positive_ids]


def _body_without_title(title: str, text: str) -> str:
    """Cranfield's abstracts repeat the title: drop it, or the pair task is copying."""
    if title and text.lower().startswith(title.lower()):
        return text[len(title) :].lstrip(" .:;,-\n").strip()
    return text


def dev_from_qrels(collection: Collection, split: str) -> DevSet:
    judged = collection.qrels[split]
    q_text = dict(zip(collection.queries.ids, collection.queries.texts))
    ids = [q for q in judged.query_ids() if q in q_text]
    relevant = {q: {d for d, r in judged.judgements[q].items() if r > 0} for q in ids}
    corpus = dict(zip(collection.corpus.ids, collection.corpus.full_texts()))
    return DevSet({q: q_text[q] for q in ids}, relevant, corpus, f"qrels split '{split}' ({len(ids)} queries)")


def build_pairs(
    collection: Collection, train_split: str, dev_split: str, seed: int, max_pairs: int | None = None
) -> TrainingPairs:
    """Training pairs and the dev set, following the rules in the module docstring."""
    rng = random.Random(seed)
    corpus = collection.corpus
    held_out: list[tuple[str, str]] = []
    if train_split in collection.qrels:
        doc_texts = dict(zip(corpus.ids, corpus.full_texts()))
        q_text = dict(zip(collection.queries.ids, collection.queries.texts))
        pairs = [
            (q_text[q], d)
            for q, judged in collection.qrels[train_split].judgements.items()
            for d, rel in judged.items()
            if rel > 0 and q in q_text and d in doc_texts
        ]
        source = f"qrels split '{train_split}' ({len(pairs)} query-document pairs)"
    else:
        doc_texts = {d: _body_without_title(t, x) for d, t, x in zip(corpus.ids, corpus.titles, corpus.texts)}
        pairs = [(t, d) for d, t in zip(corpus.ids, corpus.titles) if t.strip() and doc_texts[d].strip()]
        rng.shuffle(pairs)
        n_dev = 0 if dev_split in collection.qrels else min(DEV_HOLDOUT, len(pairs) // 10)
        held_out, pairs = pairs[:n_dev], pairs[n_dev:]
        source = (
            f"corpus title -> body pairs ({len(pairs)}): the collection has no '{train_split}' qrels split, "
            "so the model learns from the documents themselves, not from real queries"
        )
    if not pairs:
        raise DataError(
            f"{collection.name}: no training pairs: no '{train_split}' qrels split with relevant documents, "
            "and no documents with both a title and a body. Set train.enabled: false to evaluate only."
        )
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = rng.sample(pairs, max_pairs)
    if dev_split in collection.qrels:
        dev = dev_from_qrels(collection, dev_split)
    else:
        dev = DevSet(
            {f"heldout-{i}": a for i, (a, _) in enumerate(held_out)},
            {f"heldout-{i}": {d} for i, (_, d) in enumerate(held_out)},
            doc_texts,  # bodies without titles: a held-out title must not find itself verbatim
            f"{len(held_out)} held-out title -> body pairs (never trained on)",
        )
    return TrainingPairs(
        anchors=[a for a, _ in pairs],
        positive_ids=[d for _, d in pairs],
        doc_texts=doc_texts,
        source=source,
        dev=dev,
    )
