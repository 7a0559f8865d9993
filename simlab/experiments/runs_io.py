"""Reading the run folders written by `simlab run`: which folders a path stands for, and the
per-query scores of each.

`find_runs` turns a run folder or a sweep folder into its run folders; `read_run` reads one
run folder's `perquery.tsv` (checking `meta.json` and `metrics.json`) into
`{system: {metric: {query_id: value}}}`. Every error is a `RunFolderError` naming the file
(and line) and the fix.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, TypeAlias

from simlab.errors import RunFolderError
from simlab.tasks.skeleton import CHOSEN

PerQuery: TypeAlias = dict[str, dict[str, float]]
"""metric name -> query id -> value, the per-query scores of one system."""

_PERQUERY_COLUMNS = ("system", "query_id", "metric", "value")
DAMAGED = "the run folder is damaged, re-run it."


def find_runs(path: Path) -> list[Path]:
    """The run folders a path stands for: itself, or the run folders directly inside it.

    A run folder holds a `meta.json`; a sweep folder holds run folders. Hidden subfolders
    (the `.name.partial-*` folders of runs still being written) are skipped.

    Raises:
        RunFolderError: `path` is missing, a file, or neither a run nor a sweep folder.
    """
    path = Path(path)
    hint = "pass a folder written by `simlab run`, or a folder holding such folders"
    if not path.exists():
        raise RunFolderError(f"{path} does not exist; {hint}.")
    if not path.is_dir():
        raise RunFolderError(f"{path} is a file, not a run folder; {hint}.")
    if (path / "meta.json").is_file():
        return [path]
    runs = sorted(p for p in path.iterdir() if not p.name.startswith(".") and (p / "meta.json").is_file())
    if not runs:
        raise RunFolderError(f"{path} is not a run folder: no meta.json in it nor in a subfolder; {hint}.")
    return runs


def read_run(folder: Path) -> dict[str, PerQuery]:
    """The per-query scores of every system of one run folder, in the order of `perquery.tsv`.

    Raises:
        RunFolderError: `meta.json` is not a simlab run's, `perquery.tsv` is missing or
            malformed (the message names `file:line`), or a system of `metrics.json` has no
            per-query rows.
    """
    from simlab.tasks.skeleton import RUN_FORMAT

    folder = Path(folder)
    meta = _read_json(folder / "meta.json")
    meta = meta if isinstance(meta, dict) else {}
    if meta.get("format") != RUN_FORMAT["format"]:
        raise RunFolderError(
            f"{folder / 'meta.json'}: format is {meta.get('format')!r}, expected {RUN_FORMAT['format']!r}; "
            "this is not a folder written by `simlab run`."
        )
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or version > RUN_FORMAT["format_version"]:
        raise RunFolderError(
            f"{folder / 'meta.json'}: format_version {version!r} is newer than this simlab reads "
            f"({RUN_FORMAT['format_version']}); upgrade simlab."
        )
    systems = _read_perquery(folder / "perquery.tsv")
    listed = _read_json(folder / "metrics.json") if (folder / "metrics.json").is_file() else {}
    missing = [s for s in listed if s not in systems and s != CHOSEN]
    if missing:
        raise RunFolderError(
            f"{folder}: metrics.json lists {', '.join(missing)} but perquery.tsv has no row for "
            f"{'it' if len(missing) == 1 else 'them'}; the run folder is incomplete, re-run it."
        )
    return systems


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing; the run folder is incomplete.") from None
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path}:{e.lineno}: not valid JSON ({e.msg}); {DAMAGED}") from None
    except UnicodeDecodeError as e:
        raise RunFolderError(f"{path}: not UTF-8 text ({e.reason}); {DAMAGED}") from None


def _text_line(path: Path, offset: int) -> int:
    """The 1-based line of byte `offset` of `path`."""
    return path.read_bytes()[:offset].count(b"\n") + 1


def _read_perquery(path: Path) -> dict[str, PerQuery]:
    if not path.is_file():
        raise RunFolderError(
            f"{path} is missing: compare needs the per-query scores `simlab run` writes there; "
            "re-run the experiment with this simlab version."
        )
    out: dict[str, PerQuery] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RunFolderError(f"{path}:{_text_line(path, e.start)}: not UTF-8 text ({e.reason}); {DAMAGED}") from None
    with io.StringIO(text, newline=None) as f:
        header = f.readline().rstrip("\n").split("\t")
        absent = [c for c in _PERQUERY_COLUMNS if c not in header]
        if absent:
            expected = "\t".join(_PERQUERY_COLUMNS)
            raise RunFolderError(f"{path}:1: header lacks {', '.join(absent)}; expected {expected!r}.")
        cols = [header.index(c) for c in _PERQUERY_COLUMNS]
        for lineno, line in enumerate(f, start=2):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(header):
                raise RunFolderError(
                    f"{path}:{lineno}: {len(parts)} tab-separated fields, not {len(header)}; {DAMAGED}"
                )
            system, qid, metric, raw = (parts[i] for i in cols)
            try:
                value = float(raw)
            except ValueError:
                raise RunFolderError(f"{path}:{lineno}: value {raw!r} is not a number; {DAMAGED}") from None
            scores = out.setdefault(system, {}).setdefault(metric, {})
            if qid in scores:
                raise RunFolderError(f"{path}:{lineno}: second row for {system!r}, query {qid!r}, {metric}; {DAMAGED}")
            scores[qid] = value
    if not out:
        raise RunFolderError(f"{path} has a header but no rows; the run folder is incomplete.")
    return out
