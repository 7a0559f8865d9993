"""Fine-tuning a static embedding with sparse gradients: the one optimizer setup of every simlab trainer.

A static embedding (wordllama: sentence-transformers' `StaticEmbedding`, an `nn.EmbeddingBag` over a 32,000 x 256
table) looks up a batch's few thousand token rows; with dense gradients the backward pass still writes a full
32k x 256 gradient and AdamW then reads and writes every row of the table, its gradient and both moments at every
step: about 0.08 s a step on one core, whatever the batch, against about 0.01 s for the whole step with sparse
gradients (batch 64; benchmarks/bench_static_training.py). So, when a model being trained has a trainable
`nn.EmbeddingBag`, `build_optimizer` switches the bag to sparse gradients (`EmbeddingBag(sparse=True)`: the
gradient holds only the looked-up rows) and gives its table an optimizer that takes them:

- `adamw`: `LazyAdamW`, torch's `SparseAdam` (the "lazy Adam" of TensorFlow's LazyAdamOptimizer): the moments of
  a row move only at the steps its tokens occur in, where AdamW would also decay them (and move the row) at every
  other step. Rows of unseen tokens stay exactly where they were; seen rows follow nearly the same path (the test
  compares both on a tiny model). The rest of the model (a head, a Normalize has none) keeps AdamW.
- `sgd` without momentum or weight decay: torch's SGD takes sparse gradients as they are, and the update is
  the dense one exactly (an untouched row's gradient is zero). With momentum (or weight decay) an untouched row
  still moves at every step, so the table keeps dense gradients and the exact dense SGD.

Weight decay: `SparseAdam` has none, and AdamW's decoupled decay multiplies every row of the table by
(1 - lr * wd) at every step, which is itself a pass over the whole table, the cost this module removes.
`LazyAdamW` decays the rows a step updates (the same factor, applied where AdamW applies it, before the Adam
update), lazily like its moments: a row's decay counts the steps its tokens were seen in.

Gradient clipping: `torch.nn.utils.clip_grad_norm_` cannot take a sparse gradient (`linalg_vector_norm` has no
sparse kernel), and the Hugging Face trainer clips (and measures the norm of) every step's gradients with it.
`clip_grad_norm` computes the same global 2-norm with the sparse gradients coalesced (a row's duplicate entries
summed first, as the dense gradient sums them) and scales every gradient in place by the same factor;
`sparse_trainer` makes a sentence-transformers trainer use it and build its optimizer here.

`sparse=False` (the config's `train.sparse_grads: false`) keeps the dense path everywhere (exact AdamW/SGD, the
slow steps), for comparison. Several processes (torchrun/Ray) keep it too: DDP all-reduces sparse gradients only
without its gradient buckets, and those runs are for transformers on GPUs.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def static_tables(model: nn.Module) -> list[nn.EmbeddingBag]:
    """The trainable `nn.EmbeddingBag`s of `model` (a `StaticEmbedding`'s table), in module order."""
    return [m for m in model.modules() if isinstance(m, nn.EmbeddingBag) and m.weight.requires_grad]


def takes_sparse(kind: str, momentum: float = 0.0, weight_decay: float = 0.0) -> bool:
    """Whether optimizer `kind` ("adamw" or "sgd") has a sparse-gradient form here (see the module docstring)."""
    return kind == "adamw" or (kind == "sgd" and momentum == 0 and weight_decay == 0)


class LazyAdamW(torch.optim.SparseAdam):
    """`SparseAdam` plus AdamW's decoupled weight decay on the rows each step updates (see the module docstring)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps)
        for group in self.param_groups:
            group.setdefault("weight_decay", weight_decay)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            if group["weight_decay"]:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad = p.grad.coalesce()  # SparseAdam coalesces too; already coalesced it is a no-op there
                        rows = p.grad.indices()[0]
                        p[rows] *= 1 - group["lr"] * group["weight_decay"]
        return super().step(closure)


class MixedOptimizer(torch.optim.Optimizer):
    """Several optimizers stepped as one: the trainers, schedules and checkpoints see one optimizer whose
    `param_groups` are its parts' own group dicts (a schedule setting a group's lr sets the part's)."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = list(optimizers)
        super().__init__([g for o in self.optimizers for g in o.param_groups], {})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict) -> None:
        for optimizer, state in zip(self.optimizers, state_dict["optimizers"], strict=True):
            optimizer.load_state_dict(state)
        # loading gives the parts new group dicts: share them again, or a schedule would set stale ones
        self.param_groups = [g for o in self.optimizers for g in o.param_groups]


def build_optimizer(
    model: nn.Module,
    groups: list[dict],
    kind: str,
    *,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    sparse: bool = True,
) -> torch.optim.Optimizer:
    """The optimizer of `groups` (dicts with `params` and `lr`, parameters of `model`): AdamW (`kind` "adamw")
    or SGD ("sgd", with `momentum`), with sparse gradients and `LazyAdamW`/SGD for `model`'s static tables when
    `sparse` and the optimizer has a sparse form (`takes_sparse`). Sets each table's `sparse` flag either way."""
    bags = static_tables(model)
    on = sparse and takes_sparse(kind, momentum, weight_decay)
    for bag in bags:
        bag.sparse = on
    tables = {id(b.weight) for b in bags} if on else set()
    groups = [g | {"params": list(g["params"])} for g in groups]
    dense = [g | {"params": [p for p in g["params"] if id(p) not in tables]} for g in groups]
    lazy = [g | {"params": [p for p in g["params"] if id(p) in tables]} for g in groups]
    dense, lazy = [g for g in dense if g["params"]], [g for g in lazy if g["params"]]
    parts = []
    if dense:
        if kind == "sgd":
            parts.append(torch.optim.SGD(dense, momentum=momentum, weight_decay=weight_decay))
        else:
            parts.append(torch.optim.AdamW(dense, betas=betas, eps=eps, weight_decay=weight_decay))
    if lazy:
        parts.append(
            torch.optim.SGD(lazy) if kind == "sgd" else LazyAdamW(lazy, betas=betas, eps=eps, weight_decay=weight_decay)
        )
    return parts[0] if len(parts) == 1 else MixedOptimizer(parts)


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` (2-norm) for gradients some of which are sparse; the norm before clipping."""
    grads = []
    for p in parameters:
        if p.grad is not None:
            if p.grad.is_sparse:
                p.grad = p.grad.coalesce()
            grads.append(p.grad)
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.values() if g.is_sparse else g) for g in grads])
    )
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef)
    return total


def sparse_trainer(base, kind: str = "adamw", momentum: float = 0.0, sparse: bool = True):
    """A subclass of the sentence-transformers trainer class `base` whose optimizer is `build_optimizer`'s
    (learning rate, weight decay, Adam betas and epsilon from its arguments) when the model has a static table and
    `sparse` holds, and whose gradient clipping takes sparse gradients (`clip_grad_norm`). Otherwise (another
    model, `sparse=False`, SGD with momentum) it is `base` with its own optimizer: the dense path."""

    class SparseTablesTrainer(base):
        def create_optimizer(self, model=None):
            m = self.model if model is None else model
            bags, a = static_tables(m), self.args
            on = bool(bags) and sparse and takes_sparse(kind, momentum, a.weight_decay)
            if self.optimizer is None and on:
                params = [p for p in m.parameters() if p.requires_grad]
                self.optimizer = build_optimizer(
                    m,
                    [{"params": params, "lr": a.learning_rate}],
                    kind,
                    weight_decay=a.weight_decay,
                    momentum=momentum,
                    betas=(a.adam_beta1, a.adam_beta2),
                    eps=a.adam_epsilon,
                )
            for bag in bags if not on else ():
                bag.sparse = False  # the trainer's own optimizer, dense gradients: the path without this module
            return super().create_optimizer(model)

        def _clip_grad_norm(self, model):
            if any(p.grad is not None and p.grad.is_sparse for p in model.parameters()):
                return clip_grad_norm(model.parameters(), self.args.max_grad_norm)
            return super()._clip_grad_norm(model)

    return SparseTablesTrainer
