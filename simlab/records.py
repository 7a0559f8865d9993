"""Typed records passed between pipeline stages.

`Corpus`, `Queries`, `Qrels` and `Run` are the interchange format of every stage: readers
produce them, retrievers consume `Queries` and produce a `Run`, metrics consume `Qrels` and
`Run`. They are plain frozen dataclasses and check their own shape on construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from simlab.errors import DataError


def _check_unique(ids: list[str], what: str) -> None:
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise DataError(f"{what}: id {dup!r} occurs more than once; ids must be unique.")


@dataclass(frozen=True)
class Corpus:
    """Documents: parallel lists of ids, titles (may be empty strings) and texts."""

    ids: list[str]
    texts: list[str]
    titles: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.titles:
            object.__setattr__(self, "titles", [""] * len(self.ids))
        if not (len(self.ids) == len(self.texts) == len(self.titles)):
            raise DataError(
                f"Corpus: {len(self.ids)} ids, {len(self.texts)} texts and {len(self.titles)} titles; "
                "the three lists must have the same length."
            )
        _check_unique(self.ids, "Corpus")

    def __len__(self) -> int:
        return len(self.ids)

    def full_texts(self) -> list[str]:
        """Title and text joined, the string a model or BM25 indexes."""
        return [f"{t} {x}".strip() if t else x for t, x in zip(self.titles, self.texts)]


@dataclass(frozen=True)
class Queries:
    """Queries: parallel lists of ids and texts."""

    ids: list[str]
    texts: list[str]

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.texts):
            raise DataError(f"Queries: {len(self.ids)} ids but {len(self.texts)} texts.")
        _check_unique(self.ids, "Queries")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, ids: Iterable[str]) -> Queries:
        """The queries whose id is in `ids`, in this object's order."""
        keep = set(ids)
        pairs = [(i, t) for i, t in zip(self.ids, self.texts) if i in keep]
        return Queries([i for i, _ in pairs], [t for _, t in pairs])


@dataclass(frozen=True)
class Qrels:
    """Relevance judgements: query id -> document id -> graded relevance (int)."""

    judgements: Mapping[str, Mapping[str, int]]

    def query_ids(self) -> list[str]:
        """Queries with at least one relevant (> 0) document, in insertion order."""
        return [q for q, docs in self.judgements.items() if any(r > 0 for r in docs.values())]

    def __len__(self) -> int:
        return sum(len(d) for d in self.judgements.values())


@dataclass(frozen=True)
class Run:
    """A ranked result list per query: query id -> document id -> score (higher is better)."""

    name: str
    scores: Mapping[str, Mapping[str, float]]

    @classmethod
    def from_topk(cls, name: str, query_ids: list[str], doc_ids: list[list[str]], scores) -> Run:
        """Build from per-query top-k lists (`scores` is any [n_queries, k] array-like)."""
        return cls(
            name,
            {
                q: {d: float(s) for d, s in zip(ds, ss) if d is not None}
                for q, ds, ss in zip(query_ids, doc_ids, scores)
            },
        )

    def subset(self, query_ids) -> Run:
        """The rankings of `query_ids` only."""
        return Run(self.name, {q: self.scores[q] for q in query_ids if q in self.scores})

    def ranked(self, query_id: str) -> list[tuple[str, float]]:
        """(doc id, score) pairs of one query, best first.

        Score ties are broken by doc id *descending*, the order trec_eval reads a run file
        in, so a run means the same here, in its TREC file, and in trec_eval / ir_measures.
        """
        items = self.scores.get(query_id, {})
        return sorted(items.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)


@dataclass(frozen=True)
class Collection:
    """A test collection: the corpus, all queries, and qrels per split (`train`, `dev`, `test`)."""

    name: str
    corpus: Corpus
    queries: Queries
    qrels: Mapping[str, Qrels]
    notes: tuple[str, ...] = ()
