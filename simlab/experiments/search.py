"""`simlab search`: load a run's model and index, answer one query."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from simlab.errors import RunFolderError


@dataclass(frozen=True)
class Hit:
    doc_id: str
    score: float
    snippet: str


def search_run(run_dir: Path, query: str, k: int = 10, index_name: str = "trained.flat") -> list[Hit]:
    """Top-`k` documents for `query` from `run_dir/indexes/<index_name>`, encoded by `run_dir/model`."""
    from sentence_transformers import SentenceTransformer

    from simlab.data.loader import load_collection
    from simlab.errors import ConfigError, DataError
    from simlab.index.dense import load
    from simlab.tasks.skeleton import run_task

    if not query.strip():
        raise DataError('the query is empty; give the text to search for (simlab search RUN "text")')
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"-k {k}: the number of documents to show must be at least 1")
    run_dir = Path(run_dir)
    meta_path = run_dir / "meta.json"
    run_task(run_dir, "search")
    index_dir = run_dir / "indexes" / index_name
    if not index_dir.is_dir():
        found = sorted(p.name for p in (run_dir / "indexes").glob("*")) if (run_dir / "indexes").is_dir() else []
        raise RunFolderError(
            f"{index_dir}: no such index (found: {', '.join(found) or 'none; the run did not train a model'})"
            + ("; pass --index with one of them" if found else "")
        )
    if not (run_dir / "model").is_dir():
        raise RunFolderError(f"{run_dir / 'model'} is missing; the run folder is incomplete, re-run it")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    index_meta = _index_meta(index_dir)
    index_format = index_meta.get("format")
    run_cfg = _run_config(run_dir)
    if index_format == "simlab.sparse-index":  # a model.kind: sparse run
        from simlab.index.sparse import load as load_sparse
        from simlab.models.sparse import encode_sparse, load_saved_sparse, quantize_for_cpu, vocabulary_fingerprint

        sparse_model = load_saved_sparse(run_dir / "model")
        index = load_sparse(index_dir, expect_vocab=vocabulary_fingerprint(sparse_model))
        if run_cfg.get("model", {}).get("sparse", {}).get("quantize"):  # encode queries as the run evaluated them
            sparse_model = quantize_for_cpu(sparse_model)
        ids, scores = index.search(encode_sparse(sparse_model, [query], "query"), k)
    else:
        _check_model_id(index_dir, index_meta, run_cfg)
        model = SentenceTransformer(str(run_dir / "model"), device="cpu")
        index = load(index_dir, expect_dim=model.get_embedding_dimension())
        vec = model.encode_query([query], convert_to_numpy=True).astype("float32")
        ids, scores = index.search(vec, k)
    corpus = load_collection(Path(meta["data"])).corpus
    text = dict(zip(corpus.ids, corpus.full_texts()))
    return [
        Hit(d, float(s), (text.get(d, "")[:100] + "…") if len(text.get(d, "")) > 100 else text.get(d, ""))
        for d, s in zip(ids[0], scores[0])
    ]


def _index_meta(index_dir: Path) -> dict:
    """The index's meta.json ({} when absent: the index loader says what is missing)."""
    from simlab.errors import DataError

    path = index_dir / "meta.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(
            f"{path}:{getattr(e, 'lineno', 1)}: invalid JSON ({getattr(e, 'msg', e)}); the index folder is damaged, "
            "rebuild it (re-run the experiment)."
        ) from None
    return meta if isinstance(meta, dict) else {}


def _run_config(run_dir: Path) -> dict:
    import yaml

    path = run_dir / "config.yaml"
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise RunFolderError(f"{path}: missing or not valid YAML; the run folder is damaged, re-run it") from None
    return cfg if isinstance(cfg, dict) else {}


def _check_model_id(index_dir: Path, index_meta: dict, run_cfg: dict) -> None:
    """The index was built with the run's model: its model_id is `model.name` (`+trained:<run>` once trained)."""
    from simlab.errors import IndexMismatchError

    name = str((run_cfg.get("model") or {}).get("name", ""))
    model_id = index_meta.get("model_id")
    if name and isinstance(model_id, str) and model_id != name and not model_id.startswith(f"{name}+"):
        raise IndexMismatchError(
            f"{index_dir}: index built with model {model_id!r}, but this run's model is {name!r}; rebuild the index "
            "with the run's model (re-run the experiment), or search the run that built it."
        )
