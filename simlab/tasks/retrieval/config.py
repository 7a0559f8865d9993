"""`task: retrieval`: the schema of dense retrieval runs (workload E)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from simlab.config import DataConfig, EvalConfig, Experiment, IndexConfig, ModelConfig, TrainConfig
from simlab.config.loading import changed_fields
from simlab.config.metrics import parse_metric

SPARSE_ONLY = ["model.sparse", "train.splade", "index.sparse_approximate", "index.seismic", "data.triples"]
"""Fields only the sparse task reads; a dense config that sets one is refused."""


class CollectionExperiment(Experiment):
    """The sections of a retrieval run over a collection, dense (`RetrievalConfig`) or sparse (`SparseConfig`)."""

    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    index: IndexConfig = IndexConfig()
    eval: EvalConfig = EvalConfig()

    @model_validator(mode="after")
    def _check_metrics(self):
        """`eval.metrics` and `train.best_by` are metric names (`simlab.config.metrics.parse_metric`)."""
        from simlab.errors import ConfigError

        for field, names in (("eval.metrics", self.eval.metrics), ("train.best_by", [self.train.best_by])):
            for name in names:
                try:
                    parse_metric(name)
                except ConfigError as exc:
                    raise ValueError(f"{field}: {exc}") from None
        return self


class RetrievalConfig(CollectionExperiment):
    """`task: retrieval`: dense retrieval against BM25, exact and approximate (workload E)."""

    task: Literal["retrieval"] = "retrieval"

    @model_validator(mode="after")
    def _check(self):
        from simlab.index.dense import INDEX_TYPES

        unknown = [k for k in self.index.approximate if k not in INDEX_TYPES or k == "flat"]
        if unknown:
            valid = ", ".join(sorted(k for k in INDEX_TYPES if k != "flat"))
            raise ValueError(f"index.approximate: {unknown} are not index types; choose from {valid}")
        from simlab.models import check_backend_model

        check_backend_model(self.model.name, self.model.backend)
        used = changed_fields(self, SPARSE_ONLY)
        if used:
            raise ValueError(
                f"{', '.join(used)}: only sparse (SPLADE) runs read this; set model.kind: sparse (task: sparse) "
                "or remove it"
            )
        return self
