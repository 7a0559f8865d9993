"""`task: sparse`: learned sparse retrieval (SPLADE) beside BM25 and the dense models' table (workload C).

`config` holds the schema, `run` the stages (the retrieval stages with sparse models),
`systems` the exact and Seismic systems of one sparse model. The report is retrieval's.
"""

from __future__ import annotations

from simlab.tasks.registry import register_task
from simlab.tasks.retrieval import RetrievalTask
from simlab.tasks.sparse.config import SparseConfig


@register_task
class SparseTask(RetrievalTask):
    name = "sparse"
    schema = SparseConfig
    commands = frozenset({"search", "inspect"})
    distributed = False
    stages = "simlab.tasks.sparse.run"

    def preflight(self, cfg) -> None:
        """The retrieval checks, and `data.triples` when the run trains on them (before BM25 and zero-shot run)."""
        super().preflight(cfg)
        if cfg.data.triples and cfg.train.enabled and "trained" in cfg.eval.systems:
            from simlab.tasks.sparse.run import triples_path

            triples_path(cfg)

    @property
    def built_models(self) -> frozenset[str]:
        from simlab.models.sparse import SPARSE_MODELS  # bert-mlm-scratch: built from the collection

        return frozenset(SPARSE_MODELS)
