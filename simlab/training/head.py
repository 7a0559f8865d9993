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

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from simlab.evaluation.pairs import best_threshold, epoch_line, pair_metrics
from simlab.training.pairs import REPORTED, PairSet
from simlab.training.schedulers import build_scheduler

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from simlab.config import PairsConfig
    from simlab.models.head import PairHead


@dataclass
class HeadTrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    threshold: float = 0.0
    seconds: float = 0.0
    encode_seconds: float = 0.0


class EmbeddingCache:
    """Every distinct text of some pair sets embedded once by a frozen encoder."""

    def __init__(self, model: SentenceTransformer, sets: list[PairSet], batch_size: int = 256):
        texts = list(dict.fromkeys(t for s in sets for t in (*s.left, *s.right)))
        self.pos = {t: i for i, t in enumerate(texts)}
        with torch.no_grad():
            self.emb = model.encode(
                texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=len(texts) > 5000
            ).float()  # (n_texts, dim)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return self.emb[[self.pos[t] for t in texts]]  # (len(texts), dim)


def _embed(model: SentenceTransformer, texts: list[str]) -> torch.Tensor:
    """Embeddings with gradients through the encoder (trainable encoder)."""
    features = model.preprocess(texts)
    return model(features)["sentence_embedding"]  # (batch, dim)


def head_logits(
    model: SentenceTransformer, head: PairHead, pairs: PairSet, cache: EmbeddingCache | None = None
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


def head_scores(model, head, pairs: PairSet, cache: EmbeddingCache | None = None) -> np.ndarray:
    """Match probabilities sigmoid(logit) per pair."""
    return 1.0 / (1.0 + np.exp(-head_logits(model, head, pairs, cache)))


def _bce(logits: np.ndarray, labels: list[int]) -> float:
    return float(
        torch.nn.functional.binary_cross_entropy_with_logits(
            torch.from_numpy(logits), torch.tensor(labels, dtype=torch.float64)
        )
    )


def train_head(
    model: SentenceTransformer, head: PairHead, train: PairSet, val: PairSet, cfg: PairsConfig
) -> HeadTrainResult:
    """Train `head` (and the encoder unless frozen) in place; keep the best epoch; see the module docstring."""
    threads = torch.get_num_threads()
    if cfg.head.freeze_encoder:
        # small matrices: one thread is faster, and much faster on a busy machine (30x measured at load 7 on 2 cores)
        torch.set_num_threads(1)
    try:
        return _train_head(model, head, train, val, cfg)
    finally:
        torch.set_num_threads(threads)


def _train_head(model, head, train: PairSet, val: PairSet, cfg: PairsConfig) -> HeadTrainResult:
    from tqdm.auto import tqdm

    tcfg, freeze = cfg.train, cfg.head.freeze_encoder
    result = HeadTrainResult()
    torch.manual_seed(tcfg.seed)
    t0 = time.perf_counter()
    cache = EmbeddingCache(model, [train, val]) if freeze else None
    result.encode_seconds = time.perf_counter() - t0
    groups = [{"params": head.parameters(), "lr": tcfg.learning_rate}]
    if not freeze:
        groups.append({"params": model.parameters(), "lr": cfg.head.encoder_learning_rate})
    if tcfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, momentum=tcfg.momentum, weight_decay=tcfg.weight_decay)
    else:
        opt = torch.optim.AdamW(groups, weight_decay=tcfg.weight_decay)
    steps_per_epoch = -(-len(train) // (tcfg.batch_size * tcfg.grad_accum))
    sched = build_scheduler(tcfg.scheduler, opt, steps_per_epoch, tcfg.epochs)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    labels = torch.tensor(train.labels, dtype=torch.float32)
    gen = torch.Generator().manual_seed(tcfg.seed)
    best_value, best_state = -1.0, None
    for epoch in range(1, tcfg.epochs + 1):
        e0 = time.perf_counter()
        head.train()
        model.train(not freeze)
        order = torch.randperm(len(train), generator=gen).tolist()
        losses, steps = [], range(0, len(order), tcfg.batch_size)
        opt.zero_grad()
        for n, start in enumerate(tqdm(steps, desc=f"epoch {epoch}", leave=False, disable=freeze), start=1):
            idx = order[start : start + tcfg.batch_size]
            left, right = [train.left[i] for i in idx], [train.right[i] for i in idx]
            if cache is not None:
                a, b = cache(left), cache(right)
            else:
                a, b = _embed(model, left), _embed(model, right)
            loss = loss_fn(head(a, b), labels[idx])
            (loss / tcfg.grad_accum).backward()
            if n % tcfg.grad_accum == 0 or start + tcfg.batch_size >= len(order):
                opt.step()
                opt.zero_grad()
                sched.after_batch()
            losses.append(float(loss.detach()))
        logits = head_logits(model, head, val, cache)
        scores = 1.0 / (1.0 + np.exp(-logits))
        thr, _ = best_threshold(scores, val.labels, tcfg.threshold_by)
        m = pair_metrics(scores, val.labels, thr)
        rec = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": _bce(logits, val.labels),
            **{f"val_{k}": float(m[k]) for k in REPORTED},
            "val_threshold": float(thr),
            "seconds": round(time.perf_counter() - e0, 3),
        }
        result.history.append(rec)
        print(f"{epoch_line('val', epoch, rec['val_loss'], m, thr)}, Acc {m['accuracy']:.3f}, {rec['seconds']:.1f} s")
        value = rec[f"val_{tcfg.best_by}"]
        sched.after_epoch(value)
        if value > best_value:
            best_value, result.best_epoch, result.threshold = value, epoch, float(thr)
            best_state = (copy.deepcopy(head.state_dict()), None if freeze else copy.deepcopy(model.state_dict()))
    if best_state is not None:
        head.load_state_dict(best_state[0])
        if best_state[1] is not None:
            model.load_state_dict(best_state[1])
    head.eval()
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result
