"""Reading CSV and JSONL tables row by row, each row with its line number for messages.

`csv_rows` reads a CSV file with a header line; `jsonl_rows` reads one JSON object a line.
Both return the column names and the rows as `(line number, column -> value)`, values as
strings, so that readers such as `simlab.data.matching.read_records` can name `file:line`
in every error. Every error is a `DataError` naming the file (and line) and the fix.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simlab.errors import DataError


def csv_rows(path: Path, delimiter: str = ",") -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and the rows as (first line of the row, column -> value); `delimiter` "\\t" reads TSV."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        lineno = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{lineno}: not valid UTF-8 ({e.reason}); re-encode the file as UTF-8.") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, dict[str, str]]] = []
    prev = 0
    try:
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise DataError(f"{path}: empty file; expected a header line with the column names.")
        dup = sorted({h for h in header if header.count(h) > 1})
        if dup:
            raise DataError(f"{path}:1: column(s) {', '.join(dup)} appear more than once in the header.")
        prev = reader.line_num
        for row in reader:
            start, prev = prev + 1, reader.line_num
            if not row or row == [""]:
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{path}:{start}: {len(row)} fields, but the header has {len(header)} "
                    f"({', '.join(header)}); quote values that contain {'tabs' if delimiter == chr(9) else 'commas'}."
                )
            rows.append((start, dict(zip(header, row))))
    except csv.Error as e:
        raise DataError(f"{path}:{prev + 1}: malformed CSV ({e}).") from None
    return header, iter(rows)


def jsonl_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Every key seen (first-appearance order) and the rows with values as strings."""
    from simlab.data.lines import iter_jsonl

    columns: dict[str, None] = {}
    rows: list[tuple[int, dict[str, str]]] = []
    for where, obj in iter_jsonl(path):
        columns.update(dict.fromkeys(obj))
        rows.append((int(where.rsplit(":", 1)[1]), {k: _as_text(v, k, where) for k, v in obj.items()}))
    return list(columns), iter(rows)


def _as_text(value: Any, key: str, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{where}: key `{key}` must be a string or a number, got {type(value).__name__}.")
