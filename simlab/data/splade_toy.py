"""The SPLADE repository's toy data layout (naver/splade `data/toy_data/`), read in place.

Layout::

    full_collection/raw.tsv     pid<TAB>text
    dev_queries/raw.tsv         qid<TAB>text
    qrel/qrel.json              {qid: {pid: relevance}}
    triplets/raw.tsv            query<TAB>positive<TAB>negative   (texts; `data.triples`)

The qrels become the `dev` split. The toy files repeat query ids with other texts
(`786786` is "Androgen receptor define" and later "sdsdsd"): the first text of an id is kept
and the collection's notes say how many lines were skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from simlab.data.lines import iter_lines
from simlab.data.trec import drop_unknown
from simlab.errors import DataError
from simlab.records import Collection, Corpus, Queries

MARKER = "full_collection/raw.tsv"


def _id_text(path: Path) -> list[tuple[str, str, int]]:
    rows = []
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t", 1)
        if len(fields) != 2 or not fields[0].strip():
            raise DataError(f"{path}:{lineno}: expected `id<TAB>text`.")
        rows.append((fields[0].strip(), fields[1].strip(), lineno))
    return rows


def read_splade_toy(path: Path) -> Collection:
    """Read the folder into a `Collection` with one qrels split, `dev`.

    Raises:
        DataError: a file is missing or a line is malformed (names `file:line`).
    """
    path = Path(path)
    docs = _id_text(path / MARKER)
    seen: dict[str, int] = {}
    for pid, _, lineno in docs:
        if pid in seen:
            raise DataError(f"{path / MARKER}:{lineno}: passage id {pid!r} already on line {seen[pid]}.")
        seen[pid] = lineno
    corpus = Corpus([d[0] for d in docs], [d[1] for d in docs])
    text_of: dict[str, str] = {}
    skipped = 0
    for qid, text, _ in _id_text(path / "dev_queries" / "raw.tsv"):
        if qid in text_of:
            skipped += 1
            continue
        text_of[qid] = text
    queries = Queries(list(text_of), list(text_of.values()))
    qrel_file = path / "qrel" / "qrel.json"
    try:
        raw = json.loads(qrel_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{qrel_file}: file not found.") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{qrel_file}:{e.lineno}: invalid JSON ({e.msg}).") from None
    judgements = {str(q): {str(d): int(r) for d, r in docs_.items()} for q, docs_ in raw.items()}
    qrels, note = drop_unknown(judgements, corpus.ids, queries.ids, "qrel/qrel.json")
    notes = [note] if note else []
    if skipped:
        notes.append(
            f"dev_queries/raw.tsv: {skipped} lines repeat a query id with another text; "
            "the first text of each id is kept."
        )
    return Collection(path.name, corpus, queries, {"dev": qrels}, tuple(notes))
