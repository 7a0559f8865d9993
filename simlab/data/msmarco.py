"""The MS MARCO passage layout: `collection.tsv`, `queries.<split>.tsv`, `qrels.<split>.tsv`.

Layout::

    collection.tsv          pid<TAB>text                  one passage per line, no header
    queries.<split>.tsv     qid<TAB>text                  e.g. queries.train.tsv, queries.dev.small.tsv
    qrels.<split>.tsv       qid 0 pid rel                 TREC qrels, whitespace separated
    triples*.tsv            query<TAB>positive<TAB>negative   training texts (see `read_triples`)

All query files are merged into one `Queries` (a qid that appears in several files must have
the same text); each qrels file becomes one split of `Collection.qrels`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from simlab.data.lines import iter_lines
from simlab.data.trec import drop_unknown, read_trec_qrels
from simlab.errors import DataError
from simlab.records import Collection, Corpus, Qrels, Queries

COLLECTION_FILE = "collection.tsv"
LAYOUT = "MS MARCO layout (collection.tsv, queries.<split>.tsv, qrels.<split>.tsv)"


def read_msmarco(path: Path) -> Collection:
    """Read an MS MARCO passage folder into a `Collection` named after the folder.

    Raises:
        DataError: `collection.tsv` or every `queries.<split>.tsv` is missing, or a line is
            malformed (the message names `file:line`).
    """
    path = Path(path)
    if not (path / COLLECTION_FILE).is_file():
        raise DataError(f"{path}: missing {COLLECTION_FILE}; the {LAYOUT} needs it.")
    ids, texts = [], []
    seen: dict[str, int] = {}
    for where, lineno, pid, text in _iter_id_text(path / COLLECTION_FILE, "pid"):
        if pid in seen:
            raise DataError(f"{where}: passage id {pid!r} already appeared on line {seen[pid]}; ids must be unique.")
        seen[pid] = lineno
        ids.append(pid)
        texts.append(text)
    corpus = Corpus(ids, texts)

    query_files = sorted(path.glob("queries.*.tsv"))
    if not query_files:
        raise DataError(f"{path}: no queries.<split>.tsv file; the {LAYOUT} needs at least one.")
    queries = _read_queries(query_files)

    qrels: dict[str, Qrels] = {}
    notes: list[str] = []
    for file in sorted(path.glob("qrels.*.tsv")):
        split_qrels, note = drop_unknown(read_trec_qrels(file).judgements, corpus.ids, queries.ids, file.name)
        qrels[_split_name(file, "qrels")] = split_qrels
        if note:
            notes.append(note)
    return Collection(path.name, corpus, queries, qrels, tuple(notes))


def read_triples(path: Path) -> list[tuple[str, str, str]]:
    """Read training triples: `query<TAB>positive passage<TAB>negative passage` per line (texts).

    Blank lines are skipped.

    Raises:
        DataError: a line does not have exactly 3 tab-separated fields (names `file:line`).
    """
    path = Path(path)
    triples = []
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(
                f"{path}:{lineno}: expected 3 tab-separated fields `query<TAB>positive<TAB>negative`, "
                f"got {len(fields)}."
            )
        triples.append((fields[0], fields[1], fields[2]))
    return triples


def _read_queries(files: list[Path]) -> Queries:
    text_of: dict[str, str] = {}
    origin: dict[str, str] = {}
    for file in files:
        for where, _, qid, text in _iter_id_text(file, "qid"):
            if qid in text_of and text_of[qid] != text:
                raise DataError(
                    f"{where}: query {qid!r} has a different text than at {origin[qid]}; a query id must "
                    "have one text across all queries.<split>.tsv files."
                )
            text_of.setdefault(qid, text)
            origin.setdefault(qid, where)
    return Queries(list(text_of), list(text_of.values()))


def _iter_id_text(path: Path, id_name: str) -> Iterator[tuple[str, int, str, str]]:
    """(`file:line`, line number, id, text) for each non-blank `id<TAB>text` line."""
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t", 1)
        where = f"{path}:{lineno}"
        if len(fields) != 2:
            raise DataError(f"{where}: expected 2 tab-separated fields `{id_name}<TAB>text`, got {len(fields)}.")
        if not fields[0].strip():
            raise DataError(f"{where}: empty {id_name} in the first column of `{id_name}<TAB>text`.")
        yield where, lineno, fields[0].strip(), fields[1]


def _split_name(file: Path, prefix: str) -> str:
    """`qrels.dev.small.tsv` -> `dev.small`."""
    return file.name[len(prefix) + 1 : -len(".tsv")]
