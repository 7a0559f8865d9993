"""Training a `PairHead` with BCE over (example, definition) embeddings (workload B).

A plain PyTorch loop rather than the sentence-transformers trainer: the head is not a
sentence-transformers module, and with a frozen encoder (`head.freeze_encoder: true`, the
default) every distinct text is embedded once up front and each epoch only runs the small
head over cached tensors, which is orders of magnitude faster than re-encoding. With a
trainable encoder the loop runs the encoder too (end to end) with its own learning rate.

Every epoch: the mean train BCE, the val BCE, and val metrics at val's own best threshold
(`train.threshold_by`), printed as the seed's line and recorded in the history; ReduceLROnPlateau
on the val metric `train.best_by`; the best epoch's weights (head, and encoder when trained)
are restored at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from simlab.console import wants_bar
from simlab.evaluation.pairs import best_threshold, epoch_line, pair_metrics
from simlab.models.frozen import FrozenFeatures
from simlab.training.pairs import REPORTED, PairSet
from simlab.training.schedulers import build_scheduler
from simlab.training.static_tables import build_optimizer
from simlab.training.trainer import BestWeights, LoopCheckpoint, TrainResult

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from simlab.config import HeadConfig, PairTrainConfig
    from simlab.models.head import PairHead


def frozen_features(model: SentenceTransformer, sets: list[PairSet], cache: bool = True) -> FrozenFeatures:
    """The frozen encoder's features with every distinct text of `sets` encoded once (`simlab.models.frozen`)."""
    texts = list(dict.fromkeys(t for s in sets for t in (*s.left, *s.right)))
    features = FrozenFeatures(model, cache=cache, show_progress=wants_bar(len(texts), 5000))
    features.add(texts)
    return features


def _embed(model: SentenceTransformer, texts: list[str]) -> torch.Tensor:
    """Embeddings with gradients through the encoder (trainable encoder)."""
    features = model.preprocess(texts)
    return model(features)["sentence_embedding"]  # (batch, dim)


def head_logits(
    model: SentenceTransformer, head: PairHead, pairs: PairSet, cache: FrozenFeatures | None = None
) -> np.ndarray:
    """The head's logits for every pair (no gradients); sigmoid(logit) is the match probability."""
    head.eval()
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(pairs), 512):
            left, right = pairs.left[start : start + 512], pairs.right[start : start + 512]
            if cache is not None:
                a, b = cache(left), cache(right)
            else:
                a = model.encode(left, convert_to_tensor=True, batch_size=256)
                b = model.encode(right, convert_to_tensor=True, batch_size=256)
            out.append(head(a.float(), b.float()))
    return torch.cat(out).numpy().astype(np.float64)


def head_scores(model, head, pairs: PairSet, cache: FrozenFeatures | None = None) -> np.ndarray:
    """Match probabilities sigmoid(logit) per pair."""
    return 1.0 / (1.0 + np.exp(-head_logits(model, head, pairs, cache)))


def _bce(logits: np.ndarray, labels: list[int]) -> float:
    return float(
        torch.nn.functional.binary_cross_entropy_with_logits(
            torch.from_numpy(logits), torch.tensor(labels, dtype=torch.float64)
        )
    )


def train_head(
    model: SentenceTransformer,
    head: PairHead,
    train: PairSet,
    val: PairSet,
    cfg: PairTrainConfig,
    head_cfg: HeadConfig,
    work_dir: Path | None = None,
    cache: bool = True,
) -> TrainResult:
    """Train `head` (and the encoder unless `head_cfg.freeze_encoder`) in place with the `train` section `cfg`;
    keep the best epoch; see the module docstring. With `work_dir`, the loop's state is saved there after every
    epoch and `cfg.resume` continues from it (`LoopCheckpoint`). `cache=False`: a frozen encoder encodes every
    batch again (the same training, slower; to measure the cache against)."""
    threads = torch.get_num_threads()
    if head_cfg.freeze_encoder:
        # small matrices: one thread is faster, and much faster on a busy machine (30x measured at load 7 on 2 cores)
        torch.set_num_threads(1)
    try:
        return _train_head(model, head, train, val, cfg, head_cfg, work_dir, cache)
    finally:
        torch.set_num_threads(threads)


def _optimizer(model, head: PairHead, cfg: PairTrainConfig, head_cfg: HeadConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; a trainable static encoder's table takes sparse gradients (`simlab.training.static_tables`)."""
    groups = [{"params": list(head.parameters()), "lr": cfg.learning_rate}]
    if not head_cfg.freeze_encoder:
        groups.append({"params": list(model.parameters()), "lr": head_cfg.encoder_learning_rate})
    return build_optimizer(
        model, groups, cfg.optimizer, weight_decay=cfg.weight_decay, momentum=cfg.momentum, sparse=cfg.sparse_grads
    )


def _validate(model, head: PairHead, val: PairSet, cache: FrozenFeatures | None, by: str) -> dict:
    """An epoch's val record: val_loss, the val metrics of `REPORTED` at val's own `by`-optimal threshold."""
    logits = head_logits(model, head, val, cache)
    scores = 1.0 / (1.0 + np.exp(-logits))
    thr, _ = best_threshold(scores, val.labels, by)
    m = pair_metrics(scores, val.labels, thr)
    return {
        "val_loss": _bce(logits, val.labels),
        **{f"val_{k}": float(m[k]) for k in REPORTED},
        "val_threshold": float(thr),
    }


def _train_head(
    model, head, train: PairSet, val: PairSet, cfg, head_cfg, work_dir: Path | None, cache_on: bool
) -> TrainResult:
    from tqdm.auto import tqdm

    freeze = head_cfg.freeze_encoder
    result = TrainResult()
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    cache = frozen_features(model, [train, val], cache_on) if freeze else None
    result.encode_seconds = time.perf_counter() - t0
    opt = _optimizer(model, head, cfg, head_cfg)
    steps_per_epoch = -(-len(train) // (cfg.batch_size * cfg.grad_accum))
    sched = build_scheduler(cfg.scheduler, opt, steps_per_epoch, cfg.epochs)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    labels = torch.tensor(train.labels, dtype=torch.float32)
    gen = torch.Generator().manual_seed(cfg.seed)
    trained = (head,) if freeze else (head, model)
    best = BestWeights(f"val_{cfg.best_by}")
    modules = {"head": head} if freeze else {"head": head, "encoder": model}
    checkpoint = LoopCheckpoint(work_dir, modules, opt, sched, gen, best)
    for epoch in range(checkpoint.resume(cfg.resume, result) + 1, cfg.epochs + 1):
        e0 = time.perf_counter()
        head.train()
        model.train(not freeze)
        order = torch.randperm(len(train), generator=gen).tolist()
        losses, steps = [], range(0, len(order), cfg.batch_size)
        opt.zero_grad()
        bar = tqdm(steps, desc=f"epoch {epoch}", leave=False, disable=True if freeze else None)  # None: off when piped
        for n, start in enumerate(bar, start=1):
            idx = order[start : start + cfg.batch_size]
            left, right = [train.left[i] for i in idx], [train.right[i] for i in idx]
            if cache is not None:
                a, b = cache(left), cache(right)
            else:
                a, b = _embed(model, left), _embed(model, right)
            loss = loss_fn(head(a, b), labels[idx])
            (loss / cfg.grad_accum).backward()
            if n % cfg.grad_accum == 0 or start + cfg.batch_size >= len(order):
                opt.step()
                opt.zero_grad()
                sched.after_batch()
            losses.append(float(loss.detach()))
        rec = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            **_validate(model, head, val, cache, cfg.threshold_by),
        }
        rec["seconds"] = round(time.perf_counter() - e0, 3)
        result.history.append(rec)
        m = {k[4:]: v for k, v in rec.items() if k.startswith("val_")}
        line = epoch_line("val", epoch, rec["val_loss"], m, rec["val_threshold"])
        print(f"{line}, Acc {m['accuracy']:.3f}, {rec['seconds']:.1f} s")
        sched.after_epoch(rec[f"val_{cfg.best_by}"])
        best.update(result, *trained)
        checkpoint.save(epoch, result)
    best.restore(*trained)
    head.eval()
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result
