"""`task: pairs`: siamese pair matching with hard/soft negatives and a frozen val threshold (workload A).

`config` holds the schema, `sets` builds the train/val/test pairs, `systems` scores each
system at its val threshold, `run` the stages, `report` the tables. `simlab match` matches two
new tables with a finished run (`simlab.experiments.match`).
"""

from __future__ import annotations

from simlab.evaluation.pairs import ITEM_METRICS
from simlab.tasks.base import Task
from simlab.tasks.pairs.config import PairsConfig
from simlab.tasks.registry import register_task


@register_task
class PairsTask(Task):
    name = "pairs"
    schema = PairsConfig
    unit = "pairs"
    reference_system = "overlap"
    main_systems = ("trained",)
    service = "match"
    item_metrics = ITEM_METRICS
    commands = frozenset({"match"})
    figures = frozenset({"scores"})
    stages = "simlab.tasks.pairs.run"
    reports = "simlab.tasks.pairs.report"

    same_metrics = {"correct": "accuracy"}

    def columns(self, cfg) -> list[str]:
        from simlab.tasks.pairs.report import PAIR_COLUMNS

        return [key for key, _ in PAIR_COLUMNS]

    def main_metric(self, cfg) -> str:
        return "f1"

    def preflight(self, cfg) -> None:
        """The common checks, and that `cross.model` can be loaded (before any model trains)."""
        super().preflight(cfg)
        cross = getattr(cfg, "cross", None)  # `task: definitions` (a subclass) has no cross section
        if cross is not None and cross.model:
            from simlab.models import CROSS_MODEL, check_model_name

            check_model_name(cross.model, **CROSS_MODEL)
