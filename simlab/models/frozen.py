"""A frozen text encoder's features, each distinct text encoded once: the one cache every task with a frozen
encoder trains its head on (multilabel `model.freeze`, the pairs/definitions head's `head.freeze_encoder`).

A frozen encoder gives a text the same features in every epoch, so running it again each epoch is wasted work (it
was most of a frozen multi-label run's time: 10 epochs encoded every text 10 times). `FrozenFeatures` keeps, per
encoder (one instance per model), a matrix of the features of the distinct texts seen so far and the row of each
text; `add` encodes only the texts it does not have yet, `__call__` gathers a batch's rows. In memory: 40k texts
of a 256-dim encoder are 40 MB. With `cache=False` every call encodes its batch (no gradients): the same numbers,
the old cost; it exists to measure the cache against (benchmarks/bench_static_training.py) and to test that both
give the same training.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch

log = logging.getLogger("simlab")


class FrozenFeatures:
    """`model`'s sentence embeddings (`model.encode`, no gradients), each distinct text encoded once."""

    def __init__(self, model, batch_size: int = 256, cache: bool = True, show_progress: bool = False):
        self.model, self.batch_size, self.cache, self.show_progress = model, batch_size, cache, show_progress
        self.pos: dict[str, int] = {}
        self.emb = torch.empty(0)  # (n distinct texts, dim)

    def _encode(self, texts: list[str]) -> torch.Tensor:
        was_training = self.model.training
        with torch.no_grad():
            out = self.model.encode(
                texts, batch_size=self.batch_size, convert_to_tensor=True, show_progress_bar=self.show_progress
            )
        self.model.train(was_training)  # encode() leaves the model in eval mode
        return out.float().reshape(len(texts), -1)  # (n, dim)

    def add(self, texts: Iterable[str]) -> int:
        """Encode the texts not encoded yet; the number encoded now (0 without the cache)."""
        if not self.cache:
            return 0
        todo = list(dict.fromkeys(t for t in texts if t not in self.pos))
        if not todo:
            return 0
        if len(todo) > 1000:
            log.info("encoding %d texts once with the frozen encoder", len(todo))
        new = self._encode(todo)
        start = len(self.pos)
        self.pos.update((t, start + i) for i, t in enumerate(todo))
        self.emb = new if not len(self.emb) else torch.cat([self.emb, new])
        return len(todo)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """The features of `texts`, (len(texts), dim), in order; texts not seen yet are encoded first."""
        if not self.cache:
            return self._encode(list(texts)).clone()  # encode() makes inference tensors, which autograd refuses
        self.add(texts)
        return self.emb[[self.pos[t] for t in texts]]

    def __len__(self) -> int:
        return len(self.pos)
