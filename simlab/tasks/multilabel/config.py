"""`task: multilabel`: the schema of multi-label classification runs (workload D)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simlab.config import (
    Experiment,
    MultilabelDataConfig,
    MultilabelLossConfig,
    MultilabelModelConfig,
    MultilabelTrainConfig,
    SchedulerConfig,
    ThresholdsConfig,
)


class MultilabelConfig(Experiment):
    """`task: multilabel`: texts or images with several labels each (workload D)."""

    task: Literal["multilabel"] = "multilabel"
    data: MultilabelDataConfig
    model: MultilabelModelConfig = MultilabelModelConfig()
    loss: MultilabelLossConfig = MultilabelLossConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    train: MultilabelTrainConfig = MultilabelTrainConfig()
    thresholds: ThresholdsConfig = ThresholdsConfig()
    baseline: str | None = Field(None, description="A multilabel run folder: every metric gets its delta to it.")
