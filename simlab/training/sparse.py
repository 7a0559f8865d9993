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

from pathlib import Path
from typing import TYPE_CHECKING

from simlab.data.pairs import DevSet
from simlab.training.dense import evaluator_key, history_key, ir_evaluator_kwargs
from simlab.training.mining import MinedPairs
from simlab.training.trainer import TrainResult, best_epoch, epoch_history, fit, mean, resume_checkpoint, training_args

if TYPE_CHECKING:
    from sentence_transformers import SparseEncoder

    from simlab.config import SpladeTrainConfig, TrainConfig


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
) -> TrainResult:
    """Train `model` in place on (query, positive[, negatives]) rows; return per-epoch history.

    Args:
        model: The SPLADE model (`simlab.models.sparse.load_sparse_model`).
        data: Rows: anchor (query), positive, and 0 or more negatives.
        dev: Queries/documents evaluated every epoch (best epoch kept), or None.
        cfg: The `train` section (`train.splade` holds the SPLADE options).
        work_dir: Trainer checkpoints.
        routed: The model has a query/document `Router` (inference-free SPLADE).
        echo: Called with each progress line; None writes it above the progress bar.

    Returns:
        The history (per epoch also the mean active dimensions of the query and document vectors),
        one `steps` record per progress line, and `notes`.
    """
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sparse_encoder import SparseEncoderTrainer, SparseEncoderTrainingArguments

    sc = cfg.splade
    dataset = data.to_dataset()
    n_hard = len(data.negatives[0]) if data.negatives else 0
    has_dev = dev is not None and bool(dev.queries)
    result = TrainResult(n_pairs=len(dataset))
    loss, q_reg, d_reg, scheduler = splade_loss(model, sc)
    if sc.freeze_encoder:
        trainable, total = freeze_encoder(model)
        result.notes.append(f"Frozen encoder: {trainable:,} of {total:,} parameters train (the MLM head).")
    columns = dataset.column_names
    steps_per_epoch = max(1, -(-len(dataset) // (cfg.batch_size * sc.grad_accum)))
    args, callbacks = training_args(
        SparseEncoderTrainingArguments,
        cfg,
        work_dir,
        f"eval_{evaluator_key(cfg.best_by, 'dot')}" if has_dev else None,
        logging_steps=min(sc.log_every, steps_per_epoch * cfg.epochs),
        gradient_accumulation_steps=sc.grad_accum,
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # a duplicate text would be a false in-batch negative
        router_mapping={columns[0]: "query"} | {c: "document" for c in columns[1:]} if routed else {},
    )
    trainer = SparseEncoderTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        evaluator=_make_evaluator(dev, cfg.best_by) if has_dev else None,
        callbacks=[scheduler, *callbacks],
    )
    history = epoch_history(
        result,
        _dev_metrics,
        on_step=lambda state, logs: _step(result, state, logs, q_reg.take(), d_reg.take()),
        fields=_active_dims,
        echo=echo,
    )
    result.seconds = fit(trainer, history, resume_checkpoint(cfg.resume, work_dir), result)
    result.negatives_per_query = float(min(cfg.batch_size, len(dataset)) * (1 + n_hard) - 1)
    result.best_epoch = best_epoch(result.history, history_key(cfg.best_by))
    return result


def splade_loss(model: SparseEncoder, sc: SpladeTrainConfig):
    """`SpladeLoss` (in-batch ranking + the FLOPS regularisers of queries and documents, as trackers of their
    active dimensions: `make_flops_tracker`) and the callback growing the FLOPS weights over the first steps.

    Returns:
        (loss, query tracker, document tracker, callback)
    """
    from sentence_transformers.sparse_encoder.callbacks.splade_callbacks import (
        SpladeRegularizerWeightSchedulerCallback,
    )
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

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
    return loss, q_reg, d_reg, scheduler


def _dev_metrics(metrics: dict) -> dict[str, float]:
    """The history's dev metrics from the trainer's: 'eval_dev_dot_ndcg@10' -> 'dev_ndcg@10', and the evaluator's
    sparsity figures ('eval_dev_query_active_dims' -> 'dev_query_active_dims')."""
    return {
        "dev_" + k[len("eval_dev_") :].removeprefix("dot_"): float(v)
        for k, v in metrics.items()
        if k.startswith("eval_dev_") and isinstance(v, (int, float))
    }


def _step(result: TrainResult, state, logs: dict, q_dims: float | None, d_dims: float | None) -> str:
    """Record a logged step (into `result.steps`, and its active dimensions into `logs`); its progress line."""
    dims = {"query_active_dims": q_dims, "document_active_dims": d_dims}
    logs |= dims
    parts = ("base_loss", "query_regularizer_loss", "document_regularizer_loss")
    result.steps.append(
        {"step": state.global_step, "loss": float(logs["loss"]), **dims}
        | {k: float(logs[k]) for k in parts if k in logs}
    )
    return progress_line(state.global_step, state.max_steps, logs, q_dims, d_dims)


def _active_dims(logs: list[dict]) -> dict[str, float | None]:
    """The mean active dimensions of the query and document vectors over an epoch's logged steps."""
    return {
        key: mean([log[key] for log in logs if log[key] is not None])
        for key in ("query_active_dims", "document_active_dims")
    }
