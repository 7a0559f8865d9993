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
    from simlab.errors import DataError
    from simlab.index.dense import load
    from simlab.tasks.skeleton import run_task

    if not query.strip():
        raise DataError('the query is empty; give the text to search for (simlab search RUN "text")')
    run_dir = Path(run_dir)
    meta_path = run_dir / "meta.json"
    run_task(run_dir, "search")
    index_dir = run_dir / "indexes" / index_name
    if not index_dir.is_dir():
        found = sorted(p.name for p in (run_dir / "indexes").glob("*")) if (run_dir / "indexes").is_dir() else []
        raise RunFolderError(
            f"{index_dir}: no such index (found: {', '.join(found) or 'none; the run did not train a model'})"
        )
    meta = json.loads(meta_path.read_text())
    index_format = (
        json.loads((index_dir / "meta.json").read_text()).get("format") if (index_dir / "meta.json").is_file() else None
    )
    if index_format == "simlab.sparse-index":  # a model.kind: sparse run
        import yaml

        from simlab.index.sparse import load as load_sparse
        from simlab.models.sparse import encode_sparse, load_saved_sparse, quantize_for_cpu, vocabulary_fingerprint

        sparse_model = load_saved_sparse(run_dir / "model")
        index = load_sparse(index_dir, expect_vocab=vocabulary_fingerprint(sparse_model))
        run_cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        if run_cfg.get("model", {}).get("sparse", {}).get("quantize"):  # encode queries as the run evaluated them
            sparse_model = quantize_for_cpu(sparse_model)
        ids, scores = index.search(encode_sparse(sparse_model, [query], "query"), k)
    else:
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
