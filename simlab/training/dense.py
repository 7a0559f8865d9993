"""Bi-encoder training on the sentence-transformers trainer.

MultipleNegativesRankingLoss (in-batch negatives plus any mined hard negatives), linear
warmup then the configured schedule, evaluation on the dev set every epoch with
sentence-transformers' `InformationRetrievalEvaluator`, and the best epoch's weights kept
(`load_best_model_at_end`). All of it is the trainer's own machinery; simlab only maps the
config onto it and records one `history.jsonl` line per epoch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from simlab.config.metrics import parse_metric
from simlab.data.pairs import DevSet
from simlab.training.mining import MinedPairs
from simlab.training.trainer import TrainResult, best_epoch, epoch_history, fit, resume_checkpoint, training_args

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from simlab.config import TrainConfig

# simlab metric family -> the key InformationRetrievalEvaluator reports it under
_EVALUATOR_KEYS = {
    "ndcg": "ndcg@{k}",
    "mrr": "mrr@{k}",
    "recall": "recall@{k}",
    "precision": "precision@{k}",
    "map": "map@{k}",
}


def _family_and_k(metric: str) -> tuple[str, int | None]:
    """'ndcg@10' -> ('ndcg', 10); 'map' -> ('map', None)."""
    family, _, k = parse_metric(metric)[0].partition("@")
    return family, int(k) if k else None


def history_key(metric: str) -> str:
    """'ndcg@10' -> 'dev_ndcg@10', 'map' -> 'dev_map@100': a metric's key in the history records."""
    family, k = _family_and_k(metric)
    return "dev_" + _EVALUATOR_KEYS[family].format(k=k or 100)


def evaluator_key(metric: str, similarity: str = "cosine") -> str:
    """The IR evaluator's key of a simlab metric, e.g. 'ndcg@10' -> 'dev_cosine_ndcg@10' ('dev_dot_...' sparse)."""
    return history_key(metric).replace("dev_", f"dev_{similarity}_", 1)


def dev_line(record: dict, metric: str) -> str:
    """`[dev] Epoch 2 - loss 0.3694, ndcg@10 0.9019, mrr@10 0.9321, 1.2 s` from a history record."""
    parts = [f"[dev] Epoch {record['epoch']}"]
    if record.get("train_loss") is not None:
        parts.append(f"loss {record['train_loss']:.4f}")
    shown = [f"dev_{metric}"] + [k for k in ("dev_ndcg@10", "dev_mrr@10", "dev_recall@100") if k != f"dev_{metric}"]
    values = [f"{k[4:]} {record[k]:.4f}" for k in shown if k in record]
    return f"{parts[0]} - " + ", ".join(parts[1:] + values + [f"{record['seconds']:.1f} s"])


def negatives_per_query(n_pairs: int, batch_size: int, n_hard: int) -> float:
    """Mean number of negatives one anchor is scored against per step with in-batch negatives.

    In a batch of b pairs with h hard negatives each, every anchor is contrasted with the
    other b - 1 positives and all b * h hard negatives. The last batch may be smaller.
    """
    full, rest = divmod(n_pairs, batch_size)
    sizes = [batch_size] * full + ([rest] if rest else [])
    per_anchor = [(b - 1 + b * n_hard) * b for b in sizes]
    return sum(per_anchor) / max(n_pairs, 1)


def ir_evaluator_kwargs(dev: DevSet, metric: str) -> dict:
    """The arguments of sentence-transformers' (dense or sparse) IR evaluator on the dev split: the cut-offs
    of the reported metrics plus `metric`'s own k, so that its value picks the best epoch."""
    _, k = _family_and_k(metric)
    ks = sorted({10, k or 10})
    return {
        "queries": dev.queries,
        "corpus": dev.corpus,
        "relevant_docs": dev.relevant,
        "name": "dev",
        "ndcg_at_k": ks,
        "mrr_at_k": ks,
        "accuracy_at_k": [1],
        "precision_recall_at_k": sorted({*ks, 100}),
        "map_at_k": sorted({100, k or 100}),
        "write_csv": False,
    }


def _make_evaluator(dev: DevSet, metric: str):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    return InformationRetrievalEvaluator(**ir_evaluator_kwargs(dev, metric), batch_size=256, score_functions=None)


def train_dense(
    model: SentenceTransformer, data: MinedPairs, dev: DevSet, cfg: TrainConfig, work_dir: Path, routed: bool
) -> TrainResult:
    """Train `model` in place; return per-epoch history and the chosen epoch."""
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from simlab import distributed
    from simlab.training.static_tables import sparse_trainer

    dataset = data.to_dataset()
    n_hard = len(data.negatives[0]) if data.negatives else 0
    has_dev = bool(dev.queries)
    world = distributed.world_size()
    # with several processes the loss gathers every process's batch, so each anchor sees the global
    # batch; the trainer then drops uneven last batches (dataloader_drop_last), so every step is full
    global_batch = cfg.batch_size * world
    result = TrainResult(
        negatives_per_query=negatives_per_query(len(dataset), cfg.batch_size, n_hard)
        if world == 1
        else global_batch - 1 + global_batch * n_hard,
        n_pairs=len(dataset),
        world_size=world,
    )
    args, callbacks = training_args(
        SentenceTransformerTrainingArguments,
        cfg,
        work_dir,
        f"eval_{evaluator_key(cfg.best_by)}" if has_dev else None,
        logging_steps=max(1, math.ceil(len(dataset) / global_batch) // 4),
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # duplicate texts would be false in-batch negatives
        router_mapping={"anchor": "query", "positive": "document"}
        | {c: "document" for c in dataset.column_names if c.startswith("negative")}
        if routed
        else {},
        **({"ddp_backend": "nccl" if torch.cuda.is_available() else "gloo"} if world > 1 else {}),
    )
    # sparse gradients for a static table (one process only: see simlab.training.static_tables)
    trainer_class = sparse_trainer(SentenceTransformerTrainer, sparse=cfg.sparse_grads and world == 1)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model, gather_across_devices=True)
        if world > 1
        else MultipleNegativesRankingLoss(model),
        evaluator=_make_evaluator(dev, cfg.best_by) if has_dev else None,
        callbacks=callbacks,
    )
    prefix = "eval_dev_cosine_"
    history = epoch_history(
        result,
        lambda metrics: {f"dev_{k[len(prefix) :]}": float(v) for k, v in metrics.items() if k.startswith(prefix)},
        line=lambda record: dev_line(record, cfg.best_by),
    )
    result.seconds = fit(trainer, history, resume_checkpoint(cfg.resume, work_dir), result)
    result.best_epoch = best_epoch(result.history, history_key(cfg.best_by))
    return result
