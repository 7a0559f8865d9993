"""`task: multilabel`: texts or images with several labels each, thresholds tuned on val (workload D).

`config` holds the schema, `run` the stages (items, model, training, thresholds), `report`
the tables with deltas against a baseline run.
"""

from __future__ import annotations

from simlab.evaluation.multilabel import ITEM_METRICS
from simlab.tasks.base import Task
from simlab.tasks.multilabel.config import MultilabelConfig
from simlab.tasks.registry import register_task


@register_task
class MultilabelTask(Task):
    name = "multilabel"
    schema = MultilabelConfig
    unit = "items"
    reference_system = "prior"
    main_systems = ("trained",)
    service = "classify"
    item_metrics = ITEM_METRICS
    figures = frozenset({"per_label"})
    stages = "simlab.tasks.multilabel.run"
    reports = "simlab.tasks.multilabel.report"

    same_metrics = {"f1": "f1_micro"}

    def columns(self, cfg) -> list[str]:
        from simlab.tasks.multilabel.report import COLUMNS

        return [key for key, _ in COLUMNS]

    def main_metric(self, cfg) -> str:
        return "f1_micro"

    def compare_metric(self, cfg) -> str:
        return "f1"  # micro F1 from the per-item tp/fp/fn rows

    def new_summary(self, cfg, out):
        from simlab.tasks.multilabel.run import MultilabelSummary

        return MultilabelSummary(folder=out, config=cfg)
