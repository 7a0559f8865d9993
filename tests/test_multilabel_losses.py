"""Multi-label losses against their formulas on fixed tensors, and the LR schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simlab.config import MultilabelLossConfig, SchedulerConfig
from simlab.training.multilabel_losses import (
    LOSSES,
    BCELoss,
    FocalLoss,
    SoftBCELoss,
    WeightedBCELoss,
    build_loss,
)
from simlab.training.schedulers import build_scheduler

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 1.5, -2.0], [0.0, 0.7, 3.0], [-1.2, -0.4, 0.9]])
HARD = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
SOFT = torch.tensor([[0.9, 0.1, 0.6], [0.2, 0.7, 0.0], [1.0, 0.4, 0.8], [0.0, 0.3, 0.5]])


def _bce_cell(x: float, t: float, w: float = 1.0) -> float:
    p = 1 / (1 + math.exp(-x))
    return -(w * t * math.log(p) + (1 - t) * math.log(1 - p))


def _mean(fn) -> float:
    cells = [fn(float(LOGITS[i, j]), i, j) for i in range(LOGITS.shape[0]) for j in range(LOGITS.shape[1])]
    return sum(cells) / len(cells)


def test_bce_matches_formula():
    expected = _mean(lambda x, i, j: _bce_cell(x, float(HARD[i, j])))
    assert float(BCELoss()(LOGITS, HARD)) == pytest.approx(expected, rel=1e-6)


def test_bce_counts_soft_labels_from_one_half():
    assert float(BCELoss()(LOGITS, SOFT)) == pytest.approx(float(BCELoss()(LOGITS, (SOFT >= 0.5).float())))


def test_soft_bce_matches_formula_on_probabilities():
    expected = _mean(lambda x, i, j: _bce_cell(x, float(SOFT[i, j])))
    assert float(SoftBCELoss()(LOGITS, SOFT)) == pytest.approx(expected, rel=1e-6)


def test_weighted_bce_weights_are_train_priors_and_loss_matches_formula():
    train = np.array([[1, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32)
    prior = train.mean(0)  # 0.6, 0.2, 0.2
    w = WeightedBCELoss.weights_from_priors(train)
    np.testing.assert_allclose(w.numpy(), (1 - prior) / prior, rtol=1e-6)
    np.testing.assert_allclose(w.numpy(), [0.4 / 0.6, 4.0, 4.0], rtol=1e-6)
    loss = build_loss(MultilabelLossConfig(name="weighted_bce"), train)
    expected = _mean(lambda x, i, j: _bce_cell(x, float(HARD[i, j]), float(w[j])))
    assert float(loss(LOGITS, HARD)) == pytest.approx(expected, rel=1e-6)


def test_weighted_bce_cap_and_label_without_positive():
    train = np.array([[1, 0], [0, 0], [0, 0], [0, 0]], dtype=np.float32)
    w = WeightedBCELoss.weights_from_priors(train)
    assert w.tolist() == pytest.approx([3.0, 3.0])  # no positive: the largest weight seen
    assert WeightedBCELoss.weights_from_priors(train, max_weight=2.0).tolist() == pytest.approx([2.0, 2.0])


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.6, 1.0), (-1.0, 3.0)])
def test_focal_matches_formula(alpha, gamma):
    def cell(x, i, j):
        t = float(HARD[i, j])
        p = 1 / (1 + math.exp(-x))
        p_t = p * t + (1 - p) * (1 - t)
        a_t = 1.0 if alpha < 0 else alpha * t + (1 - alpha) * (1 - t)
        return a_t * (1 - p_t) ** gamma * _bce_cell(x, t)

    assert float(FocalLoss(alpha, gamma)(LOGITS, HARD)) == pytest.approx(_mean(cell), rel=1e-6)


def test_focal_with_gamma_0_and_no_alpha_is_bce():
    assert float(FocalLoss(alpha=-1, gamma=0)(LOGITS, HARD)) == pytest.approx(float(BCELoss()(LOGITS, HARD)), rel=1e-7)


def test_build_loss_covers_the_registry_and_config_rejects_unknown_names():
    from simlab.errors import ConfigError

    train = HARD.numpy()
    for name in LOSSES:
        assert isinstance(build_loss(MultilabelLossConfig(name=name), train), LOSSES[name])
    with pytest.raises(ConfigError, match="choose one of: bce, focal, soft_bce, weighted_bce"):
        build_loss(MultilabelLossConfig.model_construct(name="dice"), train)


def _opt(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_exponential_steps_per_epoch():
    opt = _opt()
    sched = build_scheduler(SchedulerConfig(name="exponential", gamma=0.8), opt, steps_per_epoch=5, epochs=3)
    for _ in range(5):
        opt.step()
        sched.after_batch()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)  # batches do not move it
    sched.after_epoch(0.5)
    sched.after_epoch(0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.8**2)


def test_warmup_cosine_steps_per_batch():
    opt = _opt()
    sched = build_scheduler(SchedulerConfig(name="warmup_cosine", warmup_ratio=0.2), opt, steps_per_epoch=5, epochs=2)
    lrs = []
    for _ in range(10):
        opt.step()
        sched.after_batch()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.05)  # warmup over 2 steps
    assert lrs[1] == pytest.approx(0.1)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))


def test_plateau_reduces_after_patience():
    opt = _opt()
    sched = build_scheduler(SchedulerConfig(name="plateau", patience=1, factor=0.5), opt, 5, 5)
    for value in (0.5, 0.6, 0.6, 0.6):
        sched.after_epoch(value)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
