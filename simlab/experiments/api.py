"""The Python API behind `import simlab`: run, load and compare experiments without the CLI.

`simlab.run` takes a YAML path, a config dict or a validated config and returns a `Run`;
`simlab.load_run` opens a finished run folder; `simlab.compare` tests runs (or run folders,
or sweep folders) against a baseline exactly as `simlab compare` does. Nothing here is
imported by `import simlab` until it is first used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from simlab.config import Experiment
from simlab.errors import ConfigError, RunFolderError

if TYPE_CHECKING:
    from simlab.experiments.comparison import Comparison
    from simlab.experiments.search import Hit
    from simlab.tasks.base import RunSummary, Task


@dataclass(frozen=True)
class Run:
    """A finished run folder.

    Attributes:
        path: The run folder.
        config: Its validated config.
        metrics: system -> metric -> test value (its metrics.json).
        chosen: The run's answer: `system`, the val score it was chosen `by` (`val`), its `test` metrics.
    """

    path: Path
    config: Experiment
    metrics: dict[str, dict[str, float]]
    chosen: dict | None = None

    @property
    def task(self) -> Task:
        from simlab.tasks import get_task

        return get_task(self.config.task)

    @property
    def systems(self) -> list[str]:
        """Every system the run evaluated, in the order of its table."""
        return list(self.metrics)

    @property
    def main_system(self) -> str:
        """The system that stands for the run across runs (the trained one, with exact search for retrieval);
        the run's own answer, chosen by val, is `chosen`."""
        return self.task.main_system(self.systems)

    @property
    def main_metric(self) -> str:
        """The metric the run is read by (the first `eval.metrics` of retrieval, F1 of pairs, ...)."""
        return self.task.main_metric(self.config)

    @property
    def score(self) -> float:
        """The main system's main metric on test."""
        return self.metrics[self.main_system][self.main_metric]

    def search(self, query: str, k: int = 10, system: str = "trained.flat") -> list[Hit]:
        """The top `k` documents for `query` from the run's saved index `system` (retrieval and sparse runs)."""
        from simlab.experiments.search import search_run

        return search_run(self.path, query, k, system)

    def __repr__(self) -> str:
        score = f"{self.main_system} {self.main_metric}={self.score:.4f}"
        return f"Run({str(self.path)!r}, task={self.config.task!r}, {score})"


def load_run(path: str | Path) -> Run:
    """Open the finished run folder `path`.

    Raises:
        RunFolderError: not a finished run folder (no meta.json or metrics.json).
    """
    from simlab.tasks import load_config
    from simlab.tasks.skeleton import read_metrics, run_task

    path = Path(path)
    run_task(path)
    try:
        metrics, chosen = read_metrics(path / "metrics.json")
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path / 'metrics.json'}: unreadable ({exc}); the run folder is incomplete") from None
    return Run(path, load_config(path / "config.yaml"), metrics, chosen)


def _configs(config: str | Path | dict | Experiment, overrides: Sequence[str]) -> list[tuple[str, Experiment]]:
    from simlab.tasks import load_sweep

    if isinstance(config, Experiment):
        if overrides:
            config = config.model_dump(mode="json")
        else:
            return [("", config)]
    if isinstance(config, dict):
        import tempfile

        import yaml

        with tempfile.TemporaryDirectory() as tmp:  # one loader for files and dicts: the same checks and messages
            path = Path(tmp) / "config.yaml"
            path.write_text(yaml.safe_dump(config), encoding="utf-8")
            return load_sweep(path, list(overrides))
    return load_sweep(config, list(overrides))


def run(
    config: str | Path | dict | Experiment,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    overwrite: bool = False,
) -> Run | list[Run]:
    """Run an experiment, as `simlab run` does, and return the finished run.

    Args:
        config: A YAML path, a config as a dict (the YAML's structure), or a validated config.
        overrides: `dotted.key=value` strings, as `--set` takes them; a list value sweeps.
        out: The run folder (a sweep: the folder of run folders); default `runs/<name>`.
        overwrite: Replace an existing run folder.

    Returns:
        The `Run`; for a sweep, one `Run` per grid point.

    Raises:
        ConfigError: the config is invalid (nothing is run).
        RunFolderError: `out` exists and `overwrite` is False.
    """
    points = _configs(config, overrides)
    out = Path(out) if out is not None else Path("runs") / points[0][1].name
    address = points[0][1].cluster.address  # a `cluster:` section: on Ray (docs/CLUSTER.md)
    if run_points(points, out, overwrite, address) is None:
        return [load_run(out / name) for name, _ in points]
    return load_run(out)


def run_points(
    points: list[tuple[str, Experiment]], out: Path, overwrite: bool, address: str | None, nproc: int = 1
) -> RunSummary | None:
    """`simlab run`'s work: a sweep (named grid points) into the folder `out`, returning None, or one run,
    returning its summary; on the Ray cluster at `address` when one is given."""
    if points[0][0]:
        from simlab.experiments.cluster_sweep import run_sweep_on_cluster
        from simlab.experiments.sweep import run_sweep

        if address:
            run_sweep_on_cluster(points, out, overwrite=overwrite, address=address)
        else:
            run_sweep(points, out, overwrite=overwrite)
        return None
    if address:
        from simlab.experiments.cluster_train import run_on_cluster

        return run_on_cluster(points[0][1], out, nproc, overwrite=overwrite, address=address)
    from simlab.experiments.runner import run_experiment

    return run_experiment(points[0][1], out, overwrite=overwrite)


def compare(
    runs: Sequence[Run | str | Path],
    metrics: Sequence[str] | None = None,
    test: str = "auto",
    correction: str = "holm",
    baseline: str | None = None,
    alpha: float = 0.05,
    seed: int = 42,
    systems: Sequence[str] | None = None,
) -> Comparison:
    """Compare runs as `simlab compare` does: one run's systems, or each run's main system.

    Args:
        runs: `Run`s, run folders or sweep folders.
        metrics: Per-query metrics to test (default: all the runs share).
        test, correction, alpha, seed: As `simlab.experiments.compare.compare`.
        baseline: A system name (`bm25`, `run1/trained.flat`), a run's name, or swept values (`pos_neg_ratio=1`);
            default: one run's reference system (bm25, overlap, prior), or the first run of several.
        systems: The systems to keep (default: all of one run, each run's main system of several).

    Returns:
        A `Comparison` (`to_markdown()`, `to_frame()`, `to_json()`).
    """
    from simlab.experiments.compare import compare_runs

    if not runs:
        raise ConfigError("compare: give at least one run")
    folders = [r.path if isinstance(r, Run) else Path(r) for r in runs]
    return compare_runs(folders, metrics, test, correction, baseline, alpha=alpha, seed=seed, systems=systems)
