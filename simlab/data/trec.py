"""TREC qrels and run files, plus the line-level helpers every reader in `simlab.data` shares.

Qrels: one judgement per line, `qid 0 docid rel` (whitespace separated). Runs: the standard
six columns `qid Q0 docid rank score tag`. Writers are atomic (`fsutil.write_text`); ranks
start at 1 in descending score, ties broken by doc id (the order of `Run.ranked`).

Example:
    >>> from simlab.records import Run
    >>> print(format_run(Run("bm25", {"q1": {"d2": 1.5, "d1": 1.5, "d3": 0.25}})), end="")
    q1 Q0 d1 1 1.5 bm25
    q1 Q0 d2 2 1.5 bm25
    q1 Q0 d3 3 0.25 bm25
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from simlab.data.lines import iter_lines
from simlab.errors import DataError
from simlab.fsutil import write_text
from simlab.records import Qrels, Run

logger = logging.getLogger("simlab.data")

QRELS_FIELDS = "`qid 0 docid rel`"
RUN_FIELDS = "`qid Q0 docid rank score tag`"


# ---------------------------------------------------------------- shared line helpers


def parse_grade(token: str, where: str) -> int:
    """An integer relevance grade; `"1.0"` is accepted as 1.

    Raises:
        DataError: `token` is not an integer (the message starts with `where`, i.e. `file:line`).
    """
    try:
        return int(token)
    except ValueError:
        pass
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if value.is_integer():
        return int(value)
    raise DataError(f"{where}: expected an integer relevance grade, got {token!r}.")


def add_judgement(judgements: dict[str, dict[str, int]], qid: str, docid: str, grade: int, where: str) -> None:
    """Add one judgement; an exact repeat is ignored, a conflicting one is an error.

    Raises:
        DataError: (qid, docid) was already judged with a different grade.
    """
    docs = judgements.setdefault(qid, {})
    old = docs.get(docid)
    if old is not None and old != grade:
        raise DataError(
            f"{where}: query {qid!r} / document {docid!r} is judged {grade}, but an earlier line "
            f"judged it {old}; keep one judgement per pair."
        )
    docs[docid] = grade


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _examples(ids: set[str], k: int = 5) -> str:
    shown = sorted(ids)[:k]
    more = ", ..." if len(ids) > k else ""
    return ", ".join(shown) + more


def drop_unknown(
    judgements: Mapping[str, Mapping[str, int]],
    doc_ids: Iterable[str],
    query_ids: Iterable[str],
    source: str,
) -> tuple[Qrels, str | None]:
    """Remove judgements naming unknown queries or documents, and describe what was removed.

    Nothing is dropped silently: when something is removed, the returned note (meant for
    `Collection.notes`) gives the counts and a few example ids, and it is logged as a warning.

    Args:
        judgements: query id -> doc id -> grade, as read from `source`.
        doc_ids: the corpus ids.
        query_ids: the query ids.
        source: how the note names the qrels file, e.g. `"qrels/test.tsv"`.

    Returns:
        The qrels that name known queries and documents only, and the note (None if nothing
        was removed).
    """
    docs_known, queries_known = set(doc_ids), set(query_ids)
    kept: dict[str, dict[str, int]] = {}
    bad_queries: set[str] = set()
    bad_docs: set[str] = set()
    n_bad_query = n_bad_doc = 0
    for qid, docs in judgements.items():
        if qid not in queries_known:
            bad_queries.add(qid)
            n_bad_query += len(docs)
            continue
        good = {d: r for d, r in docs.items() if d in docs_known}
        bad_docs.update(d for d in docs if d not in docs_known)
        n_bad_doc += len(docs) - len(good)
        if good:
            kept[qid] = good
    if not (n_bad_query or n_bad_doc):
        return Qrels(kept), None
    parts = []
    if n_bad_doc:
        verb = "names" if n_bad_doc == 1 else "name"
        parts.append(
            f"{_count(n_bad_doc, 'judgement')} {verb} {_count(len(bad_docs), 'unknown document')} "
            f"({_examples(bad_docs)})"
        )
    if n_bad_query:
        verb = "names" if n_bad_query == 1 else "name"
        parts.append(
            f"{_count(n_bad_query, 'judgement')} {verb} {_count(len(bad_queries), 'unknown query')} "
            f"({_examples(bad_queries)})"
        )
    note = f"{source}: {', '.join(parts)}; they were left out"
    logger.warning(note)
    return Qrels(kept), note


# ---------------------------------------------------------------- qrels


def read_trec_qrels(path: Path) -> Qrels:
    """Read a TREC qrels file: `qid 0 docid rel` per line, whitespace separated.

    Blank lines are skipped. Grades are integers; 0 and negative grades are kept as judged.

    Raises:
        DataError: a line has the wrong number of fields, a non-integer grade, or contradicts
            an earlier line (the message names `file:line`).
    """
    path = Path(path)
    judgements: dict[str, dict[str, int]] = {}
    for lineno, line in iter_lines(path):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) != 4:
            raise DataError(f"{where}: expected 4 whitespace-separated fields {QRELS_FIELDS}, got {len(fields)}.")
        qid, _, docid, rel = fields
        add_judgement(judgements, qid, docid, parse_grade(rel, where), where)
    return Qrels(judgements)


def write_trec_qrels(qrels: Qrels, path: Path) -> None:
    """Write `qrels` atomically as `qid 0 docid rel` lines, in the qrels' own order.

    Raises:
        DataError: an id contains whitespace, which the format cannot represent.
    """
    lines = []
    for qid, docs in qrels.judgements.items():
        for docid, rel in docs.items():
            _check_token(qid, "query id", path)
            _check_token(docid, "document id", path)
            lines.append(f"{qid} 0 {docid} {int(rel)}\n")
    write_text(Path(path), "".join(lines))


# ---------------------------------------------------------------- runs


def read_trec_run(path: Path, name: str | None = None) -> Run:
    """Read a TREC run file: `qid Q0 docid rank score tag` per line.

    The rank column is checked but not used: like trec_eval, the order is given by the scores.

    Args:
        path: the run file.
        name: the run's name; defaults to the tag of the first line (or the file stem if the
            file is empty).

    Raises:
        DataError: a line has the wrong number of fields, a non-numeric rank or score, or
            repeats a document for the same query (the message names `file:line`).
    """
    path = Path(path)
    scores: dict[str, dict[str, float]] = {}
    tag = None
    for lineno, line in iter_lines(path):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) != 6:
            raise DataError(f"{where}: expected 6 whitespace-separated fields {RUN_FIELDS}, got {len(fields)}.")
        qid, _, docid, rank, score, line_tag = fields
        try:
            int(rank)
        except ValueError:
            raise DataError(f"{where}: expected an integer rank in column 4, got {rank!r}.") from None
        try:
            value = float(score)
        except ValueError:
            value = math.nan
        if math.isnan(value):
            raise DataError(f"{where}: expected a numeric score in column 5, got {score!r}.")
        docs = scores.setdefault(qid, {})
        if docid in docs:
            raise DataError(f"{where}: document {docid!r} is listed twice for query {qid!r}.")
        docs[docid] = value
        tag = tag or line_tag
    return Run(name or tag or path.stem, scores)


def format_run(run: Run) -> str:
    """The text of `run` in the six-column TREC format (see `write_trec_run`)."""
    tag = run.name or "run"
    _check_token(tag, "run name", None)
    lines = []
    for qid in run.scores:
        _check_token(qid, "query id", None)
        previous = math.inf
        for rank, (docid, score) in enumerate(run.ranked(qid), start=1):
            _check_token(docid, "document id", None)
            previous = min(float(score), math.nextafter(previous, -math.inf))  # a tie: one float step lower
            lines.append(f"{qid} Q0 {docid} {rank} {previous!r} {tag}\n")
    return "".join(lines)


def write_trec_run(run: Run, path: Path) -> None:
    """Write `run` atomically as `qid Q0 docid rank score tag` lines.

    Queries keep the run's order; within a query, ranks start at 1 in `Run.ranked`'s order
    (descending score, ties by doc id descending, trec_eval's rule). A tied score is written one
    float step below the one before it, so the file holds one ranking for every tool, whatever
    its own tie rule (the MS MARCO RR code of ir_measures breaks ties the other way); other
    scores are written with `repr`, so reading them back gives the same floats. The tag is the
    run's name.

    Raises:
        DataError: the run name or an id contains whitespace.
    """
    write_text(Path(path), format_run(run))


def _check_token(value: str, what: str, path: Path | None) -> None:
    if not value or any(c.isspace() for c in value):
        target = f"{path}: " if path is not None else ""
        raise DataError(
            f"{target}{what} {value!r} is empty or contains whitespace, which the TREC format cannot "
            "represent; rename it (e.g. replace spaces with `_`)."
        )
