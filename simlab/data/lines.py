"""Reading text files line by line, with `file:line` in every error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simlab.errors import DataError


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Stream a UTF-8 text file as (1-based line number, line without its line ending).

    Lines are split on `\\n` only and a trailing `\\r` is removed, so CRLF files read like LF
    files and a stray `\\r` inside a text field does not split a record.

    Raises:
        DataError: the file does not exist, or a line is not valid UTF-8 (names `file:line`).
    """
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    with f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start}); re-encode the file as UTF-8."
                ) from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")
            yield lineno, line.rstrip("\r\n")


def iter_jsonl(path: Path, what: str = "record") -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, JSON object) for every non-blank line of a JSON-lines file.

    Raises:
        DataError: a line is not JSON, or not a JSON object (names `file:line`).
    """
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{where}: invalid JSON ({e.msg} at column {e.colno}); expected one {what} object per line."
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object per line, got {type(obj).__name__}.")
        yield where, obj
