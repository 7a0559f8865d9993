"""The training loop of `task: multilabel`: epochs of batches, val every epoch, best epoch kept.

A plain torch loop rather than the Hugging Face Trainer: the seed experiments step
ExponentialLR once per epoch and ReduceLROnPlateau on the val metric, while the Trainer's
scheduler steps per optimizer step; images are augmented per batch from an in-memory uint8
array, and text batches go through the sentence-transformers model's own `preprocess`.
Written out, the loop is short and every step is visible: shuffle (seeded), forward, loss,
backward, optimizer step, batch-level schedule; after the epoch, val scores, val loss and
metrics, epoch-level schedule, and a copy of the weights when the val metric is the best yet.
"""

from __future__ import annotations

import copy
import logging
import resource
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from simlab.evaluation.multilabel import multilabel_metrics, tune_thresholds
from simlab.models.multilabel import MultiLabelModel, to_pixels
from simlab.training.schedulers import build_scheduler

log = logging.getLogger("simlab")


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MiB; Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _batch(model: MultiLabelModel, inputs, idx: np.ndarray, augment=None, generator=None):
    if model.kind == "text":
        return [inputs[i] for i in idx]
    return to_pixels(inputs[idx], augment, generator)


@torch.no_grad()
def predict_logits(model: MultiLabelModel, inputs, batch_size: int = 256) -> torch.Tensor:
    """(n, L) logits of all `inputs` (texts, or uint8 images), in eval mode."""
    was_training = model.training
    model.eval()
    n = len(inputs)
    out = [model(_batch(model, inputs, np.arange(i, min(i + batch_size, n)))) for i in range(0, n, batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def _optimizer(model: MultiLabelModel, cfg) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)


def train_multilabel(
    model: MultiLabelModel,
    train_inputs,
    y_train: np.ndarray,
    val_inputs,
    y_val: np.ndarray,
    loss_fn: torch.nn.Module,
    train_cfg,
    scheduler_cfg,
    augment=None,
    progress: bool = True,
) -> TrainResult:
    """Train `model` in place and load the weights of its best val epoch (by `train_cfg.best_by`).

    History per epoch: train_loss, val_loss, val_ap, val_f1_micro, val_f1_macro (at the val-tuned
    global threshold, the epoch's thr*), val_threshold, lr, seconds.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(train_cfg.seed)
    gen = torch.Generator().manual_seed(train_cfg.seed)
    n = len(train_inputs)
    bs = train_cfg.batch_size
    steps = -(-n // bs)
    if train_cfg.max_steps:
        steps = min(steps, train_cfg.max_steps)
    optimizer = _optimizer(model, train_cfg)
    schedule = build_scheduler(scheduler_cfg, optimizer, steps, train_cfg.epochs)
    y_train_t = torch.from_numpy(y_train)
    y_val_t = torch.from_numpy(y_val)
    result = TrainResult()
    best_value, best_state = None, None
    t_start = time.perf_counter()
    for epoch in range(1, train_cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen).numpy()
        lr = optimizer.param_groups[0]["lr"]
        total, seen = 0.0, 0
        bar = tqdm(range(steps), desc=f"epoch {epoch}/{train_cfg.epochs}", leave=False, disable=not progress)
        for s in bar:
            idx = order[s * bs : (s + 1) * bs]
            logits = model(_batch(model, train_inputs, idx, augment, gen))  # (B, L)
            loss = loss_fn(logits, y_train_t[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.after_batch()
            total += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        val_logits = predict_logits(model, val_inputs)
        val_loss = float(loss_fn(val_logits, y_val_t))
        val_scores = torch.sigmoid(val_logits).numpy()
        y_bool = y_val >= 0.5
        thr = tune_thresholds(y_bool, val_scores, "global")
        m = multilabel_metrics(y_bool, val_scores, thr)
        row = {
            "epoch": epoch,
            "train_loss": total / max(seen, 1),
            "val_loss": val_loss,
            "val_ap": m["ap"],
            "val_f1_micro": m["f1_micro"],
            "val_f1_macro": m["f1_macro"],
            "val_threshold": float(thr[0]),
            "lr": lr,
        }
        value = -val_loss if train_cfg.best_by == "loss" else m[train_cfg.best_by]
        schedule.after_epoch(value)
        if best_value is None or value > best_value:
            best_value, result.best_epoch = value, epoch
            best_state = copy.deepcopy(model.state_dict())
        row["seconds"] = time.perf_counter() - t0
        result.epoch_seconds.append(row["seconds"])
        result.history.append(row)
        log.info(
            "[val] Epoch %d - loss %.4f, AP %.3f, F1 micro %.3f, F1 macro %.3f, thr* %.2f, lr %.2e, %.1f s",
            epoch,
            val_loss,
            m["ap"],
            m["f1_micro"],
            m["f1_macro"],
            thr[0],
            lr,
            row["seconds"],
        )
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - t_start
    return result
