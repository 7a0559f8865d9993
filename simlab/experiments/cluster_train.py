"""Training on a Ray cluster: one run on N Ray Train workers (`TorchTrainer`, PyTorch DDP).

`simlab run CONFIG --cluster ADDRESS --nproc N` runs the config's task on N Ray Train workers,
spread over the nodes, each asking for `cluster.cpus_per_worker` CPUs (and
`cluster.gpus_per_worker` GPUs). Ray Train starts the workers, sets torchrun's environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR) and opens the process group (gloo on CPU, nccl
on GPU); from there each worker is exactly a process of `simlab run --nproc N`: rank 0 runs the
whole experiment into the run folder and the other ranks train alongside it (`Task.follow`),
the Hugging Face trainer wraps the model in DDP, and the loss gathers the in-batch negatives
of every worker. Checkpoints and `train.resume` work as in a local run, beside the run folder.

The run folder is written by rank 0, wherever Ray placed it: `--out` must be on storage
every node mounts at the same path (docs/CLUSTER.md). The driver tracks the finished folder
in its MLflow store.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from simlab import cluster
from simlab.config import Experiment
from simlab.errors import ConfigError, SimlabError
from simlab.experiments.cluster_sweep import in_driver_dir
from simlab.experiments.sweep import finished_summary
from simlab.tasks import RunSummary, get_task
from simlab.tasks.skeleton import execute


def train_worker(config: dict) -> None:
    """One Ray Train worker: rank 0 runs the experiment into the run folder, the others train alongside it."""
    import ray.train

    cluster.quiet_worker_logs()
    cfg: Experiment = config["cfg"]
    out = Path(config["out"])
    task = get_task(cfg.task)
    with in_driver_dir(config["cwd"]):
        if ray.train.get_context().get_world_rank() == 0:
            execute(task, cfg, out, config["overwrite"])
        else:
            task.follow(cfg, out)


def run_with_ray_train(
    cfg: Experiment, out: Path, workers: int, overwrite: bool = False, address: str | None = None
) -> RunSummary:
    """Run `cfg` into the run folder `out` on `workers` Ray Train workers; see the module docstring.

    Raises:
        ConfigError: the task does not train on several processes, Ray is not installed, or no cluster
            answers at the address.
        SimlabError: what a worker raised for a user mistake (a bad data file, ...).
    """
    import os

    task = get_task(cfg.task)
    if not task.distributed:
        raise ConfigError(f"task: {cfg.task} runs on one process; run it without --nproc")
    task.preflight(cfg)
    out = Path(out).resolve()
    if out.exists() and not overwrite:
        from simlab.errors import RunFolderError

        raise RunFolderError(f"{out} already exists; choose another --out or pass --overwrite")
    ray = cluster.connect(address or cfg.cluster.address)
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    settings = cfg.cluster
    gpus = settings.gpus_per_worker
    resources = {"CPU": settings.cpus_per_worker} | ({"GPU": gpus} if gpus else {})
    with tempfile.TemporaryDirectory(prefix="simlab-ray-train-") as storage:
        trainer = TorchTrainer(
            train_worker,
            train_loop_config={"cfg": cfg, "out": str(out), "overwrite": overwrite, "cwd": os.getcwd()},
            torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
            scaling_config=ScalingConfig(
                num_workers=workers, use_gpu=bool(gpus), resources_per_worker=resources, placement_strategy="SPREAD"
            ),
            run_config=RunConfig(name=f"simlab-{out.name}", storage_path=storage),
        )
        try:
            trainer.fit()
        except ray.train.TrainingFailedError as exc:
            raise _user_error(exc) or exc from None
    summary = finished_summary(out, cfg)
    if cfg.tracking.mlflow:
        from simlab.experiments.tracking import log_run

        log_run(summary)
    return summary


def _user_error(exc: Exception) -> SimlabError | None:
    """The `SimlabError` a worker raised (rank 0's first), to report as a local run would."""
    failures = getattr(exc, "worker_failures", None) or {}
    for _, failure in sorted(failures.items()):
        cause = getattr(failure, "cause", failure)
        if isinstance(cause, SimlabError):
            return cause
    return None


def run_on_cluster(
    cfg: Experiment, out: Path, nproc: int = 1, overwrite: bool = False, address: str | None = None
) -> RunSummary:
    """One config with a cluster: `nproc` > 1 trains on that many Ray Train workers; otherwise the run executes
    here, on the driver, and its corpus is encoded on the cluster when it is large (`index.encode`)."""
    if nproc > 1:
        return run_with_ray_train(cfg, out, nproc, overwrite=overwrite, address=address)
    cluster.connect(address or cfg.cluster.address)
    from simlab.experiments.runner import run_experiment

    return run_experiment(cfg, out, overwrite=overwrite)
