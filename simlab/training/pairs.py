"""Siamese pair matcher training on the sentence-transformers trainer (workload A).

A `SentenceTransformer` encodes both records of a pair; sentence-transformers'
`ContrastiveLoss` pulls matches together and pushes non-matches past `margin`. The optimizer
(AdamW, or SGD with momentum), weight decay, gradient accumulation, ReduceLROnPlateau on the
val metric, the best checkpoint by `best_by`, and resuming are the HF trainer's own options.
Validation every epoch is `PairEvaluator`: it tunes the F1-optimal threshold on val and
prints the seed's line, `[val] Epoch 5 - loss 0.5040, P Acc 0.842, ... thr* 0.369`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simlab.console import wants_bar
from simlab.evaluation.pairs import best_threshold, epoch_line, pair_metrics
from simlab.training.pair_losses import LOSSES
from simlab.training.trainer import TrainResult, best_epoch, epoch_history, fit, resume_checkpoint, training_args

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from simlab.config import PairTrainConfig

REPORTED = ("f1", "pos_acc", "neg_acc", "avg_acc", "precision", "recall", "ap", "accuracy")


@dataclass(frozen=True)
class PairSet:
    """Pairs of record texts with 0/1 labels; `ids` name each pair (for per-item scores);
    `left_values` / `right_values`: per pair, the records' text field values (for the
    per-field features of `simlab.models.field_matcher`), when known."""

    left: list[str]
    right: list[str]
    labels: list[int]
    ids: list[str]
    left_values: list[tuple[str, ...]] = field(default_factory=list)
    right_values: list[tuple[str, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def pair_scores(model: SentenceTransformer, pairs: PairSet, distance: str = "cosine") -> np.ndarray:
    """Similarity of each pair (higher = more alike): cosine, or minus the euclidean distance."""
    texts = list(dict.fromkeys(pairs.left + pairs.right))  # encode each distinct text once
    emb = model.encode(texts, batch_size=256, convert_to_numpy=True, show_progress_bar=wants_bar(len(texts), 5000))
    pos = {t: i for i, t in enumerate(texts)}
    a = emb[[pos[t] for t in pairs.left]]  # (n, d)
    b = emb[[pos[t] for t in pairs.right]]  # (n, d)
    if distance == "euclidean":
        return -np.linalg.norm(a - b, axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def score_split(
    model, pairs: PairSet, distance: str, threshold: float | None = None, by: str = "f1"
) -> tuple[dict, np.ndarray]:
    """Metrics of `pairs` at `threshold`, or at the `by`-optimal (F1 or accuracy) threshold of these pairs when None."""
    scores = pair_scores(model, pairs, distance)
    if threshold is None:
        threshold, _ = best_threshold(scores, pairs.labels, by)
    return pair_metrics(scores, pairs.labels, threshold), scores


def _evaluator(val: PairSet, cfg: PairTrainConfig):
    from sentence_transformers.base.evaluation import SentenceEvaluator

    class PairEvaluator(SentenceEvaluator):
        """Val metrics at val's own `threshold_by`-optimal threshold (reported as `threshold`)."""

        def __init__(self) -> None:
            super().__init__()
            self.name = "val"
            self.primary_metric = cfg.best_by

        def __call__(self, model, output_path=None, epoch: float = -1, steps: int = -1) -> dict[str, float]:
            metrics, _ = score_split(model, val, cfg.distance, by=cfg.threshold_by)
            return self.prefix_name_to_metrics({k: float(metrics[k]) for k in (*REPORTED, "threshold")}, self.name)

    return PairEvaluator()


def _keep_every(n: int, keep_dir: Path, result: TrainResult):
    """A trainer callback saving the model into `keep_dir/epoch-N` after every `n`-th epoch's evaluation."""
    from transformers import TrainerCallback

    class KeepEvery(TrainerCallback):
        def on_evaluate(self, args, state, control, model=None, **kw):
            epoch = result.history[-1]["epoch"]
            if epoch % n == 0 and model is not None:
                model.save(str(keep_dir / f"epoch-{epoch}"))

    return KeepEvery()


def _val_line(record: dict) -> str:
    """The seed's `[val] Epoch 5 - loss 0.5040, P Acc 0.842, ... thr* 0.369, 3.1 s` of a history record."""
    metrics = {k[4:]: v for k, v in record.items() if k.startswith("val_")}
    line = epoch_line("val", record["epoch"], record["val_loss"], metrics, record["val_threshold"])
    return f"{line}, {record['seconds']:.1f} s"


def train_pairs(
    model: SentenceTransformer,
    train: PairSet,
    val: PairSet,
    cfg: PairTrainConfig,
    work_dir: Path,
    keep_dir: Path | None = None,
    epoch_offset: int = 0,
) -> TrainResult:
    """Train `model` in place and keep the best epoch's weights; see the module docstring.

    History per epoch: epoch (plus `epoch_offset`), train_loss, learning_rate (the last logged),
    seconds, the val metrics of `REPORTED` at val's own threshold (`val_threshold`), val_loss.
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from simlab.training.static_tables import sparse_trainer

    result = TrainResult()
    dataset = Dataset.from_dict({"sentence1": train.left, "sentence2": train.right, "label": train.labels})
    val_dataset = Dataset.from_dict({"sentence1": val.left, "sentence2": val.right, "label": val.labels})
    steps_per_epoch = max(1, len(dataset) // (cfg.batch_size * cfg.grad_accum))
    args, callbacks = training_args(
        SentenceTransformerTrainingArguments,
        cfg,
        work_dir,
        f"eval_val_{cfg.best_by}",  # the plateau schedule steps on it too
        logging_steps=max(1, steps_per_epoch // 4),
        save_total_limit=2,
        per_device_eval_batch_size=256,
        gradient_accumulation_steps=cfg.grad_accum,
        weight_decay=cfg.weight_decay,
        optim="sgd" if cfg.optimizer == "sgd" else "adamw_torch",
        optim_args=f"momentum={cfg.momentum}" if cfg.optimizer == "sgd" else None,
    )
    if keep_dir is not None and cfg.save_every:
        callbacks.append(_keep_every(cfg.save_every, keep_dir, result))
    trainer_class = sparse_trainer(SentenceTransformerTrainer, cfg.optimizer, cfg.momentum, cfg.sparse_grads)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=dataset,
        eval_dataset=val_dataset,
        loss=LOSSES[cfg.loss](model, cfg),
        evaluator=_evaluator(val, cfg),
        callbacks=callbacks,
    )
    history = epoch_history(
        result,
        lambda metrics: (
            {f"val_{k[9:]}": float(v) for k, v in metrics.items() if k.startswith("eval_val_")}
            | {"val_loss": float(metrics["eval_loss"]) if "eval_loss" in metrics else None}
        ),
        line=_val_line,
        fields=lambda logs: {"learning_rate": float(logs[-1]["learning_rate"]) if logs else None},
        epoch_offset=epoch_offset,
    )
    result.seconds = fit(trainer, history, resume_checkpoint(cfg.resume, work_dir), result)
    result.best_epoch = best_epoch(result.history, f"val_{cfg.best_by}")
    return result
