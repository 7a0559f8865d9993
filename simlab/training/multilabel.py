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

import logging
import resource
import time
from pathlib import Path

import numpy as np
import torch

from simlab.evaluation.multilabel import multilabel_metrics, tune_thresholds
from simlab.models.multilabel import MultiLabelModel, to_pixels
from simlab.training.schedulers import build_scheduler
from simlab.training.static_tables import build_optimizer
from simlab.training.trainer import BestWeights, LoopCheckpoint, TrainResult

log = logging.getLogger("simlab")


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
    """AdamW or SGD; a trainable static embedding's table takes sparse gradients (`simlab.training.static_tables`)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return build_optimizer(
        model,
        [{"params": params, "lr": cfg.learning_rate}],
        cfg.optimizer,
        weight_decay=cfg.weight_decay,
        momentum=cfg.momentum,
        sparse=cfg.sparse_grads,
    )


def _validate(model: MultiLabelModel, inputs, y: np.ndarray, loss_fn: torch.nn.Module) -> dict:
    """An epoch's val record: val_loss, val_ap, val_f1_micro, val_f1_macro at the val-tuned global threshold, which
    is val_threshold."""
    logits = predict_logits(model, inputs)
    val_loss = float(loss_fn(logits, torch.from_numpy(y)))
    scores = torch.sigmoid(logits).numpy()
    y_bool = y >= 0.5
    thr = tune_thresholds(y_bool, scores, "global")
    m = multilabel_metrics(y_bool, scores, thr)
    return {
        "val_loss": val_loss,
        "val_ap": m["ap"],
        "val_f1_micro": m["f1_micro"],
        "val_f1_macro": m["f1_macro"],
        "val_threshold": float(thr[0]),
    }


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
    work_dir: Path | None = None,
) -> TrainResult:
    """Train `model` in place and load the weights of its best val epoch (by `train_cfg.best_by`).

    History per epoch: train_loss, val_loss, val_ap, val_f1_micro, val_f1_macro (at the val-tuned
    global threshold, the epoch's thr*), val_threshold, lr, seconds. With `work_dir`, the loop's state is saved
    there after every epoch and `train_cfg.resume` continues from it (`LoopCheckpoint`).
    """
    from tqdm.auto import tqdm

    torch.manual_seed(train_cfg.seed)
    gen = torch.Generator().manual_seed(train_cfg.seed)
    n = len(train_inputs)
    bs = train_cfg.batch_size
    steps = -(-n // bs)
    if train_cfg.max_steps:
        steps = min(steps, train_cfg.max_steps)
    if model.freeze and model.kind == "text":  # encoded once, before the first epoch (`MultiLabelModel.features`)
        model.encode_once([*train_inputs, *val_inputs])
    optimizer = _optimizer(model, train_cfg)
    schedule = build_scheduler(scheduler_cfg, optimizer, steps, train_cfg.epochs)
    y_train_t = torch.from_numpy(y_train)
    result = TrainResult()
    best = BestWeights(f"val_{train_cfg.best_by}", higher=train_cfg.best_by != "loss")
    checkpoint = LoopCheckpoint(work_dir, {"model": model}, optimizer, schedule, gen, best)
    done = checkpoint.resume(train_cfg.resume, result)
    t_start = time.perf_counter()
    for epoch in range(done + 1, train_cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen).numpy()
        lr = optimizer.param_groups[0]["lr"]
        total, seen = 0.0, 0
        bar = tqdm(
            range(steps), desc=f"epoch {epoch}/{train_cfg.epochs}", leave=False, disable=None if progress else True
        )
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
        row = {"epoch": epoch, "train_loss": total / max(seen, 1), **_validate(model, val_inputs, y_val, loss_fn)}
        row["lr"] = lr
        schedule.after_epoch(-row["val_loss"] if train_cfg.best_by == "loss" else row[f"val_{train_cfg.best_by}"])
        result.history.append(row)
        best.update(result, model)
        row["seconds"] = time.perf_counter() - t0
        log.info(
            "[val] Epoch %d - loss %.4f, AP %.3f, F1 micro %.3f, F1 macro %.3f, thr* %.2f, lr %.2e, %.1f s",
            *(row[k] for k in ("epoch", "val_loss", "val_ap", "val_f1_micro", "val_f1_macro", "val_threshold")),
            lr,
            row["seconds"],
        )
        checkpoint.save(epoch, result)
    best.restore(model)
    model.eval()
    result.seconds = time.perf_counter() - t_start
    return result
