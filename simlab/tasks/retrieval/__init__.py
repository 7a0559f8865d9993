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
    commands = frozenset({"search"})
    curve_prefix = "dev"
    distributed = True

    figures = frozenset({"speed"})

    def columns(self, cfg) -> list[str]:
        return list(cfg.eval.metrics)

    def main_metric(self, cfg) -> str:
        return cfg.eval.metrics[0]

    def run(self, cfg, summary, folder) -> None:
        from simlab.tasks.retrieval.run import run

        run(cfg, summary, folder)

    def follow(self, cfg, out):
        from simlab.tasks.retrieval.run import follow

        return follow(cfg, out)

    def report(self, summary) -> str:
        from simlab.tasks.retrieval.report import render

        return render(summary)

    def tables(self, summary):
        from simlab.tasks.retrieval.report import tables

        return tables(summary)
