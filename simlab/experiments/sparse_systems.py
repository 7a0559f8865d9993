"""Sparse (SPLADE) systems of one model: encode once, search exactly and with Seismic.

The rows have the names and columns of the dense systems (`<prefix>.flat` is exact search,
here an inverted-index product; `<prefix>.seismic` the approximate index), so they sit in
the same evaluation table as BM25 and the dense models. Each row also records the speed
the seed measured by hand: documents encoded per second (indexing), and per-query latency
of query encoding and of encoding + search, one query at a time.

`training_rows` builds the (query, positive, negative) rows SPLADE trains on: a triples
file (`data.triples`, MS MARCO `triples` TSV) or, like the dense workload, pairs from the
collection with hard negatives mined by BM25 or the model (`train.hard_negatives`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simlab.errors import ConfigError
from simlab.experiments.dense_systems import DenseResult, run_index
from simlab.records import Collection, Corpus, Queries, Run

if TYPE_CHECKING:
    from sentence_transformers import SparseEncoder

    from simlab.config import ExperimentConfig, IndexConfig
    from simlab.data.mining import MinedPairs
    from simlab.data.pairs import DevSet

QUERY_LATENCY_SAMPLES = 50
"""Queries encoded one at a time to measure query-encoding latency."""


def training_rows(cfg: ExperimentConfig, collection: Collection, model) -> tuple[MinedPairs, DevSet | None, list[str]]:
    """(rows, dev set or None, notes) for SPLADE training; see the module docstring."""
    from simlab.data.mining import MinedPairs, mine
    from simlab.data.msmarco import read_triples
    from simlab.data.pairs import _dev_from_qrels, build_pairs

    dev_split, test_split = cfg.data.dev_split, cfg.data.test_split
    dev = _dev_from_qrels(collection, dev_split) if dev_split in collection.qrels and dev_split != test_split else None
    if cfg.data.triples:
        path = Path(cfg.data.triples)
        path = path if path.is_absolute() else Path(cfg.data.path) / path
        if not path.is_file():
            raise ConfigError(f"data.triples: {path}: no such file (a path relative to data.path, or absolute)")
        triples = read_triples(path)
        if cfg.data.max_train_pairs is not None and len(triples) > cfg.data.max_train_pairs:
            import random

            triples = random.Random(cfg.train.seed).sample(triples, cfg.data.max_train_pairs)
        rows = MinedPairs([t[0] for t in triples], [t[1] for t in triples], [[t[2]] for t in triples], 0)
        notes = [f"Training triples: {len(triples)} from {path.name} (query, positive, negative)."]
    else:
        pairs = build_pairs(collection, cfg.data.train_split, dev_split, cfg.train.seed, cfg.data.max_train_pairs)
        rows = mine(pairs, cfg.train.hard_negatives, model)
        notes = [f"Training pairs: {pairs.source}."]
        hn = cfg.train.hard_negatives
        if hn.source != "none":
            notes.append(
                f"Hard negatives: {hn.num} per pair mined by {hn.source} from ranks [{hn.range_min}, {hn.range_max}); "
                f"{rows.dropped} pairs dropped for lack of negatives."
            )
        if dev is None and pairs.dev.queries:
            dev = pairs.dev
    notes.append(f"Per-epoch evaluation: {dev.source}." if dev else "No per-epoch evaluation (no dev split).")
    return rows, dev, notes


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
    t0 = time.perf_counter()
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


def run_sparse(cfg: ExperimentConfig, collection: Collection, queries: Queries, tmp: Path, summary, out_name: str):
    """The zero-shot and trained sparse systems of a run (the runner's `model.kind: sparse` branch).

    Returns:
        (runs, prefixes): the runs by system name, and the model prefixes evaluated.
    """
    from simlab.experiments.runner import log
    from simlab.models.sparse import load_sparse_model

    systems, k = cfg.eval.systems, cfg.eval.k
    texts = collection.corpus.full_texts()
    runs: dict[str, Run] = {}
    prefixes: list[str] = []
    if "zeroshot" in systems:
        log.info("zero-shot sparse model %s", cfg.model.name)
        zs = sparse_systems(
            "zeroshot",
            load_sparse_model(cfg.model, texts),
            cfg.model.name,
            collection.corpus,
            queries,
            k,
            cfg.index,
            None,
            cfg.model.sparse.quantize,
        )
        runs |= zs.runs
        summary.speed |= zs.speed
        summary.notes.extend(zs.notes)
        prefixes.append("zeroshot")
    if "trained" in systems and cfg.train.enabled:
        from simlab.training.sparse import train_sparse

        log.info("training sparse model %s", cfg.model.name)
        model = load_sparse_model(cfg.model, texts)
        rows, dev, notes = training_rows(cfg, collection, model)
        summary.notes.extend(notes)
        from simlab.models import uses_router

        result = train_sparse(model, rows, dev, cfg.train, tmp / ".checkpoints", uses_router(model))
        summary.history = result.history
        summary.notes.extend(result.notes)
        summary.notes.append(
            f"SPLADE loss: in-batch ranking + FLOPS (query weight {cfg.train.splade.query_regularizer_weight:g}, "
            f"document weight {cfg.train.splade.document_regularizer_weight:g}, reached after "
            f"{cfg.train.splade.regularizer_warmup_ratio:.0%} of the steps); {result.n_pairs} rows, "
            f"{cfg.train.epochs} epoch(s), {result.seconds:.1f} s."
        )
        if result.best_epoch is not None:
            summary.notes.append(
                f"Best epoch by dev {cfg.train.best_metric}: {result.best_epoch} (its weights are kept)."
            )
        model.save(str(tmp / "model"))
        from simlab import fsutil

        fsutil.write_text(tmp / "train_steps.jsonl", "".join(_json(s) + "\n" for s in result.steps))
        tr = sparse_systems(
            "trained",
            model,
            f"{cfg.model.name}+trained:{out_name}",
            collection.corpus,
            queries,
            k,
            cfg.index,
            tmp / "indexes",
            cfg.model.sparse.quantize,
        )
        runs |= tr.runs
        summary.speed |= tr.speed
        summary.notes.extend(tr.notes)
        prefixes.append("trained")
    return runs, prefixes


def _json(obj) -> str:
    import json

    return json.dumps(obj)
