"""Siamese pair matcher training on the sentence-transformers trainer (workload A).

A `SentenceTransformer` encodes both records of a pair; sentence-transformers'
`ContrastiveLoss` pulls matches together and pushes non-matches past `margin`. The optimizer
(AdamW, or SGD with momentum), weight decay, gradient accumulation, ReduceLROnPlateau on the
val metric, the best checkpoint by `best_by`, and resuming are the HF trainer's own options.
Validation every epoch is `PairEvaluator`: it tunes the F1-optimal threshold on val and
prints the seed's line, `[val] Epoch 5 - loss 0.5040, P Acc 0.842, ... thr* 0.369`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simlab.evaluation.pairs import best_threshold, epoch_line, pair_metrics
from simlab.training import report_to
from simlab.training.schedulers import trainer_schedule

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from simlab.config import PairTrainConfig

REPORTED = ("f1", "pos_acc", "neg_acc", "avg_acc", "precision", "recall", "ap", "accuracy")


def _distance(cfg: PairTrainConfig):
    from sentence_transformers.sentence_transformer.losses import SiameseDistanceMetric

    return {"cosine": SiameseDistanceMetric.COSINE_DISTANCE, "euclidean": SiameseDistanceMetric.EUCLIDEAN}[cfg.distance]


def _contrastive(model, cfg: PairTrainConfig):
    """Hadsell et al. 2006: pull matches together, push non-matches past `margin`."""
    from sentence_transformers.sentence_transformer.losses import ContrastiveLoss

    return ContrastiveLoss(model, distance_metric=_distance(cfg), margin=cfg.margin)


def _online_contrastive(model, cfg: PairTrainConfig):
    """The contrastive loss on each batch's hard pairs only (far positives, close negatives)."""
    from sentence_transformers.sentence_transformer.losses import OnlineContrastiveLoss

    return OnlineContrastiveLoss(model, distance_metric=_distance(cfg), margin=cfg.margin)


def _cosent(model, cfg: PairTrainConfig):
    """Su 2022: a ranking loss on cosine scores; every match should outscore every non-match."""
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss

    return CoSENTLoss(model)


LOSSES = {"contrastive": _contrastive, "online_contrastive": _online_contrastive, "cosent": _cosent}
"""`train.loss` name -> builder(model, cfg) of a sentence-transformers pair loss."""


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
    emb = model.encode(texts, batch_size=256, convert_to_numpy=True, show_progress_bar=len(texts) > 5000)
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


@dataclass
class PairTrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    threshold: float = 0.0
    seconds: float = 0.0


def _evaluator(val: PairSet, cfg: PairTrainConfig, result: PairTrainResult):
    from sentence_transformers.base.evaluation import SentenceEvaluator

    class PairEvaluator(SentenceEvaluator):
        """Val metrics at val's own F1-optimal threshold, recorded into the run's history."""

        def __init__(self) -> None:
            super().__init__()
            self.name = "val"
            self.primary_metric = cfg.best_by

        def __call__(self, model, output_path=None, epoch: float = -1, steps: int = -1) -> dict[str, float]:
            metrics, _ = score_split(model, val, cfg.distance, by=cfg.threshold_by)
            result.history.append({f"val_{k}": float(metrics[k]) for k in (*REPORTED, "threshold")})
            out = {k: float(metrics[k]) for k in (*REPORTED, "threshold")}
            return self.prefix_name_to_metrics(out, self.name)

    return PairEvaluator()


def _resume_from(resume: bool | str, work_dir: Path) -> str | None:
    """`train.resume` as the trainer wants it: a checkpoint folder, or None to start afresh."""
    if resume is False:
        return None
    if resume is True:
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(str(work_dir)) if work_dir.is_dir() else None
        if last is None:
            from simlab.errors import ConfigError

            raise ConfigError(
                f"train.resume: true, but {work_dir} holds no checkpoint (the run to this --out finished, or "
                "never trained); set train.resume: false to start afresh"
            )
        return last
    return str(resume)


def train_pairs(
    model: SentenceTransformer,
    train: PairSet,
    val: PairSet,
    cfg: PairTrainConfig,
    work_dir: Path,
    keep_dir: Path | None = None,
    epoch_offset: int = 0,
) -> PairTrainResult:
    """Train `model` in place and keep the best epoch's weights; see the module docstring."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers.trainer_callback import ProgressCallback

    result = PairTrainResult()
    dataset = Dataset.from_dict({"sentence1": train.left, "sentence2": train.right, "label": train.labels})
    val_dataset = Dataset.from_dict({"sentence1": val.left, "sentence2": val.right, "label": val.labels})

    class Epochs(ProgressCallback):
        """The progress bar, one `[val] Epoch ...` line per epoch, timing, and `save_every` copies."""

        def on_epoch_begin(self, args, state, control, **kw):
            self.t0, self.losses = time.perf_counter(), []

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))
            if logs and "learning_rate" in logs:
                self.lr = float(logs["learning_rate"])

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            super().on_evaluate(args, state, control, **kw)
            rec = result.history[-1]
            rec["epoch"] = round(state.epoch or 0) + epoch_offset
            rec["train_loss"] = sum(self.losses) / len(self.losses) if self.losses else None
            rec["learning_rate"] = getattr(self, "lr", None)  # the last logged in the epoch
            rec["val_loss"] = float(metrics["eval_loss"]) if metrics and "eval_loss" in metrics else None
            rec["seconds"] = round(time.perf_counter() - self.t0, 3)
            line = epoch_line(
                "val",
                rec["epoch"],
                rec["val_loss"],
                {k[4:]: v for k, v in rec.items() if k.startswith("val_")},
                rec["val_threshold"],
            )
            (self.training_bar.write if self.training_bar is not None else print)(f"{line}, {rec['seconds']:.1f} s")
            model = kw.get("model")
            if keep_dir is not None and cfg.save_every and rec["epoch"] % cfg.save_every == 0 and model is not None:
                model.save(str(keep_dir / f"epoch-{rec['epoch']}"))

    steps_per_epoch = max(1, len(dataset) // (cfg.batch_size * cfg.grad_accum))
    schedule, schedule_callbacks = trainer_schedule(cfg.scheduler)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=256,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        optim="sgd" if cfg.optimizer == "sgd" else "adamw_torch",
        optim_args=f"momentum={cfg.momentum}" if cfg.optimizer == "sgd" else None,
        **schedule,  # plateau by default, on the val metric (maximised)
        seed=cfg.seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model=f"eval_val_{cfg.best_by}",
        greater_is_better=True,
        save_total_limit=2,
        logging_steps=max(1, steps_per_epoch // 4),
        report_to=report_to(cfg.report_to),  # e.g. ["tensorboard"]; needs that integration installed
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        eval_dataset=val_dataset,
        loss=LOSSES[cfg.loss](model, cfg),
        evaluator=_evaluator(val, cfg, result),
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(Epochs())
    for callback in schedule_callbacks:
        trainer.add_callback(callback)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=_resume_from(cfg.resume, work_dir))
    result.seconds = time.perf_counter() - t0
    scored = [h for h in result.history if "epoch" in h]
    if scored:
        best = max(scored, key=lambda h: h[f"val_{cfg.best_by}"])
        result.best_epoch, result.threshold = best["epoch"], best["val_threshold"]
    return result
