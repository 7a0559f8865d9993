"""The experiment config, at the bottom of the house: typed sections and the loader.

Each block of a YAML file is a `Section` (pydantic; unknown fields are errors). The sections
the lower layers take (models, training, index, evaluation) live here, grouped by task family;
each task's schema (`simlab.tasks.<kind>.config`) composes them, and `simlab.tasks.load_config`
reads a file against the schema of its `task:`. This package imports nothing from the rest of
simlab but `simlab.errors`.
"""

from __future__ import annotations

from simlab.config.base import ClusterConfig, Experiment, Section, TrackingConfig
from simlab.config.multilabel import (
    AugmentConfig,
    MultilabelDataConfig,
    MultilabelLossConfig,
    MultilabelModelConfig,
    MultilabelTrainConfig,
    ThresholdsConfig,
)
from simlab.config.pairs import (
    ContextModelConfig,
    CrossEncoderConfig,
    DefinitionsDataConfig,
    HeadConfig,
    ImageTowerConfig,
    PairModelConfig,
    PairSamplingConfig,
    PairsDataConfig,
    PairTrainConfig,
    PerSplitLimit,
    SyntheticConfig,
)
from simlab.config.retrieval import (
    DataConfig,
    EvalConfig,
    HardNegativesConfig,
    HNSWConfig,
    IndexConfig,
    IVFConfig,
    ModelConfig,
    ScratchMLMConfig,
    SeismicConfig,
    SparseModelConfig,
    SpladeTrainConfig,
    TrainConfig,
)
from simlab.config.schedule import SchedulerConfig

__all__ = [
    "AugmentConfig",
    "ClusterConfig",
    "ContextModelConfig",
    "CrossEncoderConfig",
    "DataConfig",
    "DefinitionsDataConfig",
    "EvalConfig",
    "Experiment",
    "HNSWConfig",
    "HardNegativesConfig",
    "HeadConfig",
    "IVFConfig",
    "ImageTowerConfig",
    "IndexConfig",
    "ModelConfig",
    "MultilabelDataConfig",
    "MultilabelLossConfig",
    "MultilabelModelConfig",
    "MultilabelTrainConfig",
    "PairModelConfig",
    "PairSamplingConfig",
    "PairTrainConfig",
    "PairsDataConfig",
    "PerSplitLimit",
    "SchedulerConfig",
    "ScratchMLMConfig",
    "Section",
    "SeismicConfig",
    "SparseModelConfig",
    "SpladeTrainConfig",
    "SyntheticConfig",
    "ThresholdsConfig",
    "TrackingConfig",
    "TrainConfig",
]
