"""Atomic file and folder writes: a reader never sees a half-written artifact."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are for other readers too
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    """Atomically write `text` as UTF-8 (see `write_bytes`)."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    """Atomically write `obj` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def staged_dir(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp folder beside `final`; on success rename it to `final`, on error delete it.

    This is how run folders, indexes and converted datasets are written: nothing partial is
    left behind when the work fails or is interrupted.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(final)
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def read_meta(folder: Path, fmt: str, version: int, what: str, how_to_make: str) -> dict[str, Any]:
    """`folder/meta.json` of a saved artifact, checked before anything else is read.

    Raises:
        DataError: no meta.json, invalid JSON, or another format than `fmt` (the message says
            what `folder` should be and `how_to_make` one).
        IndexMismatchError: written by another `format_version` than `version`.
    """
    from simlab.errors import DataError, IndexMismatchError

    folder = Path(folder)
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{folder} is not a {what} (no meta.json); {how_to_make}.") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{meta_path}:{e.lineno}: invalid JSON ({e.msg}).") from None
    got = meta.get("format") if isinstance(meta, dict) else None
    if got != fmt:
        raise DataError(f"{meta_path}: format is {got!r}, expected {fmt!r}: not a {what}; {how_to_make}.")
    if meta.get("format_version") != version:
        raise IndexMismatchError(
            f"{meta_path}: format version {meta.get('format_version')!r}, this simlab reads version "
            f"{version}; rebuild it or use the simlab that wrote it."
        )
    return meta
