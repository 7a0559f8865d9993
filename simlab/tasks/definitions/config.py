"""`task: definitions` (or `task: pairs` with a `head:` block): the schema of context-vs-definition runs."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from simlab.config import (
    ContextModelConfig,
    DefinitionsDataConfig,
    Experiment,
    HeadConfig,
    PairSamplingConfig,
    PairTrainConfig,
    SyntheticConfig,
)


class DefinitionsConfig(Experiment):
    """`task: definitions`: does a context use a word in the sense a definition gives? A classifier head over
    the encoder's embeddings, with a threshold tuned on val and frozen for test (workload B)."""

    task: Literal["definitions"] = "definitions"
    data: DefinitionsDataConfig
    sampling: PairSamplingConfig = PairSamplingConfig(mode="given")
    model: ContextModelConfig = ContextModelConfig()
    train: PairTrainConfig = PairTrainConfig()
    head: HeadConfig = HeadConfig()
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _check(self):
        from simlab.models import STATIC_MODELS, check_backend_model

        if self.sampling.mode != "given":
            raise ValueError(
                "sampling.mode: a definitions run trains on the dataset's labelled pairs: set sampling.mode: given "
                "(the definition datasets give their train pairs)"
            )
        name = self.model.preload or self.model.name
        check_backend_model(name, self.model.backend)
        if self.model.layers and name in STATIC_MODELS:
            raise ValueError(
                f"model.layers: {self.model.layers} sums hidden layers, but {name!r} is a static embedding (one "
                "table of token vectors, no layers); set model.layers: null (pooling_scope: window pools around "
                "the target word for static models too), or model.name: a local transformers folder"
            )
        return self
