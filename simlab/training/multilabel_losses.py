r"""Multi-label losses: logits (batch, labels) and targets (batch, labels) in, a scalar out.

Every loss averages over all batch x label cells. With $x$ the logit, $t$ the target and
$p = \sigma(x)$:

- `bce`: $-[t \log p + (1 - t) \log(1 - p)]$ with hard targets ($t$ rounded at 0.5).
- `weighted_bce`: $-[w\, t \log p + (1 - t) \log(1 - p)]$ with a per-label positive weight
  $w_l = (1 - \pi_l) / \pi_l$, $\pi_l$ the label's frequency in the training split (its prior):
  positives and negatives of every label then weigh the same in total.
- `focal` (Lin et al. 2017, "Focal Loss for Dense Object Detection", the formula of
  `torchvision.ops.sigmoid_focal_loss`, re-implemented because torchvision does not load here):
  $\alpha_t (1 - p_t)^\gamma \cdot \mathrm{BCE}$ with $p_t = p t + (1 - p)(1 - t)$ and
  $\alpha_t = \alpha t + (1 - \alpha)(1 - t)$; $\alpha < 0$ turns the weighting off, and
  $\gamma = 0$ with $\alpha < 0$ is plain BCE.
- `soft_bce`: BCE against the label probabilities themselves (soft labels), $t \in [0, 1]$.

`build_loss(cfg, train_targets)` builds the configured one; `LOSSES` is the registry.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from simlab.errors import ConfigError


class BCELoss(nn.Module):
    """Binary cross-entropy on hard targets (a soft target counts as 1 from 0.5 up)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, (targets >= 0.5).float())


class WeightedBCELoss(nn.Module):
    """BCE with `pos_weight = (1 - prior) / prior` per label; see the module docstring."""

    def __init__(self, pos_weight: torch.Tensor):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight.float())

    @staticmethod
    def weights_from_priors(train_targets: np.ndarray, max_weight: float | None = None) -> torch.Tensor:
        """(labels,) weights $(1 - \\pi_l) / \\pi_l$ from (items, labels) train targets; a label
        without a positive gets the largest weight seen (it cannot be estimated)."""
        prior = (np.asarray(train_targets) >= 0.5).mean(axis=0).astype(np.float64)  # (L,)
        w = np.where(prior > 0, (1.0 - prior) / np.maximum(prior, 1e-12), np.nan)
        fill = np.nanmax(w) if np.isfinite(w).any() else 1.0
        w = np.where(np.isnan(w), fill, w)
        if max_weight is not None:
            w = np.minimum(w, max_weight)
        return torch.tensor(w, dtype=torch.float32)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, (targets >= 0.5).float(), pos_weight=self.pos_weight)


class FocalLoss(nn.Module):
    """Sigmoid focal loss, `torchvision.ops.sigmoid_focal_loss(reduction="mean")`'s formula."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0):
        super().__init__()
        self.alpha, self.gamma = alpha, gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        t = (targets >= 0.5).float()  # (B, L)
        p = torch.sigmoid(logits)  # (B, L)
        ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")  # (B, L)
        p_t = p * t + (1 - p) * (1 - t)
        loss = ce * (1 - p_t) ** self.gamma
        if self.alpha >= 0:
            loss = (self.alpha * t + (1 - self.alpha) * (1 - t)) * loss
        return loss.mean()


class SoftBCELoss(nn.Module):
    """BCE against the label probabilities (soft labels)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets.float())


LOSSES: dict[str, type[nn.Module]] = {
    "bce": BCELoss,
    "weighted_bce": WeightedBCELoss,
    "focal": FocalLoss,
    "soft_bce": SoftBCELoss,
}


def build_loss(cfg, train_targets: np.ndarray) -> nn.Module:
    """The loss `cfg.name` (a `MultilabelLossConfig`); `train_targets` give weighted_bce its priors."""
    if cfg.name not in LOSSES:
        raise ConfigError(f"loss.name: {cfg.name!r} is not a loss; choose one of: {', '.join(sorted(LOSSES))}")
    if cfg.name == "weighted_bce":
        return WeightedBCELoss(WeightedBCELoss.weights_from_priors(train_targets, cfg.max_pos_weight))
    if cfg.name == "focal":
        return FocalLoss(cfg.alpha, cfg.gamma)
    return LOSSES[cfg.name]()
