"""Sections of the retrieval tasks (dense and sparse): collection, model, training, indexes, evaluation.

`simlab.tasks.retrieval.config` and `simlab.tasks.sparse.config` compose them; models, training
and index take them as they are.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from simlab.config.backend import Backend
from simlab.config.base import Section
from simlab.config.metrics import METRIC_CHOICES
from simlab.config.schedule import SPARSE_GRADS, SchedulerConfig, TrainerSection


class DataConfig(Section):
    path: str = Field(..., min_length=1, description="Collection folder: BEIR, MS MARCO TSV or raw Glasgow (required).")
    train_split: str = Field("train", description="Qrels split for training pairs; missing -> corpus pairs.")
    dev_split: str = Field("dev", description="Qrels split evaluated every epoch; missing -> held-out pairs.")
    test_split: str = Field("test", description="Qrels split of the final evaluation table.")
    max_train_pairs: int | None = Field(None, gt=0, description="Cap on training pairs (sampled with seed).")
    triples: str | None = Field(
        None,
        description="model.kind sparse: training triples `query<TAB>positive<TAB>negative` (MS MARCO triples "
        "TSV), relative to data.path; default: pairs from qrels/corpus with train.hard_negatives.",
    )


class ScratchMLMConfig(Section):
    """`model.name: bert-mlm-scratch`: a random BERT-MLM with a WordPiece vocabulary trained on the corpus."""

    vocab_size: int = Field(8000, ge=100)
    hidden_size: int = Field(128, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    seed: int = 0


class SparseModelConfig(Section):
    """`model.kind: sparse` (SPLADE) options."""

    mask: list[Literal["punctuation", "special", "unused", "stopwords"]] = Field(
        [], description="Vocabulary ids zeroed in every sparse vector, in training and at inference."
    )
    stopwords: list[str] | None = Field(None, description="The 'stopwords' mask list; default: English (bm25s).")
    inference_free: bool = Field(
        False, description="Queries by a static per-token weight (SparseStaticEmbedding), documents by SPLADE."
    )
    pooling: Literal["max", "sum"] = "max"
    scratch: ScratchMLMConfig = ScratchMLMConfig()
    quantize: bool = Field(
        False,
        description="Encode for evaluation, search and inspect with int8 dynamically quantized Linear layers "
        "(CPU; several times faster for a BERT-base query); training and the saved model stay float32.",
    )


class ModelConfig(Section):
    name: str = Field("wordllama", description="'wordllama', a hub model name, or a local model folder.")
    kind: Literal["dense", "sparse"] = Field("dense", description="dense bi-encoder, or sparse (SPLADE).")
    sparse: SparseModelConfig = SparseModelConfig()
    towers: Literal["shared", "separate"] = "shared"
    pooling: Literal["mean", "cls"] = Field("mean", description="Used when building from a plain HF model.")
    normalize: bool = True
    max_length: int = Field(256, gt=0)
    backend: Backend = "torch"


class HardNegativesConfig(Section):
    source: Literal["none", "bm25", "model"] = "none"
    num: int = Field(1, ge=1, le=16, description="Hard negatives per training pair.")
    range_min: int = Field(0, ge=0, description="Skip this many top candidates (likely false negatives).")
    range_max: int = Field(50, ge=1, description="Sample from the top range_max candidates.")
    margin: float | None = Field(None, description="Model mining: negative must score below positive - margin.")


class SpladeTrainConfig(Section):
    """`model.kind: sparse` training: SpladeLoss = in-batch ranking loss + FLOPS regularisers."""

    query_regularizer_weight: float = Field(5e-5, ge=0, description="FLOPS weight of the query vectors.")
    document_regularizer_weight: float = Field(3e-5, ge=0, description="FLOPS weight of the document vectors.")
    regularizer_warmup_ratio: float = Field(
        1 / 3, gt=0, le=1, description="Share of the steps over which the FLOPS weights grow from 0 to their value."
    )
    regularizer_schedule: Literal["quadratic", "linear"] = "quadratic"
    freeze_encoder: bool = Field(False, description="Train only the vocabulary (MLM) head; the encoder is frozen.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    log_every: int = Field(50, ge=1, description="Progress line every N optimiser steps.")


class TrainConfig(TrainerSection):
    enabled: bool = True
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=2)
    learning_rate: float = Field(0.05, gt=0)
    sparse_grads: bool = Field(True, description=SPARSE_GRADS)
    scheduler: SchedulerConfig = SchedulerConfig(name="warmup_cosine")
    seed: int = 42
    best_by: str = Field("ndcg@10", description=f"Dev metric that picks the best epoch ({METRIC_CHOICES}).")
    hard_negatives: HardNegativesConfig = HardNegativesConfig()
    splade: SpladeTrainConfig = SpladeTrainConfig()


class HNSWConfig(Section):
    m: int = Field(32, ge=4)
    ef_construction: int = Field(120, ge=8)
    ef_search: int = Field(128, ge=1)


class IVFConfig(Section):
    nlist: int | None = Field(None, ge=1, description="Default: about 4 * sqrt(n_docs).")
    nprobe: int = Field(32, ge=1)
    min_docs: int = Field(10_000, ge=1, description="Build IVF only for corpora at least this large.")


class IVFPQRefineConfig(Section):
    """`ivfpq_refine`: IVF cells over 4-bit PQ fast-scan codes, `k_factor * k` candidates re-ranked exactly."""

    nlist: int | None = Field(None, ge=1, description="Default: about 4 * sqrt(n_docs).")
    nprobe: int = Field(256, ge=1, description="Cells scanned per query (recall rises with it).")
    pq_m: int | None = Field(None, ge=1, description="4-bit sub-quantizers per vector (divides dim); default dim/4.")
    k_factor: int = Field(16, ge=1, description="Candidates re-ranked with the exact vectors, as a multiple of k.")
    min_docs: int = Field(10_000, ge=1, description="Build it only for corpora at least this large.")


class PQRefineConfig(Section):
    """`pq_refine`: every vector's 4-bit PQ fast-scan code scanned, `k_factor * k` candidates re-ranked exactly."""

    pq_m: int | None = Field(None, ge=1, description="4-bit sub-quantizers per vector (divides dim); default dim/4.")
    k_factor: int = Field(32, ge=1, description="Candidates re-ranked with the exact vectors, as a multiple of k.")


class HNSWSQRefineConfig(Section):
    """`hnsw_sq_refine`: an HNSW graph over 8-bit scalar-quantized vectors, `k_factor * k` re-ranked exactly."""

    m: int = Field(32, ge=4)
    ef_construction: int = Field(200, ge=8, description="Build beam width (a better graph: recall at less ef_search).")
    ef_search: int = Field(512, ge=1, description="Graph-walk beam width (recall rises with it).")
    k_factor: int = Field(4, ge=1, description="Candidates re-ranked with the exact vectors, as a multiple of k.")


class SeismicConfig(Section):
    """pyseismic-lsr's build and search parameters (model.kind: sparse)."""

    n_postings: int = Field(3500, ge=1, description="Average postings kept per term.")
    centroid_fraction: float = Field(0.1, gt=0, le=1)
    summary_energy: float = Field(0.4, gt=0, le=1)
    query_cut: int = Field(10, ge=1, description="Query terms scanned (the heaviest).")
    heap_factor: float = Field(0.7, gt=0, le=1)


class RayEncodeConfig(Section):
    """`index.ray`: corpus encoding with Ray Data `map_batches` on model actors."""

    min_docs: int = Field(
        1_000_000, ge=1, description="index.encode auto: encode on Ray when connected and the corpus is this large."
    )
    batch_size: int = Field(1024, ge=1, description="Texts per batch an actor encodes.")
    cpus_per_actor: float = Field(1.0, gt=0, description="CPUs of each model actor (its torch threads).")
    gpus_per_actor: float = Field(0.0, ge=0, description="GPUs of each model actor (1: one actor per GPU).")
    actors: int | None = Field(
        None, ge=1, description="Model actors; default: as many as the cluster's CPUs (or GPUs) hold."
    )
    shard_rows: int = Field(
        16384, ge=1, description="Texts per input block (and per on-disk shard of vectors) streamed to the driver."
    )


class IndexConfig(Section):
    approximate: list[str] = Field(
        ["hnsw", "ivf"],
        description="Approximate index types (simlab.index.dense.INDEX_TYPES: hnsw, ivf, ivfpq_refine, "
        "pq_refine, hnsw_sq_refine, or registered).",
    )
    hnsw: HNSWConfig = HNSWConfig()
    ivf: IVFConfig = IVFConfig()
    ivfpq_refine: IVFPQRefineConfig = IVFPQRefineConfig()
    pq_refine: PQRefineConfig = PQRefineConfig()
    hnsw_sq_refine: HNSWSQRefineConfig = HNSWSQRefineConfig()
    sparse_approximate: list[Literal["seismic"]] = Field(["seismic"], description="model.kind: sparse.")
    seismic: SeismicConfig = SeismicConfig()
    encode: Literal["auto", "local", "ray"] = Field(
        "auto",
        description="Corpus encoding: local, ray (Ray Data on model actors; starts a local Ray without a cluster), "
        "or auto (ray when connected to a cluster and the corpus has index.ray.min_docs documents).",
    )
    ray: RayEncodeConfig = RayEncodeConfig()


class EvalConfig(Section):
    metrics: list[str] = ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map"]
    k: int = Field(100, ge=1, description="Depth of every ranked list.")
    systems: list[Literal["bm25", "zeroshot", "trained", "hybrid"]] = [
        "bm25",
        "zeroshot",
        "trained",
        "hybrid",
    ]
    rrf_k: int = Field(60, ge=1)
    reference_models: list[str] = Field(
        [],
        description="Pretrained dense models searched zero-shot beside the run's own, each a system "
        "`<name>.flat` (registry names such as minilm, hub names or folders); the hybrid fuses BM25 with them too.",
    )

    @field_validator("reference_models")
    @classmethod
    def _distinct_prefixes(cls, names: list[str]) -> list[str]:
        prefixes = [reference_prefix(n) for n in names]
        taken = [p for p in prefixes if p in ("bm25", "zeroshot", "trained", "hybrid") or prefixes.count(p) > 1]
        if taken:
            raise ValueError(f"{taken[0]!r} would name two systems; give each reference model a distinct name")
        return names


def reference_config(model: ModelConfig, name: str) -> ModelConfig:
    """The model config of the reference model `name` beside the run's `model` (its normalisation and length)."""
    return ModelConfig(name=name, normalize=model.normalize, max_length=model.max_length)


def reference_prefix(name: str) -> str:
    """The system prefix of a reference model: its name's last path part, lower case (`minilm` -> `minilm`,
    `sentence-transformers/all-MiniLM-L6-v2` -> `all-minilm-l6-v2`)."""
    return name.rstrip("/").rsplit("/", 1)[-1].lower()
