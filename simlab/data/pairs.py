"""Training and dev pairs for dense retrieval, from qrels or from the corpus itself.

A collection with a training qrels split gives (query text, relevant document text) pairs.
A collection without one (Cranfield, CISI: every query is a test query) gives
(title, body) pairs from the corpus, a standard self-supervised substitute; the run's
report says which source was used. The dev set (evaluated every epoch, and the val set a run
chooses its system by) comes from the dev qrels split; without one, from a share of the train
queries held out (never trained on); without train queries, from a share of the test queries
held out (never reported as test: the run scores test on the others), or, when the test split
has too few queries too, from held-out title -> body pairs. Title -> body pairs are only a last
resort for choosing a system: a title shares its words with its body, so they favour BM25.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simlab.errors import DataError
from simlab.records import Collection, Qrels

DEV_HOLDOUT = 200  # title->body pairs held out for per-epoch evaluation when there are no dev qrels
DEV_QUERY_SHARE = 0.1  # train queries held out as the dev set when there are train qrels but no dev qrels
VAL_TEST_SHARE = 0.3  # test queries held out as the dev set when there are neither train nor dev qrels


@dataclass(frozen=True)
class DevSet:
    """What the per-epoch evaluator ranks: queries, documents, and the relevant doc ids per query."""

    queries: dict[str, str]
    relevant: dict[str, set[str]]
    corpus: dict[str, str]
    source: str
    qrels: Qrels = Qrels({})  # graded judgements of `queries` (1 for held-out pairs)
    full_corpus: bool = True  # `corpus` is the collection's full texts (else bodies without titles)
    split: str | None = None  # the qrels split `queries` come from (None: held-out title -> body pairs)


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
    return _query_dev(collection, split, ids, f"qrels split '{split}' ({len(ids)} queries)")


def _query_dev(collection: Collection, split: str, ids: list[str], source: str) -> DevSet:
    judged = collection.qrels[split].judgements
    q_text = dict(zip(collection.queries.ids, collection.queries.texts))
    relevant = {q: {d for d, r in judged[q].items() if r > 0} for q in ids}
    corpus = dict(zip(collection.corpus.ids, collection.corpus.full_texts()))
    queries = {q: q_text[q] for q in ids}
    return DevSet(queries, relevant, corpus, source, Qrels({q: judged[q] for q in ids}), split=split)


def held_out_queries(collection: Collection, split: str, seed: int, share: float = DEV_QUERY_SHARE) -> list[str]:
    """The queries of qrels `split` held out as the dev set: a `share` drawn with `seed`, none when fewer than 10
    of them have a relevant document."""
    q_text = set(collection.queries.ids)
    ids = [q for q in collection.qrels[split].query_ids() if q in q_text]
    if len(ids) < 10:
        return []
    return sorted(random.Random(seed).sample(ids, max(1, round(len(ids) * share))))


def build_pairs(
    collection: Collection,
    train_split: str,
    dev_split: str | None,
    seed: int,
    max_pairs: int | None = None,
    test_split: str | None = None,
) -> TrainingPairs:
    """Training pairs and the dev set, following the rules in the module docstring (`test_split`: the split a
    share of whose queries may be held out as the dev set)."""
    rng = random.Random(seed)
    corpus = collection.corpus
    held_out: list[tuple[str, str]] = []
    dev_queries: list[str] = []
    test_held: list[str] = []
    if train_split in collection.qrels:
        doc_texts = dict(zip(corpus.ids, corpus.full_texts()))
        q_text = dict(zip(collection.queries.ids, collection.queries.texts))
        if dev_split not in collection.qrels:
            dev_queries = held_out_queries(collection, train_split, seed)
        skip = set(dev_queries)
        pairs = [
            (q_text[q], d)
            for q, judged in collection.qrels[train_split].judgements.items()
            for d, rel in judged.items()
            if rel > 0 and q in q_text and d in doc_texts and q not in skip
        ]
        source = f"qrels split '{train_split}' ({len(pairs)} query-document pairs)"
        if dev_queries:
            source += f"; {len(dev_queries)} of its queries held out as the dev set"
    else:
        doc_texts = {d: _body_without_title(t, x) for d, t, x in zip(corpus.ids, corpus.titles, corpus.texts)}
        pairs = [(t, d) for d, t in zip(corpus.ids, corpus.titles) if t.strip() and doc_texts[d].strip()]
        rng.shuffle(pairs)
        if dev_split not in collection.qrels and test_split in collection.qrels:
            test_held = held_out_queries(collection, test_split, seed, VAL_TEST_SHARE)
        n_dev = 0 if dev_split in collection.qrels or test_held else min(DEV_HOLDOUT, len(pairs) // 10)
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
    elif dev_queries:
        held = f"{len(dev_queries)} queries of qrels split '{train_split}' held out (never trained on)"
        dev = _query_dev(collection, train_split, dev_queries, held)
    elif test_held:
        n_test = len(set(collection.qrels[test_split].query_ids()) & set(collection.queries.ids))
        held = (
            f"{len(test_held)} of the {n_test} queries of qrels split '{test_split}' held out as val (seed {seed}), "
            f"since the collection has no train or dev queries; test is scored on the other {n_test - len(test_held)}"
        )
        dev = _query_dev(collection, test_split, test_held, held)
    else:
        dev = DevSet(
            {f"heldout-{i}": a for i, (a, _) in enumerate(held_out)},
            {f"heldout-{i}": {d} for i, (_, d) in enumerate(held_out)},
            doc_texts,  # bodies without titles: a held-out title must not find itself verbatim
            f"{len(held_out)} held-out title -> body pairs (never trained on)",
            Qrels({f"heldout-{i}": {d: 1} for i, (_, d) in enumerate(held_out)}),
            full_corpus=False,
        )
    return TrainingPairs(
        anchors=[a for a, _ in pairs],
        positive_ids=[d for _, d in pairs],
        doc_texts=doc_texts,
        source=source,
        dev=dev,
    )
