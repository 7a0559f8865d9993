"""The BEIR folder layout: `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`.

Layout (as written by `write_beir` and read by `read_beir`)::

    corpus.jsonl      {"_id": "d1", "title": "...", "text": "..."}   one document per line
    queries.jsonl     {"_id": "q1", "text": "..."}                    one query per line
    qrels/test.tsv    query-id<TAB>corpus-id<TAB>score                header line, then one judgement per line

Every `qrels/*.tsv` becomes one entry of `Collection.qrels`, keyed by the file stem (the split).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simlab.data.lines import iter_jsonl, iter_lines
from simlab.data.trec import add_judgement, drop_unknown, parse_grade
from simlab.errors import DataError
from simlab.fsutil import staged_dir
from simlab.records import Collection, Corpus, Qrels, Queries

CORPUS_FILE = "corpus.jsonl"
QUERIES_FILE = "queries.jsonl"
QRELS_DIR = "qrels"
QRELS_HEADER = ("query-id", "corpus-id", "score")
LAYOUT = "BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)"


def read_beir(path: Path) -> Collection:
    """Read a BEIR folder into a `Collection` named after the folder.

    Judgements that name unknown queries or documents are left out and reported in
    `Collection.notes`. A folder without `qrels/*.tsv` gives a collection without qrels (and
    a note).

    Raises:
        DataError: a required file is missing, the corpus is empty, or a line is malformed (the message
            names `file:line` and what was expected).
    """
    path = Path(path)
    for name in (CORPUS_FILE, QUERIES_FILE):
        if not (path / name).is_file():
            raise DataError(f"{path}: missing {name}; the {LAYOUT} needs it.")
    ids, titles, texts = [], [], []
    for where, obj in _iter_records(path / CORPUS_FILE, "document"):
        ids.append(_field(obj, "_id", where))
        titles.append(_field(obj, "title", where, default=""))
        texts.append(_field(obj, "text", where))
    if not ids:
        raise DataError(
            f"{path / CORPUS_FILE}: the file is empty (no document); write one JSON object per document line, "
            '{"_id": ..., "title": ..., "text": ...}.'
        )
    corpus = Corpus(ids, texts, titles)
    qids, qtexts = [], []
    for where, obj in _iter_records(path / QUERIES_FILE, "query"):
        qids.append(_field(obj, "_id", where))
        qtexts.append(_field(obj, "text", where))
    queries = Queries(qids, qtexts)

    qrels: dict[str, Qrels] = {}
    notes: list[str] = []
    qrels_files = sorted((path / QRELS_DIR).glob("*.tsv"))
    if not qrels_files:
        notes.append(f"{path.name}: no {QRELS_DIR}/<split>.tsv file, so the collection has no qrels")
    for file in qrels_files:
        split_qrels, note = drop_unknown(_read_qrels_tsv(file), corpus.ids, queries.ids, f"{QRELS_DIR}/{file.name}")
        qrels[file.stem] = split_qrels
        if note:
            notes.append(note)
    return Collection(path.name, corpus, queries, qrels, tuple(notes))


def write_beir(collection: Collection, out: Path, overwrite: bool = False) -> None:
    """Write `collection` as a BEIR folder, atomically (nothing partial is left on failure).

    Args:
        collection: what to write; each qrels split becomes `qrels/<split>.tsv`.
        out: the folder to create.
        overwrite: replace `out` if it already exists.

    Raises:
        DataError: `out` exists and `overwrite` is False, or an id / split name cannot be
            written in the layout (tab or newline in an id, `/` in a split name).
    """
    out = Path(out)
    refuse = DataError(
        f"{out} already exists; pass overwrite=True (`--overwrite` on the command line) to replace it, "
        "or choose another output folder."
    )
    if out.exists() and not overwrite:
        raise refuse
    try:
        with staged_dir(out, overwrite=overwrite) as tmp:
            corpus = collection.corpus
            docs = zip(corpus.ids, corpus.titles, corpus.texts)
            _write_jsonl(tmp / CORPUS_FILE, ({"_id": i, "title": t, "text": x} for i, t, x in docs))
            queries = zip(collection.queries.ids, collection.queries.texts)
            _write_jsonl(tmp / QUERIES_FILE, ({"_id": i, "text": t} for i, t in queries))
            (tmp / QRELS_DIR).mkdir()
            for split, qrels in collection.qrels.items():
                _write_qrels_tsv(tmp / QRELS_DIR / f"{_check_split(split)}.tsv", qrels)
    except FileExistsError:  # `out` appeared while we were writing
        raise refuse from None


# ---------------------------------------------------------------- reading helpers


def _iter_records(path: Path, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, JSON object) per non-blank line; duplicate `_id`s are an error."""
    seen: dict[str, str] = {}
    for where, obj in iter_jsonl(path, what):
        _id = _field(obj, "_id", where)
        if _id in seen:
            raise DataError(f"{where}: {what} id {_id!r} already appeared on line {seen[_id]}; ids must be unique.")
        seen[_id] = where.rsplit(":", 1)[1]
        yield where, obj


def _field(obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    """obj[key] as a string; ids may be JSON numbers. Missing keys fall back to `default`."""
    if key not in obj or obj[key] is None:
        if default is not None:
            return default
        raise DataError(f"{where}: missing key `{key}`; add it to the JSON object on this line.")
    value = obj[key]
    if isinstance(value, str):
        return value
    if key == "_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{where}: key `{key}` must be a string, got {type(value).__name__}.")


def _read_qrels_tsv(path: Path) -> dict[str, dict[str, int]]:
    judgements: dict[str, dict[str, int]] = {}
    first = True
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        if first and fields and fields[0] == QRELS_HEADER[0]:
            first = False
            continue
        first = False
        where = f"{path}:{lineno}"
        if len(fields) != 3:
            raise DataError(f"{where}: expected 3 tab-separated fields `query-id corpus-id score`, got {len(fields)}.")
        qid, docid, score = fields
        add_judgement(judgements, qid, docid, parse_grade(score, where), where)
    return judgements


# ---------------------------------------------------------------- writing helpers


def _write_jsonl(path: Path, rows: Iterator[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_qrels_tsv(path: Path, qrels: Qrels) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(QRELS_HEADER) + "\n")
        for qid, docs in qrels.judgements.items():
            for docid, rel in docs.items():
                for value, what in ((qid, "query id"), (docid, "document id")):
                    if not value or any(c in value for c in "\t\r\n"):
                        raise DataError(
                            f"{path.name}: {what} {value!r} is empty or contains a tab or line break, "
                            "which a qrels TSV cannot hold; rename it."
                        )
                f.write(f"{qid}\t{docid}\t{int(rel)}\n")


def _check_split(split: str) -> str:
    if not split or any(c in split for c in "/\\\0") or split.startswith("."):
        raise DataError(f"qrels split name {split!r} cannot be a file name; use a plain name such as `test` or `dev`.")
    return split
