"""Learning-rate schedules from a `SchedulerConfig`, for any task's training loop.

`build_scheduler(cfg, optimizer, steps_per_epoch, epochs)` returns a `Schedule`; a loop calls
`after_batch()` after every optimizer step and `after_epoch(val_metric)` after every epoch,
and the schedule steps the underlying torch scheduler at the interval it is defined for:
ExponentialLR per epoch (the seed experiments' `gamma` is a per-epoch factor), warmup + cosine
per batch (transformers' `get_cosine_schedule_with_warmup`), ReduceLROnPlateau per epoch on
the val metric (higher is better). `SCHEDULERS` is the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simlab.errors import ConfigError


@dataclass
class Schedule:
    """A torch LR scheduler and when it steps: `interval` is "batch", "epoch" or "plateau"."""

    scheduler: Any
    interval: str

    def after_batch(self) -> None:
        if self.interval == "batch":
            self.scheduler.step()

    def after_epoch(self, val_metric: float | None = None) -> None:
        if self.interval == "epoch":
            self.scheduler.step()
        elif self.interval == "plateau" and val_metric is not None:
            self.scheduler.step(val_metric)


def _constant(cfg, optimizer, steps_per_epoch: int, epochs: int) -> Schedule:
    from torch.optim.lr_scheduler import LambdaLR

    return Schedule(LambdaLR(optimizer, lambda _: 1.0), "none")


def _exponential(cfg, optimizer, steps_per_epoch: int, epochs: int) -> Schedule:
    from torch.optim.lr_scheduler import ExponentialLR

    return Schedule(ExponentialLR(optimizer, gamma=cfg.gamma), "epoch")


def _warmup_cosine(cfg, optimizer, steps_per_epoch: int, epochs: int) -> Schedule:
    from transformers import get_cosine_schedule_with_warmup

    total = max(1, steps_per_epoch * epochs)
    return Schedule(get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total), "batch")


def _warmup_linear(cfg, optimizer, steps_per_epoch: int, epochs: int) -> Schedule:
    from transformers import get_linear_schedule_with_warmup

    total = max(1, steps_per_epoch * epochs)
    return Schedule(get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total), "batch")


def _plateau(cfg, optimizer, steps_per_epoch: int, epochs: int) -> Schedule:
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    return Schedule(
        ReduceLROnPlateau(optimizer, mode="max", factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr),
        "plateau",
    )


SCHEDULERS: dict[str, Callable[..., Schedule]] = {
    "constant": _constant,
    "exponential": _exponential,
    "warmup_cosine": _warmup_cosine,
    "warmup_linear": _warmup_linear,
    "plateau": _plateau,
}


def build_scheduler(cfg, optimizer, steps_per_epoch: int, epochs: int) -> Schedule:
    """The schedule `cfg.name` (a `simlab.config.SchedulerConfig`) over `optimizer`."""
    if cfg.name not in SCHEDULERS:
        raise ConfigError(
            f"scheduler.name: {cfg.name!r} is not a schedule; choose one of: {', '.join(sorted(SCHEDULERS))}"
        )
    return SCHEDULERS[cfg.name](cfg, optimizer, steps_per_epoch, epochs)


def trainer_schedule(cfg) -> tuple[dict[str, Any], list[Any]]:
    """The same schedules on the Hugging Face trainer (retrieval and pair training).

    Returns the `TrainingArguments` keyword arguments and the trainer callbacks that make
    schedule `cfg` (a `SimlabConfig.SchedulerConfig`): the trainer's own `cosine`, `linear`,
    `constant` and `reduce_lr_on_plateau` schedules (the latter stepped on
    `metric_for_best_model`, maximised); `exponential` is the constant schedule whose base
    rate `exponential_per_epoch` multiplies by `gamma` at the end of every epoch, as torch's
    per-epoch ExponentialLR does (the trainer has no exponential schedule of its own).
    """
    if cfg.name not in SCHEDULERS:
        raise ConfigError(
            f"train.scheduler.name: {cfg.name!r} is not a schedule; choose one of: {', '.join(sorted(SCHEDULERS))}"
        )
    if cfg.name == "plateau":
        kwargs = {"patience": cfg.patience, "factor": cfg.factor, "min_lr": cfg.min_lr, "mode": "max"}
        return {"lr_scheduler_type": "reduce_lr_on_plateau", "lr_scheduler_kwargs": kwargs}, []
    if cfg.name in ("warmup_cosine", "warmup_linear"):
        # transformers 5: warmup_steps in [0, 1) is a ratio of all steps
        return {"lr_scheduler_type": cfg.name.removeprefix("warmup_"), "warmup_steps": cfg.warmup_ratio}, []
    callbacks = [exponential_per_epoch(cfg.gamma)] if cfg.name == "exponential" else []
    return {"lr_scheduler_type": "constant"}, callbacks


def exponential_per_epoch(gamma: float):
    """A trainer callback multiplying the learning rate by `gamma` after every epoch (over the
    constant schedule, a LambdaLR whose rate is `base_lr * 1` at every step)."""
    from transformers import TrainerCallback

    class ExponentialPerEpoch(TrainerCallback):
        def on_epoch_end(self, args, state, control, lr_scheduler=None, optimizer=None, **kwargs):
            if lr_scheduler is not None:
                lr_scheduler.base_lrs = [lr * gamma for lr in lr_scheduler.base_lrs]
            if optimizer is not None:
                for group in optimizer.param_groups:
                    group["lr"] *= gamma

    return ExponentialPerEpoch()
