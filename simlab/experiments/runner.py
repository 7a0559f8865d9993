"""`simlab run` for one config: the task's stages inside the run skeleton, then tracking.

`run_experiment` looks up the config's task (`simlab.tasks.TASKS`), runs it through
`simlab.tasks.skeleton.execute` (staged run folder, common files) and logs the finished folder
to MLflow. Under torchrun (`--nproc N`) rank 0 does all of this while the other ranks only
train alongside it (`Task.follow`), for the tasks that train on several processes.
"""

from __future__ import annotations

from pathlib import Path

from simlab import distributed
from simlab.config import Experiment
from simlab.errors import ConfigError
from simlab.tasks import RunSummary, get_task
from simlab.tasks.skeleton import execute


def run_experiment(cfg: Experiment, out: Path, overwrite: bool = False) -> RunSummary:
    """Run any experiment config into the run folder `out` and track it; see the module docstring."""
    task = get_task(cfg.task)
    if distributed.is_distributed():
        if not task.distributed:
            raise ConfigError(f"task: {cfg.task} runs on one process; run it without torchrun/--nproc")
        if not distributed.is_main():
            return task.follow(cfg, Path(out))
    summary = execute(task, cfg, Path(out), overwrite)
    if cfg.tracking.mlflow:
        from simlab.experiments.tracking import log_run

        log_run(summary)
    return summary
