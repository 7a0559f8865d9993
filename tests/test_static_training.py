"""Static embeddings: sparse-gradient fine-tuning against the dense path, and the frozen-feature cache."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import SENTENCES

LOSS = torch.nn.BCEWithLogitsLoss

TEXTS = SENTENCES  # six short texts on three topics


def tiny_static(dim: int = 8, seed: int = 0):
    """A SentenceTransformer over a StaticEmbedding with WordLlama's tokenizer and random `dim`-d weights."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    from simlab.models.wordllama import build_wordllama

    torch.manual_seed(seed)
    return SentenceTransformer(modules=[StaticEmbedding(build_wordllama()[0].tokenizer, embedding_dim=dim)])


def _train(kind: str, sparse: bool, batches: list[list[str]], **opt) -> tuple[torch.Tensor, torch.Tensor]:
    """A few steps of a static model + linear head on a fixed target; (table, head weight) after them."""
    from simlab.training.static_tables import build_optimizer

    model = tiny_static()
    torch.manual_seed(1)
    head = torch.nn.Linear(8, 2)
    both = torch.nn.ModuleList([model, head])
    groups = [{"params": list(both.parameters()), "lr": opt.pop("lr", 0.05)}]
    optimizer = build_optimizer(both, groups, kind, sparse=sparse, **opt)
    for batch in batches:
        emb = model(model.preprocess(batch))["sentence_embedding"]
        loss = (head(emb) - torch.arange(2.0)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        assert model[0].embedding.weight.grad.is_sparse == sparse
        optimizer.step()
    return model[0].embedding.weight.detach().clone(), head.weight.detach().clone()


def test_sparse_sgd_is_the_dense_update_exactly():
    batches = [TEXTS[i : i + 2] for i in range(0, 6, 2)] * 2
    dense, sparse = _train("sgd", False, batches), _train("sgd", True, batches)
    assert torch.allclose(dense[0], sparse[0], atol=1e-7) and torch.allclose(dense[1], sparse[1], atol=1e-7)
    assert not torch.equal(dense[0], tiny_static()[0].embedding.weight)  # the table did move


def test_lazy_adam_matches_adamw_where_the_math_is_the_same_and_stays_close_elsewhere():
    from simlab.training.static_tables import LazyAdamW, build_optimizer

    start = tiny_static()[0].embedding.weight.detach()
    # the same batch every step: every touched row is updated at every step, so lazy Adam is Adam, up to where
    # SparseAdam adds epsilon (to sqrt(v) before its bias correction): 1e-3 of a 0.2 move for near-zero gradients
    same = [TEXTS[:3]] * 4
    dense, sparse = _train("adamw", False, same), _train("adamw", True, same)
    assert (dense[0] - start).abs().max() > 0.1
    assert torch.allclose(dense[0], sparse[0], atol=1e-3) and torch.allclose(dense[1], sparse[1], atol=1e-4)
    # varying batches: rows missing from a step keep still under lazy Adam, move on their momentum under AdamW
    varying = [TEXTS[i : i + 2] for i in range(0, 6, 2)] * 2
    dense, sparse = _train("adamw", False, varying), _train("adamw", True, varying)
    moved = (dense[0] - start).norm()
    assert moved > 0 and (sparse[0] - dense[0]).norm() < 0.5 * moved
    untouched = (dense[0] == start).all(1)  # never seen: both leave the row exactly as it was
    assert untouched.sum() > 30000 and torch.equal(sparse[0][untouched], start[untouched])
    # weight decay is applied to the rows a step updates, with AdamW's factor
    dense, sparse = _train("adamw", False, same, weight_decay=0.1), _train("adamw", True, same, weight_decay=0.1)
    touched = ~(sparse[0] == start).all(1)
    assert torch.allclose(dense[0][touched], sparse[0][touched], atol=1e-3)
    model = tiny_static()
    optimizer = build_optimizer(model, [{"params": list(model.parameters()), "lr": 0.1}], "adamw", weight_decay=0.1)
    assert isinstance(optimizer, LazyAdamW) and model[0].embedding.sparse


def test_sgd_with_momentum_keeps_dense_gradients():
    from simlab.training.static_tables import build_optimizer

    model = tiny_static()
    optimizer = build_optimizer(model, [{"params": list(model.parameters()), "lr": 0.1}], "sgd", momentum=0.9)
    assert isinstance(optimizer, torch.optim.SGD) and not model[0].embedding.sparse


def test_clip_grad_norm_takes_sparse_gradients_like_torch_takes_dense_ones():
    from simlab.training.static_tables import clip_grad_norm

    grads = {}
    for sparse in (False, True):
        model = tiny_static()
        model[0].embedding.sparse = sparse
        model(model.preprocess(TEXTS + TEXTS[:2]))["sentence_embedding"].pow(2).sum().backward()
        params = list(model.parameters())
        if sparse:
            norm = clip_grad_norm(params, 0.01)
            grads[sparse] = params[0].grad.to_dense()
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, 0.01)
            grads[sparse] = params[0].grad
        grads[f"norm{sparse}"] = norm
    assert torch.allclose(grads["normFalse"], grads["normTrue"]) and grads["normTrue"] > 0.01
    assert torch.allclose(grads[False], grads[True], atol=1e-8)
    assert torch.isclose(grads[True].norm(), torch.tensor(0.01), rtol=1e-3)


def test_mixed_optimizer_follows_the_schedule_and_saves_its_state():
    from simlab.training.static_tables import LazyAdamW, MixedOptimizer, build_optimizer

    def setup():
        model = tiny_static()
        torch.manual_seed(1)
        both = torch.nn.ModuleList([model, torch.nn.Linear(8, 1)])
        optimizer = build_optimizer(both, [{"params": list(both.parameters()), "lr": 0.1}], "adamw")
        return model, both, optimizer

    def step(model, both, optimizer):
        both[1](model(model.preprocess(TEXTS))["sentence_embedding"]).sum().backward()
        optimizer.step()
        optimizer.zero_grad()

    model, both, optimizer = setup()
    assert isinstance(optimizer, MixedOptimizer)
    assert isinstance(optimizer.optimizers[0], torch.optim.AdamW) and isinstance(optimizer.optimizers[1], LazyAdamW)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5**s)
    step(model, both, optimizer)
    schedule.step()
    assert [g["lr"] for o in optimizer.optimizers for g in o.param_groups] == [0.05, 0.05]
    state = copy.deepcopy(optimizer.state_dict())  # a state dict holds the live tensors
    weights = {k: v.clone() for k, v in both.state_dict().items()}
    step(model, both, optimizer)
    after = {k: v.clone() for k, v in both.state_dict().items()}
    model2, both2, optimizer2 = setup()  # resumed as the loops resume: build, then load the states
    schedule2 = torch.optim.lr_scheduler.LambdaLR(optimizer2, lambda s: 0.5**s)
    both2.load_state_dict(weights)
    optimizer2.load_state_dict(state)
    schedule2.load_state_dict(schedule.state_dict())
    step(model2, both2, optimizer2)
    schedule2.step()  # the schedule still reaches the parts after a load
    assert [g["lr"] for o in optimizer2.optimizers for g in o.param_groups] == [0.025, 0.025]
    assert all(torch.allclose(after[k], v, atol=1e-7) for k, v in both2.state_dict().items())


def test_pair_trainer_trains_a_static_model_with_sparse_gradients(tmp_path):
    """The sentence-transformers trainer path (pairs; retrieval's is the same class): LazyAdamW on the table,
    clipping with sparse gradients, and the model learns the pairs (val F1 up from the untrained model's)."""
    from simlab.config import PairTrainConfig
    from simlab.training import static_tables
    from simlab.training.pairs import PairSet, score_split, train_pairs
    from simlab.training.static_tables import LazyAdamW

    left = [f"item {w} alpha" for w in ("red", "blue", "green", "black", "white", "pink")]
    right_pos = [f"{w} alpha thing" for w in ("red", "blue", "green", "black", "white", "pink")]
    right_neg = right_pos[1:] + right_pos[:1]
    train = PairSet(left * 2, right_pos + right_neg, [1] * 6 + [0] * 6, [str(i) for i in range(12)])
    model = tiny_static(dim=16)
    before = model[0].embedding.weight.detach().clone()
    cfg = PairTrainConfig(epochs=8, batch_size=4, learning_rate=0.05)
    built = []
    build = static_tables.build_optimizer
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(static_tables, "build_optimizer", lambda *a, **k: built.append(build(*a, **k)) or built[-1])
        result = train_pairs(model, train, train, cfg, tmp_path / "work")
    assert len(built) == 1 and isinstance(built[0], LazyAdamW) and model[0].embedding.sparse
    changed = ~(model[0].embedding.weight.detach() == before).all(1)
    assert 0 < changed.sum() < 100  # only the rows of the pairs' tokens moved
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert score_split(model, train, "cosine")[0]["f1"] == pytest.approx(1.0)


def test_multilabel_fine_tuning_learns_with_sparse_gradients(tmp_path):
    from simlab.config.multilabel import MultilabelTrainConfig
    from simlab.config.schedule import SchedulerConfig
    from simlab.models.multilabel import MultiLabelModel, make_head
    from simlab.training.multilabel import train_multilabel
    from simlab.training.static_tables import MixedOptimizer

    texts = TEXTS * 4
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0], [1, 1]] * 4, dtype=np.float32)
    train_cfg = MultilabelTrainConfig(epochs=6, batch_size=4, learning_rate=0.05)
    torch.manual_seed(0)
    encoder = tiny_static(dim=16)
    model = MultiLabelModel("text", encoder, 16, make_head(16, 2, "linear", 8, 0.0))
    opts = []
    import simlab.training.multilabel as ml

    build = ml.build_optimizer
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ml, "build_optimizer", lambda *a, **k: opts.append(build(*a, **k)) or opts[-1])
        result = train_multilabel(model, texts, y, texts, y, LOSS(), train_cfg, SchedulerConfig(name="constant"))
    assert isinstance(opts[0], MixedOptimizer) and encoder[0].embedding.sparse
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert result.history[-1]["val_ap"] > 0.95


def test_frozen_features_cached_and_uncached_train_the_same(tmp_path):
    """The head over a frozen encoder learns the same with the features encoded once as with every batch encoded
    again, in both loops that have a frozen encoder (multilabel, the pair head)."""
    from simlab.config import HeadConfig, PairTrainConfig
    from simlab.config.multilabel import MultilabelTrainConfig
    from simlab.config.schedule import SchedulerConfig
    from simlab.models.head import PairHead
    from simlab.models.multilabel import MultiLabelModel, make_head
    from simlab.training.head import train_head
    from simlab.training.multilabel import train_multilabel
    from simlab.training.pairs import PairSet

    texts = TEXTS * 3
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0], [1, 1]] * 3, dtype=np.float32)
    train_cfg = MultilabelTrainConfig(epochs=3, batch_size=4)
    runs = {}
    for cache in (True, False):
        torch.manual_seed(0)
        model = MultiLabelModel("text", tiny_static(), 8, make_head(8, 2, "mlp", 8, 0.0), freeze=True, cache=cache)
        result = train_multilabel(model, texts, y, texts, y, LOSS(), train_cfg, SchedulerConfig(), progress=False)
        runs[cache] = ([h["val_loss"] for h in result.history], list(model.head.parameters()))
        assert len(model.frozen) == (len(TEXTS) if cache else 0)
    assert np.allclose(runs[True][0], runs[False][0], atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(runs[True][1], runs[False][1]))

    pairs = PairSet(TEXTS[:3] * 2, TEXTS[3:] + TEXTS[:3], [0, 0, 0, 1, 1, 1], [str(i) for i in range(6)])
    heads = {}
    for cache in (True, False):
        torch.manual_seed(0)
        head = PairHead(8, "mlp", [8])
        result = train_head(
            tiny_static(), head, pairs, pairs, PairTrainConfig(epochs=3, batch_size=2), HeadConfig(), cache=cache
        )
        heads[cache] = ([h["val_loss"] for h in result.history], list(head.parameters()))
    assert np.allclose(heads[True][0], heads[False][0], atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(heads[True][1], heads[False][1]))
