"""What the `train` section of every task shares: the learning-rate schedule, resume, trainer integrations."""

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


SPARSE_GRADS = (
    "A static embedding's table (wordllama), when trained, gets sparse gradients: each step updates the rows of "
    "its batch's tokens only (lazy Adam; SGD without momentum exactly), about 8x faster steps. false: dense "
    "gradients and the whole table updated every step (the exact AdamW). simlab/training/static_tables.py."
)


class Resumable(Section):
    """A `train` section whose interrupted runs can resume."""

    resume: bool | str = Field(
        False,
        description="true: continue an interrupted run to the same --out from the state it left beside it (the "
        "config may differ in train.epochs only); or a trainer checkpoint folder / a loop's state file.",
    )


class TrainerSection(Resumable):
    """A `train` section run on the Hugging Face trainer."""

    report_to: list[str] = Field(
        [], description="Trainer integrations besides simlab's own MLflow run: tensorboard, wandb, clearml, ..."
    )
