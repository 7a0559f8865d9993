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
    "plateau": _plateau,
}


def build_scheduler(cfg, optimizer, steps_per_epoch: int, epochs: int) -> Schedule:
    """The schedule `cfg.name` (a `simlab.config.SchedulerConfig`) over `optimizer`."""
    if cfg.name not in SCHEDULERS:
        raise ConfigError(
            f"scheduler.name: {cfg.name!r} is not a schedule; choose one of: {', '.join(sorted(SCHEDULERS))}"
        )
    return SCHEDULERS[cfg.name](cfg, optimizer, steps_per_epoch, epochs)
