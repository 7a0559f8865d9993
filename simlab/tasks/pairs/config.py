"""`task: pairs`: the schema of siamese pair matching runs (workload A)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from simlab.config import (
    CrossEncoderConfig,
    Experiment,
    PairModelConfig,
    PairSamplingConfig,
    PairsDataConfig,
    PairTrainConfig,
)


class PairsConfig(Experiment):
    """`task: pairs`: a siamese matcher with a threshold tuned on val and frozen for test (workload A)."""

    task: Literal["pairs"] = "pairs"
    data: PairsDataConfig
    sampling: PairSamplingConfig = PairSamplingConfig()
    model: PairModelConfig = PairModelConfig()
    train: PairTrainConfig = PairTrainConfig()
    cross: CrossEncoderConfig = CrossEncoderConfig()

    @model_validator(mode="after")
    def _check(self):
        from simlab.models import check_backend_model
        from simlab.training.pair_losses import LOSSES

        check_backend_model(self.model.preload or self.model.name, self.model.backend)
        if self.model.backend != "torch" and self.model.fields_encoder != "joined":
            raise ValueError(
                f"model.backend: {self.model.backend} runs transformer models; model.fields_encoder: "
                f"{self.model.fields_encoder} encodes with static embeddings: set model.backend: torch"
            )
        if self.train.loss not in LOSSES:
            raise ValueError(f"train.loss: {self.train.loss!r} is not a pair loss; choose one of: {', '.join(LOSSES)}")
        s = self.sampling
        if s.remine_every and (s.hard_miner != "model" or s.mode != "sampled"):
            raise ValueError(
                "sampling.remine_every re-mines with the model being trained: it needs sampling.hard_miner: model "
                "and sampling.mode: sampled"
            )
        if s.remine_every and self.train.resume is not False:
            raise ValueError("train.resume cannot continue a run with sampling.remine_every; start it afresh")
        if self.data.image_field and self.model.fields_encoder == "joined":
            raise ValueError(
                "data.image_field needs an encoder per field: set model.fields_encoder: shared (one text encoder "
                "for the text fields) or separate (one each); the image field gets the image tower of model.image"
            )
        return self
