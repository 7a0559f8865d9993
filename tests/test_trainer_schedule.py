"""The shared `SchedulerConfig` on the Hugging Face trainer (retrieval and pair training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from simlab.config import SchedulerConfig
from simlab.errors import ConfigError
from simlab.tasks import load_config
from simlab.training.schedulers import exponential_per_epoch, trainer_schedule


def test_trainer_arguments_per_schedule():
    assert trainer_schedule(SchedulerConfig(name="warmup_cosine", warmup_ratio=0.2))[0] == {
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.2,
    }
    assert trainer_schedule(SchedulerConfig(name="warmup_linear"))[0]["lr_scheduler_type"] == "linear"
    plateau, callbacks = trainer_schedule(SchedulerConfig(name="plateau", patience=3, factor=0.2))
    assert plateau["lr_scheduler_type"] == "reduce_lr_on_plateau" and callbacks == []
    assert plateau["lr_scheduler_kwargs"] == {"patience": 3, "factor": 0.2, "min_lr": 0.0, "mode": "max"}
    args, callbacks = trainer_schedule(SchedulerConfig(name="exponential", gamma=0.5))
    assert args == {"lr_scheduler_type": "constant"} and len(callbacks) == 1


def test_exponential_callback_scales_the_constant_schedule_per_epoch():
    from transformers import get_constant_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = get_constant_schedule(opt)
    callback = exponential_per_epoch(0.5)
    for _ in range(3):  # three epochs
        opt.step()
        sched.step()
        callback.on_epoch_end(None, None, None, lr_scheduler=sched, optimizer=opt)
    opt.step()
    sched.step()  # the schedule recomputes lr from its base rates: the decay must survive it
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_old_scheduler_keys_are_refused_with_the_new_field_named():
    with pytest.raises(ConfigError, match="patience"):
        load_config(Path(__file__).parents[1] / "examples" / "matching.yaml", ["train.patience=2"])


def test_pair_training_follows_an_exponential_schedule(tmp_path):
    from test_pairs_run import grouped_overrides, write_records

    from simlab.experiments.runner import run_experiment

    write_records(tmp_path / "records.csv", n_groups=20)
    cfg = load_config(
        Path(__file__).parents[1] / "examples" / "matching.yaml",
        [*grouped_overrides(tmp_path), "train.epochs=3", "train.scheduler={name: exponential, gamma: 0.5}"],
    )
    run_experiment(cfg, tmp_path / "run")
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    rates = [h["learning_rate"] for h in history]
    assert rates == pytest.approx([cfg.train.learning_rate * 0.5**e for e in range(3)])
