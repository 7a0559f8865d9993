"""Sparse (SPLADE) systems of one model: encode once, search exactly and with Seismic.

The rows have the names and columns of the dense systems (`<prefix>.flat` is exact search,
here an inverted-index product; `<prefix>.seismic` the approximate index), so they sit in
the same evaluation table as BM25 and the dense models. Each row also records the speed
the seed measured by hand: documents encoded per second (indexing), and per-query latency
of query encoding and of encoding + search, one query at a time.

"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simlab.records import Corpus, Queries
from simlab.tasks.retrieval.systems import DenseResult, run_index

if TYPE_CHECKING:
    from sentence_transformers import SparseEncoder

    from simlab.config import IndexConfig

log = logging.getLogger("simlab")

QUERY_LATENCY_SAMPLES = 50
"""Queries encoded one at a time to measure query-encoding latency."""


def _query_latency(model: SparseEncoder, texts: list[str], index) -> tuple[np.ndarray, np.ndarray]:
    """Per query (one at a time): encoding seconds, and encoding + search seconds."""
    from simlab.models.sparse import encode_sparse

    encode_sparse(model, texts[:1], "query")  # warm-up
    enc, total = [], []
    for text in texts[:QUERY_LATENCY_SAMPLES]:
        t0 = time.perf_counter()
        vec = encode_sparse(model, [text], "query")
        t1 = time.perf_counter()
        index.search(vec, 10)
        t2 = time.perf_counter()
        enc.append(t1 - t0)
        total.append(t2 - t0)
    return np.asarray(enc), np.asarray(total)


def sparse_systems(
    prefix: str,
    model: SparseEncoder,
    model_id: str,
    corpus: Corpus,
    queries: Queries,
    k: int,
    cfg: IndexConfig,
    index_dir: Path | None,
    quantize: bool = False,
) -> DenseResult:
    """Runs `<prefix>.flat` (exact) and `<prefix>.<approx>` for each of `index.sparse_approximate`;
    with `quantize`, every text is encoded by the int8 copy of `model` (`model.sparse.quantize`)."""
    from simlab.index.sparse import SPARSE_INDEX_TYPES
    from simlab.models.sparse import encode_sparse, quantize_for_cpu, vocabulary_fingerprint

    vocab = vocabulary_fingerprint(model)
    if quantize:
        model = quantize_for_cpu(model)
    from simlab.index.ray_encode import encode_on_ray, use_ray

    t0 = time.perf_counter()
    if use_ray(cfg, len(corpus)):
        docs = encode_on_ray(model, corpus.full_texts(), "document", sparse=True, settings=cfg.ray)
    else:
        docs = encode_sparse(model, corpus.full_texts(), "document")
    doc_seconds = time.perf_counter() - t0
    qs = encode_sparse(model, queries.texts, "query")
    out = DenseResult()
    docs_per_s = len(corpus) / doc_seconds if doc_seconds > 0 else float("inf")
    q_dims = float(np.diff(qs.indptr).mean()) if qs.shape[0] else 0.0
    d_dims = float(np.diff(docs.indptr).mean()) if docs.shape[0] else 0.0
    enc_stats: dict[str, float] = {
        "docs_per_second": docs_per_s,
        "query_active_dims": q_dims,
        "document_active_dims": d_dims,
    }
    for kind in ["flat", *cfg.sparse_approximate]:
        name = f"{prefix}.{kind}"
        index_type = "exact" if kind == "flat" else kind
        params = cfg.seismic.model_dump() if kind == "seismic" else {}
        index = SPARSE_INDEX_TYPES[index_type].build(docs, corpus.ids, model_id=model_id, vocab=vocab, **params)
        stats = run_index(out, name, index, queries, qs, k, index_dir, exact=kind == "flat")
        enc, total = _query_latency(model, queries.texts, index)
        stats |= {
            **enc_stats,
            "query_encode_p50_ms": float(np.percentile(enc, 50) * 1e3),
            "query_encode_p95_ms": float(np.percentile(enc, 95) * 1e3),
            "encode_search_p50_ms": float(np.percentile(total, 50) * 1e3),
            "encode_search_p95_ms": float(np.percentile(total, 95) * 1e3),
        }
    flat = out.speed[f"{prefix}.flat"]
    out.notes.append(
        f"{prefix} (sparse): {len(corpus)} documents encoded at {docs_per_s:,.1f} docs/s; active dimensions "
        f"{q_dims:.1f} per query, {d_dims:.1f} per document (of {vocab['vocab_size']:,}); one query at a time: "
        f"encoding p50 {flat['query_encode_p50_ms']:.1f} ms, encoding + exact search p50 "
        f"{flat['encode_search_p50_ms']:.1f} ms / p95 {flat['encode_search_p95_ms']:.1f} ms."
    )
    return out
