"""`task: retrieval`: dense retrieval against BM25, with exact and approximate search (workload E).

`config` holds the schema, `run` the stages, `systems` the dense systems of one model
(encode once; faiss flat, HNSW, IVF), `report` the tables.
"""

from __future__ import annotations

from simlab.tasks.base import Task
from simlab.tasks.registry import register_task
from simlab.tasks.retrieval.config import RetrievalConfig


@register_task
class RetrievalTask(Task):
    name = "retrieval"
    schema = RetrievalConfig
    unit = "queries"
    reference_system = "bm25"
    main_systems = ("trained.flat", "zeroshot.flat")
    service = "search"
    commands = frozenset({"search"})
    curve_prefix = "dev"
    distributed = True
    figures = frozenset({"speed"})
    stages = "simlab.tasks.retrieval.run"
    reports = "simlab.tasks.retrieval.report"

    def columns(self, cfg) -> list[str]:
        return list(cfg.eval.metrics)

    def main_metric(self, cfg) -> str:
        return cfg.eval.metrics[0]

    def follow(self, cfg, out):
        from simlab.tasks.retrieval.run import follow

        return follow(cfg, out)
