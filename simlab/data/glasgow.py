"""The classic SMART / Glasgow test collections: Cranfield, CISI, CACM and MED.

Documents and queries are tagged records: a line `.I <id>` starts a record, and a line holding
only a field marker (`.T` title, `.A` authors, `.B` source, `.W` text, `.X` citations, ...)
starts a field whose text runs to the next marker. Only `.T` and `.W` are kept.

Each collection is recognised by its usual file names (compared case-insensitively):

=========  ===============  ============  ============  ==============================
name       documents        queries       qrels         qrels line
=========  ===============  ============  ============  ==============================
cranfield  cran.all.1400    cran.qry      cranqrel      `query doc code` (codes 1-4, -1)
cisi       CISI.ALL         CISI.QRY      CISI.REL      `query doc 0 0.000000` (binary)
cacm       cacm.all         query.text    qrels.text    `query doc 0 0` (binary)
med        MED.ALL          MED.QRY       MED.REL       `query 0 doc rel` (TREC)
=========  ===============  ============  ============  ==============================

Traps handled here: CRLF line endings (Cranfield); query numbers in the qrels that are 1-based
*positions* in the query file rather than `.I` ids (Cranfield: detected, mapped, noted);
zero-padded ids (`.I 001`, normalised to `1`); Cranfield codes 1..4 become gains 4..1
(gain = 5 - code) and code -1 rows are dropped (counted in a note); documents with an empty
`.W` use their title as text. Queries without judgements are kept, without qrels.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from simlab.data.beir import write_beir
from simlab.data.lines import iter_lines
from simlab.data.trec import add_judgement, drop_unknown, parse_grade
from simlab.errors import DataError
from simlab.records import Collection, Corpus, Queries

logger = logging.getLogger("simlab.data")

QRELS_SPLIT = "test"
POSITION_SHARE = 0.9
"""Qrels query numbers are read as positions in the query file when this share of the lines fits 1..n_queries."""
_MARKER = re.compile(r"\.([A-Z])\s*")  # a field marker alone on its line, from column 0


@dataclass(frozen=True)
class _Row:
    """One qrels line: query number as written, doc id, gain (None = not relevant, dropped)."""

    query: str
    doc: str
    gain: int | None
    where: str  # `file:line`, for error messages


def _cranfield_row(fields: list[str], where: str) -> _Row:
    query, doc, code = fields
    if code == "-1":
        return _Row(_norm_id(query), _norm_id(doc), None, where)
    if code not in {"1", "2", "3", "4"}:
        raise DataError(f"{where}: expected relevance code 1, 2, 3, 4 or -1 in column 3, got {code!r}.")
    return _Row(_norm_id(query), _norm_id(doc), 5 - int(code), where)


def _pair_row(fields: list[str], where: str) -> _Row:
    return _Row(_norm_id(fields[0]), _norm_id(fields[1]), 1, where)


def _trec_row(fields: list[str], where: str) -> _Row:
    return _Row(_norm_id(fields[0]), _norm_id(fields[2]), parse_grade(fields[3], where), where)


@dataclass(frozen=True)
class GlasgowSpec:
    """File names and qrels line format of one Glasgow collection."""

    name: str
    docs: str
    queries: str
    qrels: str
    qrels_fields: str  # the expected line, for error messages, e.g. "`query doc code`"
    parse_row: Callable[[list[str], str], _Row]

    @property
    def layout(self) -> str:
        """How error messages describe this layout."""
        return f"Glasgow {self.name} layout ({self.docs}, {self.queries}, {self.qrels})"


SPECS: tuple[GlasgowSpec, ...] = (
    GlasgowSpec("cranfield", "cran.all.1400", "cran.qry", "cranqrel", "`query doc code`", _cranfield_row),
    GlasgowSpec("cisi", "CISI.ALL", "CISI.QRY", "CISI.REL", "`query doc 0 0.000000`", _pair_row),
    GlasgowSpec("cacm", "cacm.all", "query.text", "qrels.text", "`query doc 0 0`", _pair_row),
    GlasgowSpec("med", "MED.ALL", "MED.QRY", "MED.REL", "`query 0 doc rel`", _trec_row),
)


def detect_glasgow(path: Path) -> GlasgowSpec | None:
    """The spec whose documents file is in folder `path` (case-insensitively), else None."""
    names = _files_by_lower_name(Path(path))
    found = [spec for spec in SPECS if spec.docs.lower() in names]
    return found[0] if found else None


def read_glasgow(path: Path) -> Collection:
    """Read a raw Glasgow collection folder; the qrels become split `"test"`.

    Raises:
        DataError: no known documents file is in the folder, a file of the detected
            collection is missing, or a line is malformed (the message names `file:line`).
    """
    path = Path(path)
    spec = detect_glasgow(path) if path.is_dir() else None
    if spec is None:
        known = ", ".join(s.docs for s in SPECS)
        raise DataError(f"{path}: no Glasgow collection found; looked for a documents file named one of {known}.")
    files = _files_by_lower_name(path)
    for name in (spec.queries, spec.qrels):
        if name.lower() not in files:
            raise DataError(f"{path}: missing {name}; the {spec.layout} needs it.")
    docs_file, queries_file, qrels_file = (files[n.lower()] for n in (spec.docs, spec.queries, spec.qrels))
    notes: list[str] = []

    records = parse_records(docs_file)
    titles = [r.text("T") for r in records]
    bodies = [r.text("W") for r in records]
    empty_w = [r.id for r, body in zip(records, bodies) if not body]
    corpus = Corpus([r.id for r in records], [b or t for b, t in zip(bodies, titles)], titles)
    if empty_w:
        blank = [r.id for r, t, b in zip(records, titles, bodies) if not t and not b]
        note = f"{docs_file.name}: {_plural(len(empty_w), 'document')} with an empty .W use the title as text"
        if blank:
            verb = "has" if len(blank) == 1 else "have"
            note += f"; {len(blank)} of them also {verb} no title and stay empty ({', '.join(blank[:10])})"
        notes.append(note)

    query_records = parse_records(queries_file)
    queries = Queries([r.id for r in query_records], [r.text("W") or r.text("T") for r in query_records])

    rows = _read_rows(qrels_file, spec)
    rows, position_note = _map_positions(rows, queries.ids, qrels_file.name, queries_file.name)
    if position_note:
        notes.append(position_note)
    dropped = sum(row.gain is None for row in rows)
    if dropped:
        notes.append(
            f"{qrels_file.name}: {_plural(dropped, 'judgement')} with code -1 (not relevant) left out; "
            "codes 1..4 became gains 4..1 (gain = 5 - code)"
        )
    judgements: dict[str, dict[str, int]] = {}
    for row in rows:
        if row.gain is not None:
            add_judgement(judgements, row.query, row.doc, row.gain, row.where)
    for note in notes:
        logger.info(note)
    qrels, unknown_note = drop_unknown(judgements, corpus.ids, queries.ids, qrels_file.name)  # logs a warning
    if unknown_note:
        notes.append(unknown_note)
    return Collection(spec.name, corpus, queries, {QRELS_SPLIT: qrels}, tuple(notes))


def convert_glasgow(src: Path, out: Path, overwrite: bool = False) -> Collection:
    """Read the Glasgow collection in `src` and write it to `out` in the BEIR layout.

    Returns:
        The collection that was written; its `notes` say what the conversion changed.
    """
    collection = read_glasgow(src)
    write_beir(collection, out, overwrite=overwrite)
    return collection


# ---------------------------------------------------------------- tagged records


@dataclass
class Record:
    """One `.I` record: its normalised id, the line it starts on, and its fields' lines."""

    id: str
    lineno: int
    fields: dict[str, list[str]] = field(default_factory=dict)

    def text(self, marker: str) -> str:
        """The field's lines joined by single spaces (whitespace collapsed); "" if absent."""
        return " ".join(" ".join(self.fields.get(marker, [])).split())


def parse_records(path: Path) -> list[Record]:
    """Parse a tagged SMART file into records, streaming it line by line.

    A field marker is a line holding only `.` + one capital letter (trailing spaces allowed),
    so text lines that merely start with a dot are kept as text.

    Raises:
        DataError: a `.I` line has no id or extra words, text appears before the first
            record or marker, an id repeats, or the file has no record (names `file:line`).
    """
    records: list[Record] = []
    seen: dict[str, int] = {}
    current: Record | None = None
    marker: str | None = None
    for lineno, line in iter_lines(path):
        where = f"{path}:{lineno}"
        words = line.split()
        if words and words[0] == ".I":
            if len(words) != 2:
                raise DataError(f"{where}: expected `.I <id>`, got {line.strip()!r}.")
            rid = _norm_id(words[1])
            if rid in seen:
                raise DataError(f"{where}: id {rid} already started a record on line {seen[rid]}.")
            seen[rid] = lineno
            current, marker = Record(rid, lineno), None
            records.append(current)
        elif m := _MARKER.fullmatch(line):
            if current is None:
                raise DataError(f"{where}: field marker .{m[1]} before the first `.I <id>` line.")
            marker = m[1]
            current.fields.setdefault(marker, [])
        elif words:
            if current is None:
                raise DataError(f"{where}: expected a `.I <id>` line to start the first record, got {line[:40]!r}.")
            if marker is None:
                raise DataError(f"{where}: text before any field marker (.T, .W, ...) in record {current.id}.")
            current.fields[marker].append(line)
    if not records:
        raise DataError(f"{path}: no `.I <id>` record found; is this a SMART/Glasgow file?")
    return records


# ---------------------------------------------------------------- qrels


def _read_rows(path: Path, spec: GlasgowSpec) -> list[_Row]:
    n_fields = spec.qrels_fields.count(" ") + 1
    rows = []
    for lineno, line in iter_lines(path):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) == 2 and spec.parse_row is _pair_row:  # `query doc` without the trailing `0 0`: the same
            fields = [*fields, "0", "0"]
        if len(fields) != n_fields:
            raise DataError(
                f"{where}: expected {n_fields} whitespace-separated fields {spec.qrels_fields}, got {len(fields)}."
            )
        rows.append(spec.parse_row(fields, where))
    if not rows:
        raise DataError(
            f"{path}: the file is empty (no judgement); the {spec.layout} needs one {spec.qrels_fields} line per "
            "judged document."
        )
    return rows


def _map_positions(
    rows: list[_Row], query_ids: list[str], qrels_name: str, queries_name: str
) -> tuple[list[_Row], str | None]:
    """Map query numbers to `.I` ids when they are 1-based positions in the query file.

    They are taken as positions when some numbers within 1..n_queries are not `.I` ids and at least
    `POSITION_SHARE` of the lines' numbers lie within 1..n_queries (Cranfield: `.I` runs 1..365 with
    gaps, the qrels number the 225 queries 1..225). Then a line whose number does not fit (beyond
    n_queries) is an error naming the lines: one stray line must not flip the reading of the file.

    Raises:
        DataError: positions, but some lines' numbers lie outside 1..n_queries.
    """
    numbers = {row.query for row in rows}
    known = set(query_ids)
    not_ids = numbers - known
    n = len(query_ids)
    fits = {q for q in numbers if q.isdigit() and 1 <= int(q) <= n}
    misfit = [row.where for row in rows if row.query not in fits]
    if not (not_ids & fits) or len(misfit) > (1 - POSITION_SHARE) * len(rows):
        return rows, None
    if misfit:
        raise DataError(
            f"{qrels_name}: query numbers are 1-based positions in {queries_name} ({len(rows) - len(misfit)} of "
            f"{len(rows)} lines lie within 1..{n}, and some are not .I ids), but {len(misfit)} line(s) name a "
            f"query beyond {n}: {', '.join(misfit[:5])}{' ...' if len(misfit) > 5 else ''}; fix or remove those lines"
        )
    to_id = {str(pos): qid for pos, qid in enumerate(query_ids, start=1)}
    mapped = [_Row(to_id[row.query], row.doc, row.gain, row.where) for row in rows]
    example = next((pos for pos, qid in to_id.items() if qid != pos), "1")
    note = (
        f"{qrels_name}: query numbers are 1-based positions in {queries_name}, not its .I ids "
        f"({len(not_ids)} of {len(numbers)} numbers are not .I ids, all lie within 1..{n}); "
        f"mapped positions to ids (e.g. {example} -> {to_id[example]})"
    )
    return mapped, note


# ---------------------------------------------------------------- small helpers


def _norm_id(token: str) -> str:
    """`"001"` -> `"1"`; non-numeric ids are kept as they are."""
    return str(int(token)) if token.isdigit() else token


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _files_by_lower_name(path: Path) -> dict[str, Path]:
    if not path.is_dir():
        return {}
    return {p.name.lower(): p for p in sorted(path.iterdir()) if p.is_file()}
