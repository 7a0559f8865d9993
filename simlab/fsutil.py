"""Atomic file and folder writes: a reader never sees a half-written artifact, and nothing a user
owns is ever deleted.

Every folder simlab writes (run folders, converted datasets, indexes) goes through `staged_dir`:
it takes a lock on the destination (`out_lock`: a second writer fails at once), removes the
partial folders of writers that died, writes into a temp folder beside the destination and
renames it into place at the end, with `MANIFEST` listing the files it wrote. `--overwrite`
replaces only such a folder, and only when it holds nothing else (`check_replaceable`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from simlab.errors import RunFolderError

log = logging.getLogger("simlab")

MANIFEST = ".simlab-files"
"""The files simlab wrote into a folder with their sha256, one `<sha256>  <relative path>` a line: the
format of `sha256sum`, so `sha256sum -c .simlab-files` checks a folder too (`verify_manifest`)."""


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


def cache_root() -> Path:
    """Where simlab keeps what it can rebuild (backend exports, unpacked model copies): `$SIMLAB_CACHE`, else
    `~/.cache/simlab`."""
    return Path(os.environ.get("SIMLAB_CACHE") or Path.home() / ".cache" / "simlab").expanduser()


def sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksums(folder: Path) -> dict[str, str] | None:
    """relative path -> sha256 of `folder/MANIFEST`, or None when there is none."""
    try:
        lines = (folder / MANIFEST).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    return {path: sha for sha, _, path in (line.partition("  ") for line in lines if line)}


def _manifest(folder: Path) -> set[str] | None:
    sums = _checksums(folder)
    return None if sums is None else {*sums, MANIFEST}


def verify_manifest(folder: Path, under: Sequence[str] = ("",)) -> None:
    """Check the files of `folder` below each of `under` (relative folders; "" for all) against its `MANIFEST`.

    Raises:
        RunFolderError: no manifest, or a listed file is missing or changed since simlab wrote it (the message
            names the files: a truncated or swapped model or index is never used).
    """
    folder = Path(folder)
    sums = _checksums(folder)
    if sums is None:
        raise RunFolderError(f"{folder} has no {MANIFEST}: it was not written by this simlab; re-run it")
    bad = []
    for path, sha in sorted(sums.items()):
        if not any(path == u or path.startswith(f"{u}/") or not u for u in under):
            continue
        file = folder / path
        if not file.is_file():
            bad.append(f"{path} (missing)")
        elif sha256(file) != sha:
            bad.append(f"{path} (changed)")
    if bad:
        raise RunFolderError(
            f"{folder}: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} differ from what simlab wrote "
            f"({MANIFEST}); the folder is damaged or was edited: re-run it"
        )


def held_input(path: Path, inputs: Sequence[str | Path | None]) -> str | Path | None:
    """The first of `inputs` that `path` is or holds (writing `path` would replace it), else None."""
    where = Path(path).resolve()
    for src in inputs:
        if src is not None and (Path(src).resolve() == where or where in Path(src).resolve().parents):
            return src
    return None


def check_replaceable(final: Path, inputs: Sequence[str | Path] = ()) -> None:
    """Refuse to replace `final` unless simlab wrote it and it holds nothing else.

    Raises:
        RunFolderError: `final` is or holds one of `inputs`, is a file, was not written by simlab (no
            `MANIFEST`), or holds files simlab did not write (the message lists them). Nothing is deleted.
    """
    final = Path(final)
    if not final.exists():
        return
    if (src := held_input(final, inputs)) is not None:
        raise RunFolderError(
            f"{final} is, or holds, the input {src}; --overwrite never deletes input data: choose another --out"
        )
    if not final.is_dir():
        raise RunFolderError(
            f"{final} is a file, not a folder simlab wrote; choose another --out (nothing was deleted)"
        )
    listed = _manifest(final)
    if listed is None:
        raise RunFolderError(
            f"{final} was not written by simlab (it has no {MANIFEST}); --overwrite replaces only folders simlab "
            "wrote: choose another --out, or move the folder away yourself (nothing was deleted)"
        )
    foreign = sorted(
        str(p.relative_to(final)) for p in final.rglob("*") if p.is_file() and str(p.relative_to(final)) not in listed
    )
    if foreign:
        more = f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
        raise RunFolderError(
            f"{final} holds files simlab did not write: {', '.join(foreign[:10])}{more}; move them out or choose "
            "another --out (nothing was deleted)"
        )


def check_new_file(path: Path, overwrite: bool, inputs: Sequence[str | Path] = ()) -> None:
    """A file a command is about to write (`--out`, `--markdown`, `--json`): never an input, never a folder, and
    an existing file only with `overwrite`. Checked before any work.

    Raises:
        RunFolderError: naming the path and the fix; nothing is written or deleted.
    """
    path = Path(path)
    if held_input(path, inputs) is not None:
        raise RunFolderError(f"{path} is an input of this command; write the output elsewhere")
    if path.is_dir():
        raise RunFolderError(f"{path} is a folder; give a file name to write")
    if path.exists() and not overwrite:
        raise RunFolderError(f"{path} already exists; choose another name or pass --overwrite to replace it")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def out_lock(final: Path) -> Iterator[None]:
    """Hold `.NAME.lock` beside `final` while writing it: a second writer fails at once.

    A lock whose process is gone (killed, or the machine restarted) is taken over, with a warning.

    Raises:
        RunFolderError: a live process holds the lock (the message names its pid and start time).
    """
    final = Path(final)
    lock = final.parent / f".{final.name}.lock"
    made = [p for p in (final.parent, *final.parent.parents) if not p.exists()]  # removed again if left empty
    final.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                held = json.loads(lock.read_text(encoding="utf-8"))
            except (FileNotFoundError, ValueError):
                held = {}
            pid = held.get("pid")
            if isinstance(pid, int) and held.get("host") == host and _alive(pid):
                raise RunFolderError(
                    f"{final} is being written by another simlab process (pid {pid}, started {held.get('started')}); "
                    "wait for it to finish, or choose another --out"
                ) from None
            log.warning("%s: taking over the lock of a simlab process that is gone (pid %s)", final, pid)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": host, "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        for folder in made:  # deepest first; only the empty ones go (a failed run leaves no folder it made)
            with contextlib.suppress(OSError):
                folder.rmdir()


def _remove_dead_partials(final: Path) -> None:
    """The `.NAME.partial-*` folders of writers that died (we hold the lock, so no live one has any)."""
    for partial in final.parent.glob(f".{final.name}.partial-*"):
        log.warning("%s: removing %s, left by an interrupted earlier write", final, partial.name)
        shutil.rmtree(partial, ignore_errors=True)


def _write_manifest(folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / MANIFEST)
    lines = [f"{sha256(p)}  {p.relative_to(folder)}\n" for p in files]
    write_text(folder / MANIFEST, "".join(lines))


@contextlib.contextmanager
def staged_dir(final: Path, overwrite: bool = False, inputs: Sequence[str | Path] = ()) -> Iterator[Path]:
    """Yield a temp folder beside `final`; on success rename it to `final`, on error delete it.

    This is how run folders, indexes and converted datasets are written: nothing partial is
    left behind when the work fails or is interrupted, two writers never share `final`
    (`out_lock`), and an existing `final` is replaced only when `overwrite` and
    `check_replaceable(final, inputs)` allow it, checked before any work.

    Raises:
        RunFolderError: `final` exists and `overwrite` is False, or it may not be replaced, or
            another process is writing it.
    """
    final = Path(final)
    if final.exists():
        if not overwrite:
            raise RunFolderError(f"{final} already exists; choose another --out or pass --overwrite")
        check_replaceable(final, inputs)
    with out_lock(final):
        _remove_dead_partials(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        try:
            yield tmp
            _write_manifest(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():
            if not overwrite:
                shutil.rmtree(tmp, ignore_errors=True)
                raise RunFolderError(f"{final} appeared while it was being written; the new version was not kept")
            check_replaceable(final, inputs)
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
