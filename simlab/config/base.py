"""The base of every config block, and the fields every task's config shares.

`cluster:` says how to use a Ray cluster, not what the experiment is: it is left out of the
resolved `config.yaml`, of MLflow params and of a sweep's resume check, so a sweep started on a
cluster resumes on one machine (and back) without re-running a finished point.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Base of every config block: unknown fields are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrackingConfig(Section):
    mlflow: bool = True
    uri: str = Field("sqlite:///mlflow.db", description="MLflow tracking URI.")
    experiment: str | None = Field(
        None, description="MLflow experiment of the run; default: the config's `name` (one experiment per config)."
    )


class ClusterConfig(Section):
    """`simlab run --cluster ADDRESS` sets `address`; the rest says what each piece of work asks of Ray."""

    address: str | None = Field(
        None,
        description="Ray cluster: auto (this machine's cluster or RAY_ADDRESS), HOST:PORT of the head, or local "
        "(a Ray instance started here); null: no cluster (the default, single-process path).",
    )
    cpus_per_point: float = Field(1.0, gt=0, description="Sweep: CPUs a grid point's Ray task asks for.")
    gpus_per_point: float = Field(0.0, ge=0, description="Sweep: GPUs a grid point's Ray task asks for.")
    storage: Literal["driver", "shared"] = Field(
        "driver",
        description="Sweep: driver = each point runs into a temporary folder on its node and the finished run "
        "folder is sent back to --out on the driver; shared = --out is on storage every node mounts at the "
        "same path (NFS, ...) and points write there directly.",
    )
    max_retries: int = Field(
        0, ge=0, description="Sweep: times Ray re-runs a point lost with its node; 0: report it (a rerun resumes)."
    )
    cpus_per_worker: float = Field(1.0, gt=0, description="Training (--nproc N): CPUs of each Ray Train worker.")
    gpus_per_worker: float = Field(
        0.0, ge=0, description="Training: GPUs of each Ray Train worker (> 0: DDP over nccl, else gloo)."
    )


class Experiment(Section):
    """Fields every task shares; each task's schema (`simlab.tasks.<kind>.config`) adds its sections.

    `task` names the task kind (a `simlab.tasks.TASKS` key); every schema narrows it to one literal.
    """

    task: str
    name: str = "experiment"
    tracking: TrackingConfig = TrackingConfig()
    cluster: ClusterConfig = Field(
        ClusterConfig(),
        exclude=True,
        description="Ray cluster settings; not part of the resolved config.",
    )

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment the run is logged to: `tracking.experiment`, or the config's `name`."""
        return self.tracking.experiment or self.name
