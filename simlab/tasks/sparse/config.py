"""`task: sparse` (or `task: retrieval` with `model.kind: sparse`): the schema of SPLADE runs."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from simlab.config import ModelConfig
from simlab.config.loading import changed_fields
from simlab.tasks.retrieval.config import CollectionExperiment

DENSE_ONLY = [
    "model.towers",
    "model.pooling",
    "model.normalize",
    "model.backend",  # a sparse model's int8 path is model.sparse.quantize
    "index.approximate",
    "index.hnsw",
    "index.ivf",
    "index.ivfpq_refine",
    "index.pq_refine",
    "index.hnsw_sq_refine",
    "eval.reference_models",
]
"""Fields only the dense task reads; a sparse config that sets one is refused."""


class SparseConfig(CollectionExperiment):
    """`task: sparse`: learned sparse retrieval (SPLADE) against BM25, exact and with Seismic (workload C)."""

    task: Literal["sparse"] = "sparse"
    model: ModelConfig = ModelConfig(kind="sparse")

    @model_validator(mode="after")
    def _check(self):
        if self.model.kind != "sparse":
            raise ValueError("model.kind: a sparse run's model is sparse; remove model.kind or set it to sparse")
        used = changed_fields(self, DENSE_ONLY)
        if used:
            raise ValueError(f"{', '.join(used)}: only dense runs read this; remove it from the sparse config")
        return self
