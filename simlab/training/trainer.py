"""What every simlab trainer shares: its result, its per-epoch history, and the choice of the best epoch.

On the sentence-transformers trainers (`dense`, `sparse`, `pairs`): `training_args` maps a `train`
config section onto the trainer's arguments; `epoch_history` is the callback that replaces the
trainer's progress bar, writing readable lines instead of raw log dicts and recording one
history record per epoch; `fit` trains with it. Every epoch is evaluated, checkpointed and the
best one's weights loaded at the end by the trainer itself (`load_best_model_at_end`).
The hand-written loops (`multilabel`, `head`) record their history themselves and keep their
best weights with `BestWeights`. Either way the best epoch is `best_epoch` of the history.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simlab.training.schedulers import trainer_schedule


@dataclass
class TrainResult:
    """What a training run returns.

    `history`: one record per epoch (`epoch`, `train_loss`, the dev/val metrics, `seconds` of the
    epoch with its evaluation); `best_epoch`: the epoch whose weights the model keeps (None when no
    epoch was evaluated); `seconds`: wall time. Retrieval training also counts its pairs, processes
    and negatives per query; SPLADE adds its progress records (`steps`) and `notes` for the report;
    the head the time of embedding its texts once (`encode_seconds`). `resumed_from`: the checkpoint
    (`{"checkpoint": path, "epoch": n}`) an interrupted run continued from, or None.
    """

    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0
    n_pairs: int = 0
    world_size: int = 1
    negatives_per_query: float = 0.0
    steps: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    encode_seconds: float = 0.0
    resumed_from: dict | None = None

    @property
    def epoch_seconds(self) -> list[float]:
        return [h["seconds"] for h in self.history]


def best_epoch(history: list[dict], key: str, higher: bool = True) -> int | None:
    """The epoch of the record with the best `key` (the first of equals), None when no record has it."""
    scored = [h for h in history if h.get(key) is not None]
    if not scored:
        return None
    return (max if higher else min)(scored, key=lambda h: h[key])["epoch"]


class BestWeights:
    """The best epoch of a hand-written loop: `update` after each epoch's history record copies the
    modules' weights when that epoch is the best so far by `key`; `restore` loads the copy back."""

    def __init__(self, key: str, higher: bool = True) -> None:
        self.key, self.higher, self.states = key, higher, []

    def update(self, result: TrainResult, *modules) -> None:
        result.best_epoch = best_epoch(result.history, self.key, self.higher)
        if result.best_epoch == result.history[-1]["epoch"]:
            self.states = [copy.deepcopy(m.state_dict()) for m in modules]

    def restore(self, *modules) -> None:
        for module, state in zip(modules, self.states):
            module.load_state_dict(state)


def report_to(names: list[str]) -> list[str] | str:
    """The trainer's `report_to` for a config's `train.report_to` (`"none"` when empty).

    Those are the Hugging Face trainer's own integrations (tensorboard, wandb, clearml, ...),
    besides simlab's MLflow run. ClearML's offline mode (`CLEARML_OFFLINE_MODE=1`) cannot
    take the checkpoint upload the transformers callback makes on every save (clearml 2.1
    raises `'DummyModel' object has no attribute 'locked'`), so there, unless
    `CLEARML_LOG_MODEL` is set, checkpoints are not logged; metrics and the config are.
    ClearML reports from a thread rather than a forked process (see below).
    """
    offline = os.environ.get("CLEARML_OFFLINE_MODE", "").lower() in ("1", "true", "yes", "on")
    if "clearml" in names and offline:
        os.environ.setdefault("CLEARML_LOG_MODEL", "false")
    if "clearml" in names:
        # On Linux clearml reports from a forked subprocess (`sdk.development.report_use_subprocess`); a fork of
        # a process already running torch and tokenizers threads can deadlock (seen here: parent and child both
        # waiting on futexes, forever), so report from a thread, as that setting does when false.
        from clearml import Task

        Task._report_subprocess_enabled = False
    return list(names) or "none"


def training_args(args_class, cfg, work_dir: Path, best: str | None, logging_steps: int, **extra):
    """The trainer's arguments (`args_class`, a sentence-transformers `...TrainingArguments`) and the
    schedule's callbacks for the `train` config section `cfg`.

    Epochs, batch size, learning rate, schedule (`trainer_schedule`), seed and `report_to` come from
    `cfg`; training runs on the CPU and logs every `logging_steps`. With `best`, the trainer's key
    of the metric that picks the best epoch (maximised), every epoch is evaluated and checkpointed
    into `work_dir` (the best and the last checkpoint kept) and the best epoch's weights are loaded
    at the end; without it, neither. `extra`: the trainer's own arguments (they override these).
    """
    schedule, callbacks = trainer_schedule(cfg.scheduler)
    every = "epoch" if best else "no"
    common = {
        "output_dir": str(work_dir),
        "num_train_epochs": cfg.epochs,
        "per_device_train_batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        **schedule,
        "seed": cfg.seed,
        "eval_strategy": every,
        "save_strategy": every,
        "load_best_model_at_end": best is not None,
        "metric_for_best_model": best,
        "greater_is_better": True,
        "save_total_limit": 1,
        "logging_steps": logging_steps,
        "report_to": report_to(cfg.report_to),  # e.g. ["tensorboard"]; needs that integration installed
        "use_cpu": True,
    }
    return args_class(**(common | extra)), callbacks


def mean(xs: list[float]) -> float | None:
    """The mean of `xs`, None when empty."""
    return sum(xs) / len(xs) if xs else None


def epoch_history(
    result: TrainResult,
    evaluated: Callable[[dict[str, Any]], dict[str, float]],
    *,
    line: Callable[[dict], str] | None = None,
    on_step: Callable[[Any, dict], str | None] | None = None,
    fields: Callable[[list[dict]], dict] | None = None,
    epoch_offset: int = 0,
    echo: Callable[[str], None] | None = None,
):
    """The trainer's progress bar without its raw log dicts, recording `result.history`.

    At the end of every epoch a record `epoch` (plus `epoch_offset`), `train_loss` (the mean of the
    epoch's logged losses), `fields(the epoch's training logs)`, `seconds`; its evaluation adds
    `evaluated(the trainer's metrics)`, brings `seconds` up to date and writes `line(record)`.
    `on_step(state, logs)` runs on every training log; it may add keys to `logs` (the epoch's copy
    that `fields` reads) and returns a line to write, or None. Lines go to `echo`, else above the
    progress bar (print when there is none), from the main process only.
    """
    from transformers.trainer_callback import ProgressCallback

    class EpochHistory(ProgressCallback):
        def on_epoch_begin(self, args, state, control, **kw):
            self.t0, self.logs = time.perf_counter(), []

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.logs.append(dict(logs))
                if on_step is not None:
                    self.write(state, on_step(state, self.logs[-1]))

        def on_epoch_end(self, args, state, control, **kw):
            record = {
                "epoch": round(state.epoch or 0) + epoch_offset,
                "train_loss": mean([float(log["loss"]) for log in self.logs]),
            }
            result.history.append(record | (fields(self.logs) if fields else {}) | self.seconds())

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            super().on_evaluate(args, state, control, **kw)
            if result.history and metrics:
                result.history[-1].update(evaluated(metrics) | self.seconds())
                if line is not None:
                    self.write(state, line(result.history[-1]))

        def seconds(self) -> dict[str, float]:
            return {"seconds": round(time.perf_counter() - self.t0, 3)}

        def write(self, state, text: str | None) -> None:
            if text is not None and state.is_world_process_zero:
                (echo or (self.training_bar.write if self.training_bar is not None else print))(text)

    return EpochHistory()


HISTORY = "history.jsonl"
"""The epochs trained so far, kept beside the checkpoints (`work_dir`) so that a resumed run's history is whole."""


def _checkpoints(work_dir: Path) -> list[Path]:
    """The trainer's `checkpoint-<step>` folders in `work_dir`, by step."""
    found = [p for p in Path(work_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def resume_checkpoint(resume: bool | str, work_dir: Path) -> str | None:
    """`train.resume` as the trainer wants it: a checkpoint folder, or None to start afresh.

    `true` takes the last complete checkpoint in `work_dir`: the trainer writes `trainer_state.json`
    last, so a checkpoint without it was cut off while being saved; it is removed and the one
    before it is taken.

    Raises:
        ConfigError: `true` but no complete checkpoint; a given folder that is not a checkpoint.
    """
    from simlab.errors import ConfigError

    if resume is False:
        return None
    if resume is not True:
        if not (Path(resume) / "trainer_state.json").is_file():
            raise ConfigError(f"train.resume: {resume} is not a complete trainer checkpoint (no trainer_state.json)")
        return str(resume)
    for checkpoint in reversed(_checkpoints(work_dir)):
        if (checkpoint / "trainer_state.json").is_file():
            return str(checkpoint)
        import shutil

        shutil.rmtree(checkpoint, ignore_errors=True)  # cut off while being saved: never resumed from
    raise ConfigError(
        f"train.resume: true, but {work_dir} holds no complete checkpoint (the run to this --out finished, or "
        "never finished an epoch); set train.resume: false to start afresh"
    )


def _save_history(result: TrainResult, work_dir: Path) -> None:
    import json

    from simlab.fsutil import write_text

    write_text(Path(work_dir) / HISTORY, "".join(json.dumps(h) + "\n" for h in result.history))


def fit(trainer, callback, resume_from: str | None = None, result: TrainResult | None = None) -> float:
    """Train with `callback` (`epoch_history`) in place of the trainer's progress bar; the wall seconds.

    With `result`, the history so far is kept beside the checkpoints after every epoch; resuming
    from a checkpoint puts the epochs before it back into `result.history` and records
    `result.resumed_from`, so the history of a resumed run is the whole run's.
    """
    import json

    from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

    work_dir = Path(trainer.args.output_dir)
    if result is not None and resume_from is not None:
        state = json.loads((Path(resume_from) / "trainer_state.json").read_text(encoding="utf-8"))
        done = round(state.get("epoch") or 0)
        saved = work_dir / HISTORY
        lines = saved.read_text(encoding="utf-8").splitlines() if saved.is_file() else []
        result.history[:0] = [h for h in map(json.loads, lines) if h["epoch"] <= done]
        result.resumed_from = {"checkpoint": str(resume_from), "epoch": done}

    class KeepHistory(TrainerCallback):
        def on_save(self, args, state, control, **kw):  # the epoch's record is complete when its checkpoint is
            _save_history(result, work_dir)

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)  # the trainer's stand-in when its bars are off: a dict per log
    trainer.add_callback(callback)
    if result is not None:
        trainer.add_callback(KeepHistory())
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    return time.perf_counter() - t0


class LoopCheckpoint:
    """Resume for the hand-written loops (multilabel, head): their whole state after each epoch.

    `save(epoch, result)` writes the modules', optimizer's and schedule's states, the RNG states
    (torch's and the loop's shuffling generator), the history and the best epoch's weights to
    `work_dir/loop-state.pt`, atomically (a temp file renamed: a kill while saving leaves the
    previous epoch's state). `resume(train.resume, result)` loads it back and returns the number of
    epochs done (0: start afresh), so the loop goes on where it stopped, with the same numbers an
    uninterrupted run makes. Without `work_dir` nothing is saved.
    """

    FILE = "loop-state.pt"

    def __init__(self, work_dir: Path | None, modules: dict, optimizer, schedule, generator, best: BestWeights):
        self.path = Path(work_dir) / self.FILE if work_dir is not None else None
        self.modules, self.optimizer, self.schedule = modules, optimizer, schedule
        self.generator, self.best = generator, best

    def save(self, epoch: int, result: TrainResult) -> None:
        if self.path is None:
            return
        import io

        import torch

        from simlab.fsutil import write_bytes

        state = {
            "epoch": epoch,
            "modules": {name: m.state_dict() for name, m in self.modules.items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generator": self.generator.get_state(),
            "history": result.history,
            "best_epoch": result.best_epoch,
            "best_states": self.best.states,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_bytes(self.path, buffer.getvalue())

    def resume(self, resume: bool | str, result: TrainResult) -> int:
        """Load the saved state when `resume` asks for it; the epochs done.

        Raises:
            ConfigError: `resume` asks for a state there is none of.
        """
        if resume is False:
            return 0
        import torch

        from simlab.errors import ConfigError

        path = self.path if resume is True else Path(resume)
        if path is None or not path.is_file():
            raise ConfigError(
                f"train.resume: {resume}, but there is no saved state ({path or 'no checkpoint folder'}): the run to "
                "this --out finished, or never finished an epoch; set train.resume: false to start afresh"
            )
        state = torch.load(path, map_location="cpu", weights_only=False)  # simlab's own file, written above
        for name, module in self.modules.items():
            module.load_state_dict(state["modules"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.scheduler.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        self.generator.set_state(state["generator"])
        result.history, result.best_epoch = list(state["history"]), state["best_epoch"]
        self.best.states = state["best_states"]
        result.resumed_from = {"checkpoint": str(path), "epoch": state["epoch"]}
        return state["epoch"]
