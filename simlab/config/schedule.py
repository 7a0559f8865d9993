"""Sections the training loops of every task take: the learning-rate schedule."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simlab.config.base import Section


class SchedulerConfig(Section):
    """The learning-rate schedule; built by `simlab.training.schedulers.build_scheduler`.

    `exponential` multiplies the rate by `gamma` after every epoch (torch ExponentialLR);
    `warmup_cosine` / `warmup_linear` warm up linearly over `warmup_ratio` of the steps, then
    decay along a cosine / a line to 0, stepped every batch; `plateau` multiplies it by
    `factor` when the val metric has not improved for `patience` epochs (ReduceLROnPlateau);
    `constant` keeps it. The same section serves every task: `train.scheduler` of retrieval
    and pairs (on the Hugging Face trainer, `trainer_schedule`), `scheduler` of multilabel.
    """

    name: Literal["constant", "exponential", "warmup_cosine", "warmup_linear", "plateau"] = "exponential"
    gamma: float = Field(0.9, gt=0, le=1, description="exponential: rate factor per epoch.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="warmup_*: share of steps spent warming up.")
    patience: int = Field(2, ge=0, description="plateau: epochs without val improvement before reducing.")
    factor: float = Field(0.5, gt=0, lt=1, description="plateau: rate factor on a plateau.")
    min_lr: float = Field(0.0, ge=0, description="plateau: lower bound of the rate.")
