"""Open the run folders a service answers for, each loaded once.

Which engine a run gets comes from its task's rules (`Task.service`): `search` (retrieval and
sparse runs: `RunSearcher`, every saved system), `match` (pairs and definitions runs:
`PairMatcher`), `classify` (multilabel runs: `LabelClassifier`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simlab.errors import ConfigError, RunFolderError

ENGINES = {
    "search": ("simlab.experiments.search", "RunSearcher"),
    "match": ("simlab.experiments.predict", "PairMatcher"),
    "classify": ("simlab.experiments.predict", "LabelClassifier"),
}
EXAMPLE_QUERIES = 50
"""Test queries a search run offers the page as examples (their hits carry judgements)."""


@dataclass
class ServedRun:
    """One loaded run: its name in the API, folder, task, service and engine.

    Attributes:
        name: The folder's name (made unique among the served runs).
        path: The run folder.
        task: Its task (`retrieval`, `sparse`, `pairs`, `definitions`, `multilabel`).
        service: `search`, `match` or `classify`.
        engine: The loaded `RunSearcher`, `PairMatcher` or `LabelClassifier`.
        metrics: Its metrics.json (system -> metric -> test value).
        main_system: The system that stands for the run; the default of `/search`.
        seconds: Time taken to load it.
        chosen: metrics.json's `chosen`: the run's answer (the system chosen by val), if it names one.
    """

    name: str
    path: Path
    task: str
    service: str
    engine: Any
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    main_system: str | None = None
    seconds: float = 0.0
    chosen: dict | None = None

    def info(self) -> dict[str, Any]:
        """The run as `/runs` lists it."""
        out: dict[str, Any] = {
            "name": self.name,
            "path": str(self.path),
            "task": self.task,
            "service": self.service,
            "metrics": self.metrics,
            "chosen": self.chosen,
            "load_seconds": round(self.seconds, 3),
        }
        if self.service == "search":
            out |= {
                "systems": list(self.engine.systems),
                "default_system": self.main_system,
                "not_saved": [s for s in self.metrics if s not in self.engine.systems],
                "examples": self.engine.test_queries(EXAMPLE_QUERIES),
            }
        else:
            out |= self.engine.describe()
        return out


def load_run(path: str | Path, name: str | None = None) -> ServedRun:
    """Load one run folder for its task's service.

    Raises:
        RunFolderError: not a finished run, or its task is not served (the message names those that are).
    """
    from importlib import import_module

    from simlab.tasks import TASKS
    from simlab.tasks.skeleton import read_metrics, run_task

    path = Path(path)
    t0 = time.perf_counter()
    task = run_task(path)
    if task.service not in ENGINES:
        served = sorted(n for n, t in TASKS.items() if t.service in ENGINES)
        raise RunFolderError(f"{path} is a {task.name} run; `simlab serve` takes runs of task {', '.join(served)}")
    module, cls = ENGINES[task.service]
    engine = getattr(import_module(module), cls)(path)
    try:
        metrics, chosen = read_metrics(path / "metrics.json")
    except (OSError, json.JSONDecodeError):
        raise RunFolderError(f"{path / 'metrics.json'}: missing or not JSON; the run folder is incomplete") from None
    main = None
    if task.service == "search":
        systems = list(engine.systems)
        main = (chosen or {}).get("system")  # the run's answer (chosen by val), else its task's main system
        if main not in systems:
            main = next((s for s in task.main_systems if s in systems), systems[0])
    return ServedRun(
        name or path.resolve().name,
        path,
        task.name,
        task.service,
        engine,
        metrics,
        main,
        time.perf_counter() - t0,
        chosen,
    )


def load_runs(paths: list[str | Path]) -> dict[str, ServedRun]:
    """Every run of `paths`, by a unique name (the folder's, then `-2`, `-3` ... for a repeated name).

    Raises:
        ConfigError: no run given, or one folder given twice.
    """
    if not paths:
        raise ConfigError("give at least one run folder to serve")
    resolved = [Path(p).resolve() for p in paths]
    twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if twice:
        raise ConfigError(f"run folder given twice: {', '.join(twice)}; give each run once")
    runs: dict[str, ServedRun] = {}
    for path in paths:
        base = Path(path).resolve().name
        name, n = base, 1
        while name in runs:
            n += 1
            name = f"{base}-{n}"
        runs[name] = load_run(path, name)
    return runs
