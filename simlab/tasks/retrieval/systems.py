"""Dense systems of one model: encode once, search exactly (faiss flat) and approximately.

For every approximate index the row records what a reader needs to choose one: the quality
lost against exact search, the overlap of its top 10 with the exact top 10, queries per
second one at a time and batched, p50/p95 latency, build time and size on disk.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simlab.console import wants_bar
from simlab.records import Corpus, Queries, Run

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from simlab.config import IndexConfig


@dataclass
class DenseResult:
    runs: dict[str, Run] = field(default_factory=dict)
    speed: dict[str, dict[str, float]] = field(default_factory=dict)  # system -> speed/overlap stats
    exact_ids: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def encode(
    model: SentenceTransformer, corpus: Corpus, queries: Queries, cfg: IndexConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(document vectors, query vectors) as float32, through the model's document and query routes; the
    documents on Ray (`simlab.index.ray_encode`) when `cfg.encode` asks for it."""
    from simlab.index.ray_encode import encode_on_ray, use_ray

    if cfg is not None and use_ray(cfg, len(corpus)):
        docs = encode_on_ray(model, corpus.full_texts(), "document", sparse=False, settings=cfg.ray)
    else:
        docs = model.encode_document(
            corpus.full_texts(), batch_size=256, convert_to_numpy=True, show_progress_bar=wants_bar(len(corpus), 2000)
        )
    qs = model.encode_query(queries.texts, batch_size=256, convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(docs, dtype=np.float32), np.ascontiguousarray(qs, dtype=np.float32)


def _index_params(kind: str, cfg: IndexConfig) -> dict:
    """The build parameters of index type `kind` from its `index.<kind>` section (if it has one)."""
    from simlab.index.dense import INDEX_TYPES

    section = getattr(cfg, kind, None)
    if section is None:
        return {}
    return {k: v for k, v in section.model_dump().items() if k in INDEX_TYPES[kind].defaults}


def dense_systems(
    prefix: str,
    model: SentenceTransformer,
    model_id: str,
    normalized: bool,
    corpus: Corpus,
    queries: Queries,
    k: int,
    cfg: IndexConfig,
    index_dir: Path | None,
) -> DenseResult:
    """Runs `<prefix>.flat` and `<prefix>.<approx>` for each configured approximate index."""
    from simlab.index.dense import INDEX_TYPES

    docs, qs = encode(model, corpus, queries, cfg)
    out = DenseResult()
    kinds = ["flat"]
    for kind in cfg.approximate:
        min_docs = getattr(getattr(cfg, kind, None), "min_docs", None)
        if min_docs is not None and len(corpus) < min_docs:
            out.notes.append(f"{prefix}.{kind} skipped: {len(corpus)} documents < index.{kind}.min_docs={min_docs}")
            continue
        kinds.append(kind)
    for kind in kinds:
        name = f"{prefix}.{kind}"
        index = INDEX_TYPES[kind].build(
            docs,
            corpus.ids,
            metric="ip",
            model_id=model_id,
            normalized=normalized,
            **_index_params(kind, cfg),
        )
        run_index(out, name, index, queries, qs, k, index_dir, exact=kind == "flat")
    return out


def run_index(out: DenseResult, name: str, index, queries: Queries, qs, k: int, index_dir: Path | None, exact: bool):
    """Search `qs` with `index` into `out.runs[name]`, time it, save it, and record `out.speed[name]` (QPS,
    latency, build time, size; overlap@10 with the exact run unless `exact`, which becomes the reference).
    Returns that speed record, for the caller to add to."""
    from simlab.index.timing import measure_search, overlap_at_k

    ids, scores = index.search(qs, k)
    out.runs[name] = Run.from_topk(name, queries.ids, ids, scores)
    timing = measure_search(index, qs, min(k, 10))
    stats = {
        "qps_single": timing.qps_single,
        "qps_batched": timing.qps_batched,
        "p50_ms": timing.p50_ms,
        "p95_ms": timing.p95_ms,
        "build_seconds": index.build_seconds,
        "size_mb": saved_size(index, index_dir, name) / 1e6,
    }
    if exact:
        out.exact_ids = ids
    else:
        stats["overlap@10"] = float(np.nanmean(overlap_at_k(out.exact_ids, ids, 10)))
    out.speed[name] = stats
    return stats


def saved_size(index, index_dir: Path | None, name: str) -> int:
    """Save `index` as `index_dir/name` (or, without `index_dir`, to a temporary folder) and return its size
    on disk in bytes: the report's index size is that of the saved folder."""
    from simlab.index.timing import index_size_bytes

    if index_dir is not None:
        index.save(index_dir / name)
        return index_size_bytes(index_dir / name)
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp) / "index")
        return index_size_bytes(Path(tmp) / "index")
