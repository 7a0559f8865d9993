"""The pair losses of siamese training: sentence-transformers losses by `train.loss` name.

`LOSSES` is the registry (`register_loss` adds a user's own); builders import
sentence-transformers only when called, so a config can be checked against the names cheaply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simlab.config import PairTrainConfig


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


LOSSES: dict[str, Callable] = {
    "contrastive": _contrastive,
    "online_contrastive": _online_contrastive,
    "cosent": _cosent,
}
"""`train.loss` name -> builder(model, train_cfg) of a sentence-transformers pair loss; add one with `register_loss`."""


def register_loss(name: str):
    """Decorator: register `builder(model, train_cfg) -> loss` as `train.loss: <name>` of pairs and definitions runs.

    The builder gets the `SentenceTransformer` being trained and the run's `train` section, and returns a
    sentence-transformers pair loss (a module taking `(features, labels)` with 0/1 labels).

    Example:
        >>> @register_loss("my-contrastive")  # doctest: +SKIP
        ... def build(model, cfg):
        ...     return ContrastiveLoss(model, margin=2 * cfg.margin)
    """

    def add(builder: Callable) -> Callable:
        LOSSES[name] = builder
        return builder

    return add
