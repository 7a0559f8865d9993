"""What a task kind is: its schema, its stages and its rules, behind one small interface.

A task kind (retrieval, sparse, pairs, definitions, multilabel, or a user's own) is a `Task`:
a class with a few attributes (the rules every cross-cutting command reads) and three methods
(run the stages, render report.md, give the terminal tables). `simlab.tasks.skeleton.execute`
does everything around the stages: the run folder, its common files, and nothing partial
left behind. Register a task with `simlab.tasks.register_task`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from simlab.config import Experiment


def inputs_of(cfg: Experiment) -> list[str]:
    """The input paths of a config (`data.path`), which a run folder may never replace or hold."""
    data = getattr(getattr(cfg, "data", None), "path", None)
    return [data] if data else []


Table = tuple[str, list[str], list[list[str]]]
"""(title, header, rows) of one results table."""


@dataclass
class RunSummary:
    """What a run produced; the run skeleton writes it to the run folder.

    Attributes:
        folder: The final run folder.
        config: The validated config.
        metrics: system -> metric -> value on the test split (metrics.json).
        speed: system -> speed/size record (speed.json; retrieval indexes).
        history: One dict per epoch (history.jsonl, curves.png).
        notes: Sentences for the report and meta.json.
        items: Per-item rows `(system, item id, metric, value)` (perquery.tsv), the column
            contract every task shares and `simlab compare` reads.
        n_test: Test queries, pairs or items.
        meta: Extra meta.json fields of the task.
        seconds: Wall time of the run.
        chosen: The run's answer (`choose`): the system with the best val score of the task's main metric.
    """

    folder: Path
    config: Experiment
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    speed: dict[str, dict[str, float]] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    items: list[tuple[str, str, str, Any]] = field(default_factory=list)
    n_test: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    chosen: dict[str, Any] | None = None

    def choose(self) -> dict[str, Any] | None:
        """The run's answer: among the systems with a val score of the task's main metric (`val_<metric>` in
        `metrics`), the best (the first on a tie); its val score and test metrics. Test numbers never choose.
        None when no system has a val score."""
        metric = self.task.main_metric(self.config)
        key = f"val_{metric}"
        scored = [(m[key], s) for s, m in self.metrics.items() if m.get(key) is not None]
        if not scored:
            return None
        val, system = max(scored, key=lambda vs: vs[0])
        test = {k: v for k, v in self.metrics[system].items() if not k.startswith("val_")}
        return {"system": system, "by": key, "val": val, "test": test}

    def add_items(self, system: str, ids: list[str], values: dict[str, Any]) -> None:
        """Per-item rows of `system`: `values` maps a metric to one value per id."""
        for metric, column in values.items():
            self.items += [(system, i, metric, v) for i, v in zip(ids, column)]

    @property
    def task(self) -> Task:
        from simlab.tasks.registry import get_task

        return get_task(self.config.task)


class Task:
    """The protocol of a task kind; subclass it and register the subclass (`register_task`).

    Attributes:
        name: The `task:` value of its configs.
        schema: Its config class (a `simlab.config.Experiment`).
        unit: What one test item is, plural: queries, pairs or items.
        reference_system: The system every run has as a baseline (bm25, overlap, prior).
        main_systems: The systems that stand for a run, by preference (the first present wins).
        item_metrics: The per-item metrics it writes to perquery.tsv.
        commands: The commands that take its runs (search, inspect, match, classify).
        service: What `simlab serve` answers for its runs: `search`, `match` or `classify` (None: not served).
        curve_prefix: The split of its per-epoch metric in history (dev or val).
        same_metrics: perquery.tsv metric -> the metrics.json metric it is (the report shows it once).
        figures: The task's figures in an HTML report besides the learning curves: `speed` (quality vs
            speed of the indexes), `scores` (precision-recall and threshold curves), `per_label` (bars).
        built_models: Model names its stages build themselves (not checked by `preflight`).
        stages: The module of its stages, `run(cfg, summary, folder)`: imported when a run starts (torch and
            friends load then, not when the registry is read).
        reports: The module of its report, `render(summary)` (report.md) and `tables(summary)` (terminal).
        distributed: Whether it trains on several processes (DDP); such a task has `follow(cfg, out)`,
            the work of a rank other than 0.
    """

    name: ClassVar[str]
    schema: ClassVar[type]
    unit: ClassVar[str] = "items"
    reference_system: ClassVar[str]
    main_systems: ClassVar[tuple[str, ...]] = ("trained",)
    item_metrics: ClassVar[tuple[str, ...]] = ()
    commands: ClassVar[frozenset[str]] = frozenset()
    service: ClassVar[str | None] = None
    curve_prefix: ClassVar[str] = "val"
    distributed: ClassVar[bool] = False
    figures: ClassVar[frozenset[str]] = frozenset()
    built_models: ClassVar[frozenset[str]] = frozenset()
    stages: ClassVar[str] = ""
    reports: ClassVar[str] = ""
    same_metrics: ClassVar[dict[str, str]] = {}
    """perquery.tsv metrics that `compare` tests under another name than metrics.json's (`correct`: `accuracy`)."""

    def main_metric(self, cfg: Experiment) -> str:
        """The metrics.json metric a run is read by (sweep lines, reports, `simlab.Run.score`)."""
        raise NotImplementedError

    def compare_metric(self, cfg: Experiment) -> str:
        """The perquery.tsv metric `simlab compare` and the HTML report test by default."""
        return self.main_metric(cfg)

    def columns(self, cfg: Experiment) -> list[str]:
        """The metrics.json metrics an HTML report shows per system: those of the terminal's table."""
        return [self.main_metric(cfg)]

    def best_by(self, cfg: Experiment) -> str:
        """The per-epoch metric that picks the best epoch (plotted in curves.png)."""
        return cfg.train.best_by

    def run(self, cfg: Experiment, summary: RunSummary, folder: Path) -> None:
        """The stages: fill `summary` and write the task's own artifacts (model/, indexes/ ...) into `folder`,
        the staging folder that becomes `summary.folder` when everything succeeded. Default: `stages`' `run`."""
        import_module(self.stages).run(cfg, summary, folder)

    def report(self, summary: RunSummary) -> str:
        """report.md of a finished run. Default: `reports`' `render`."""
        return import_module(self.reports).render(summary)

    def tables(self, summary: RunSummary) -> list[Table]:
        """The tables printed on the terminal after a run. Default: `reports`' `tables`."""
        return import_module(self.reports).tables(summary)

    def preflight(self, cfg: Experiment) -> None:
        """Checks of a config against this machine, made before any work (for every grid point of a sweep before
        the first one runs): the data path exists, and the model name can be loaded (`check_model_name`).

        Raises:
            DataError, ModelLoadError: naming the field and what would work.
        """
        from simlab.errors import DataError

        for data in inputs_of(cfg):
            if not Path(data).exists():
                raise DataError(f"data.path: {data}: no such file or folder")
        model = getattr(cfg, "model", None)
        name = getattr(model, "preload", None) or getattr(model, "name", None)
        if name and name not in self.built_models:
            from simlab.models import check_model_name

            check_model_name(name)

    def new_summary(self, cfg: Experiment, out: Path) -> RunSummary:
        """The empty summary `run` fills (a task with more to report returns a `RunSummary` subclass)."""
        return RunSummary(folder=out, config=cfg)

    def main_system(self, systems: list[str]) -> str:
        """The system that stands for a run among `systems`: the first of `main_systems` present, else the first."""
        return next((s for s in self.main_systems if s in systems), systems[0])
