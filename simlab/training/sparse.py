r"""SPLADE training on the sentence-transformers `SparseEncoderTrainer`.

The loss is sentence-transformers' `SpladeLoss`: `SparseMultipleNegativesRankingLoss` (each
query against its positive, its hard negative and every other document of the batch) plus
the FLOPS regularisers of queries and documents with separate weights,

$$
\mathcal{L} = \mathcal{L}_\text{rank} + \lambda_q \sum_{t} \Big(\frac{1}{B}\sum_{i} q_{i,t}\Big)^2
    + \lambda_d \sum_{t} \Big(\frac{1}{B'}\sum_{j} d_{j,t}\Big)^2 ,
$$

whose weights grow from 0 to $\lambda$ over the first `regularizer_warmup_ratio` of the steps
(`SpladeRegularizerWeightSchedulerCallback`). The trainer shuffles the triples every epoch
(seeded), accumulates gradients over `grad_accum` batches, and with `freeze_encoder` only the
MLM head (the vocabulary projection) trains.

Progress: every `log_every` steps one line with the running loss, its parts, and the mean
number of active (non-zero) dimensions of the query and document vectors of those steps,
the quantity the FLOPS term controls (`ActiveDimsFlopsLoss` records it as it regularises).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from simlab.data.mining import MinedPairs
from simlab.data.pairs import DevSet
from simlab.training import report_to
from simlab.training.dense import _EVALUATOR_KEYS, TrainResult, _family_and_k, ir_evaluator_kwargs
from simlab.training.schedulers import trainer_schedule

if TYPE_CHECKING:
    from sentence_transformers import SparseEncoder

    from simlab.config import TrainConfig


@dataclass
class SparseTrainResult(TrainResult):
    """`TrainResult` plus the progress records (one per logged step) and notes for the report."""

    steps: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def sparse_evaluator_key(metric: str) -> str:
    """'ndcg@10' -> 'dev_dot_ndcg@10', the key `SparseInformationRetrievalEvaluator` reports it under."""
    family, k = _family_and_k(metric)
    return "dev_dot_" + _EVALUATOR_KEYS[family].format(k=k or 100)


def make_flops_tracker(model: SparseEncoder):
    """A `FlopsLoss` that also accumulates the mean active dimensions of what it regularises."""
    from sentence_transformers.sparse_encoder.losses import FlopsLoss

    class ActiveDimsFlopsLoss(FlopsLoss):
        def __init__(self, model) -> None:
            super().__init__(model)
            self.reset()

        def reset(self) -> None:
            self.total, self.count = 0.0, 0

        def compute_loss_from_embeddings(self, embeddings):  # embeddings: (batch, vocab)
            self.total += float((embeddings.detach() > 0).sum(dim=1).float().mean())
            self.count += 1
            return super().compute_loss_from_embeddings(embeddings)

        def take(self) -> float | None:
            """Mean active dimensions since the last call (None if nothing was seen)."""
            value = self.total / self.count if self.count else None
            self.reset()
            return value

    return ActiveDimsFlopsLoss(model)


def freeze_encoder(model: SparseEncoder) -> tuple[int, int]:
    """Freeze the transformer body, leaving the MLM head trainable; return (trainable, total) parameters.

    The head's vocabulary projection is usually tied to the input word embeddings (BERT), so
    what trains is the head's transform and its per-token output bias.
    """
    hf = model.transformers_model
    if hf is None:
        raise ValueError("train.splade.freeze_encoder: the model has no transformers MLM to freeze")
    for p in hf.base_model.parameters():
        p.requires_grad = False
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def progress_line(step: int, max_steps: int, logs: dict, q_dims: float | None, d_dims: float | None) -> str:
    """`Step 50/400: avg loss 3.2100 (ranking 3.1000, flops q 0.0100 d 0.0200), active dims q 812.0 d 1503.0`."""
    parts = [f"Step {step}/{max_steps}: avg loss {logs.get('loss', float('nan')):.4f}"]
    inner = []
    if "base_loss" in logs:
        inner.append(f"ranking {logs['base_loss']:.4f}")
    flops = [
        f"{side} {logs[key]:.4f}"
        for side, key in (("q", "query_regularizer_loss"), ("d", "document_regularizer_loss"))
        if key in logs
    ]
    if flops:
        inner.append("flops " + " ".join(flops))
    if inner:
        parts[0] += f" ({', '.join(inner)})"
    dims = [f"{side} {v:.1f}" for side, v in (("q", q_dims), ("d", d_dims)) if v is not None]
    if dims:
        parts.append("active dims " + " ".join(dims))
    return ", ".join(parts)


def _make_evaluator(dev: DevSet, metric: str):
    from sentence_transformers.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator

    return SparseInformationRetrievalEvaluator(**ir_evaluator_kwargs(dev, metric), batch_size=32)


def train_sparse(
    model: SparseEncoder,
    data: MinedPairs,
    dev: DevSet | None,
    cfg: TrainConfig,
    work_dir: Path,
    routed: bool,
    echo=None,
) -> SparseTrainResult:
    """Train `model` in place on (query, positive[, negatives]) rows; return per-epoch history.

    Args:
        model: The SPLADE model (`simlab.models.sparse.load_sparse_model`).
        data: Rows: anchor (query), positive, and 0 or more negatives.
        dev: Queries/documents evaluated every epoch (best epoch kept), or None.
        cfg: The `train` section (`train.splade` holds the SPLADE options).
        work_dir: Trainer checkpoints.
        routed: The model has a query/document `Router` (inference-free SPLADE).
        echo: Called with each progress line; None writes it above the progress bar.
    """
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sparse_encoder import SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentence_transformers.sparse_encoder.callbacks.splade_callbacks import (
        SpladeRegularizerWeightSchedulerCallback,
    )
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss
    from transformers.trainer_callback import ProgressCallback

    sc = cfg.splade
    dataset = data.to_dataset()
    n_hard = len(data.negatives[0]) if data.negatives else 0
    has_dev = dev is not None and bool(dev.queries)
    result = SparseTrainResult(best_metric=cfg.best_metric, n_pairs=len(dataset))
    q_reg, d_reg = make_flops_tracker(model), make_flops_tracker(model)
    loss = SpladeLoss(
        model,
        loss=SparseMultipleNegativesRankingLoss(model),
        document_regularizer_weight=sc.document_regularizer_weight,
        query_regularizer_weight=sc.query_regularizer_weight,
        document_regularizer=d_reg,
        query_regularizer=q_reg,
    )
    scheduler = SpladeRegularizerWeightSchedulerCallback(
        loss, scheduler_type=sc.regularizer_schedule, warmup_ratio=sc.regularizer_warmup_ratio
    )
    if sc.freeze_encoder:
        trainable, total = freeze_encoder(model)
        result.notes.append(f"Frozen encoder: {trainable:,} of {total:,} parameters train (the MLM head).")
    steps_log = result.steps

    class Progress(ProgressCallback):
        """The trainer's progress bar with one readable line per `log_every` steps (instead of its raw
        log dicts) and one history record per epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.t0 = time.perf_counter()
            self.losses: list[float] = []
            self.q_dims: list[float] = []
            self.d_dims: list[float] = []

        def on_epoch_begin(self, args, state, control, **kw):
            self.t0, self.losses, self.q_dims, self.d_dims = time.perf_counter(), [], [], []

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "loss" not in logs:
                return
            q, d = q_reg.take(), d_reg.take()
            self.losses.append(float(logs["loss"]))
            self.q_dims += [q] if q is not None else []
            self.d_dims += [d] if d is not None else []
            record = {
                "step": state.global_step,
                "loss": float(logs["loss"]),
                "query_active_dims": q,
                "document_active_dims": d,
            }
            record |= {
                k: float(logs[k])
                for k in ("base_loss", "query_regularizer_loss", "document_regularizer_loss")
                if k in logs
            }
            steps_log.append(record)
            line = progress_line(state.global_step, state.max_steps, logs, q, d)
            if echo is not None:
                echo(line)
            else:
                (self.training_bar.write if self.training_bar is not None else print)(line)

        def on_epoch_end(self, args, state, control, **kw):
            mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
            result.history.append(
                {
                    "epoch": round(state.epoch or 0),
                    "train_loss": mean(self.losses),
                    "query_active_dims": mean(self.q_dims),
                    "document_active_dims": mean(self.d_dims),
                    "seconds": round(time.perf_counter() - self.t0, 3),
                }
            )

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            if result.history and metrics:
                prefix = "eval_dev_"
                result.history[-1].update(
                    {
                        "dev_" + k[len(prefix) :].removeprefix("dot_"): float(v)
                        for k, v in metrics.items()
                        if k.startswith(prefix) and isinstance(v, (int, float))
                    }
                )

    per_step = cfg.batch_size * sc.grad_accum
    steps_per_epoch = max(1, -(-len(dataset) // per_step))
    columns = dataset.column_names
    schedule, schedule_callbacks = trainer_schedule(cfg.scheduler)
    args = SparseEncoderTrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=sc.grad_accum,
        learning_rate=cfg.learning_rate,
        **schedule,
        seed=cfg.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # a duplicate text would be a false in-batch negative
        eval_strategy="epoch" if has_dev else "no",
        save_strategy="epoch" if has_dev else "no",
        load_best_model_at_end=has_dev,
        metric_for_best_model=f"eval_{sparse_evaluator_key(cfg.best_metric)}" if has_dev else None,
        greater_is_better=True,
        save_total_limit=1,
        logging_steps=min(sc.log_every, steps_per_epoch * cfg.epochs),
        report_to=report_to(cfg.report_to),
        use_cpu=True,
        dataloader_drop_last=False,
        router_mapping={columns[0]: "query"} | {c: "document" for c in columns[1:]} if routed else {},
    )
    trainer = SparseEncoderTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        evaluator=_make_evaluator(dev, cfg.best_metric) if has_dev else None,
        callbacks=[scheduler, *schedule_callbacks],
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(Progress())
    t0 = time.perf_counter()
    trainer.train()
    result.seconds = time.perf_counter() - t0
    result.negatives_per_query = float(min(cfg.batch_size, len(dataset)) * (1 + n_hard) - 1)
    if has_dev and result.history:
        key = "dev_" + sparse_evaluator_key(cfg.best_metric)[len("dev_dot_") :]
        scored = [h for h in result.history if key in h]
        if scored:
            result.best_epoch = max(scored, key=lambda h: h[key])["epoch"]
    return result
