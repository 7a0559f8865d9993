"""Sections of the retrieval tasks (dense and sparse): collection, model, training, indexes, evaluation.

`simlab.tasks.retrieval.config` and `simlab.tasks.sparse.config` compose them; models, training
and index take them as they are.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simlab.config.backend import Backend
from simlab.config.base import Section
from simlab.config.metrics import METRIC_CHOICES
from simlab.config.schedule import SchedulerConfig, TrainerSection


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
        description="Approximate index types (simlab.index.dense.INDEX_TYPES: hnsw, ivf, or registered).",
    )
    hnsw: HNSWConfig = HNSWConfig()
    ivf: IVFConfig = IVFConfig()
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
