"""The base of every config block, and the fields every task's config shares."""

from __future__ import annotations

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


class Experiment(Section):
    """Fields every task shares; each task's schema (`simlab.tasks.<kind>.config`) adds its sections.

    `task` names the task kind (a `simlab.tasks.TASKS` key); every schema narrows it to one literal.
    """

    task: str
    name: str = "experiment"
    tracking: TrackingConfig = TrackingConfig()

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment the run is logged to: `tracking.experiment`, or the config's `name`."""
        return self.tracking.experiment or self.name
