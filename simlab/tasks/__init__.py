"""The task registry: every task kind in one folder, found by the name in `task:`.

`TASKS` maps a name to its `Task` (see `simlab.tasks.base`); `register_task` adds one, so a
user's own task kind plugs in without editing simlab. `load_config` / `load_sweep` read a YAML
file against the schema of its task. Older YAML keeps working: `task: retrieval` with
`model.kind: sparse` is the `sparse` task, `task: pairs` with a `head:` block is `definitions`.

Only the light parts of each task (schema and rules) are imported here; a task's stages
import torch and friends when they run.
"""

from __future__ import annotations

from pathlib import Path

from simlab.config import Experiment
from simlab.config.loading import load
from simlab.errors import ConfigError
from simlab.tasks.base import RunSummary, Task
from simlab.tasks.registry import TASKS, get_task, register_task, task_name


def _schema_of(source: str, raw: dict) -> type[Experiment]:
    task = task_name(raw)
    if not isinstance(task, str) or task not in TASKS:
        hint = " (a sweep runs one task)" if isinstance(task, list) else ""
        raise ConfigError(f"{source}: task: {task!r} is not a task{hint}; choose one of: {', '.join(sorted(TASKS))}")
    raw["task"] = task
    return TASKS[task].schema


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Experiment:
    """Read, override and validate an experiment config; raise `ConfigError` on any problem.

    A config with sweep axes (a list where a value belongs) is refused here: see `load_sweep`.
    """
    return load(path, list(overrides), _schema_of, sweep=False)[0][1]


def load_sweep(path: str | Path | None, overrides: list[str] = ()) -> list[tuple[str, Experiment]]:
    """Read, override, expand and validate a config that may be a sweep.

    Every grid point is validated like a single config before this returns, so a bad value
    anywhere fails before any run starts.

    Returns:
        (run name, config) per grid point, in the order of `simlab.config.sweep.expand`;
        a config without sweep axes gives one item named "".
    """
    return load(path, list(overrides), _schema_of, sweep=True)


from simlab.tasks import definitions, multilabel, pairs, retrieval, sparse  # noqa: E402  (they register)

__all__ = ["TASKS", "RunSummary", "Task", "get_task", "load_config", "load_sweep", "register_task"]
__all__ += ["definitions", "multilabel", "pairs", "retrieval", "sparse"]
