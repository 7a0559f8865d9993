"""Sections of the pair tasks (siamese matching and context vs definition): records, sampling,
model, training, the classifier head and synthetic negatives.

`simlab.tasks.pairs.config` and `simlab.tasks.definitions.config` compose them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simlab.config.backend import Backend
from simlab.config.base import Section
from simlab.config.schedule import SPARSE_GRADS, SchedulerConfig, TrainerSection


class PairsDataConfig(Section):
    path: str = Field(
        ..., min_length=1, description="DeepMatcher folder (tableA/tableB + pair files) or a records file."
    )
    fields: list[str] | None = Field(None, description="Text fields of a record; default: all but the id.")
    id_field: str = "id"
    group_field: str = Field("group", description="Group column of a records file (records of a group match).")
    image_field: str | None = Field(
        None, description="Column of image paths (relative to the records file), encoded by model.image's tower."
    )
    val_ratio: float = Field(0.1, ge=0, lt=1)
    test_ratio: float = Field(0.1, ge=0, lt=1)
    seed: int = 42


class DefinitionsDataConfig(Section):
    path: str = Field(
        ..., min_length=1, description="A labelled-pairs folder (simlab data convert wic-tsv | wic | oewn)."
    )
    fields: list[str] | None = Field(
        None, description="Fields joined into a context's and a definition's text; default: all but the spans."
    )
    id_field: str = "id"
    group_field: str = "group"
    senses: str | None = Field(
        None,
        description="A sense inventory: `wordnet` (Princeton WordNet 3.0, installed with simlab) or an Open "
        "English WordNet folder; adds the `senses` system (cosine to the definition minus the best other sense of "
        "the word; simlab.data.senses).",
    )


class PerSplitLimit(Section):
    train: int | None = Field(None, ge=1)
    val: int | None = Field(None, ge=1)
    test: int | None = Field(None, ge=1)


class PairSamplingConfig(Section):
    mode: Literal["sampled", "given"] = Field(
        "sampled", description="Train on pairs sampled from the train matches, or on the given train pairs."
    )
    pos_neg_ratio: float = Field(2.0, ge=0, description="Negatives per positive pair.")
    hard_soft_ratio: float = Field(0.5, ge=0, le=1, description="Share of negatives that are hard (mined).")
    hard_miner: Literal["bm25", "model"] = "bm25"
    remine_every: int | None = Field(
        None, ge=1, description="Re-mine hard negatives with the current model every N epochs (hard_miner: model)."
    )
    limit_pos_pairs_per_query: PerSplitLimit = PerSplitLimit()
    limit_queries: int | None = Field(None, ge=1)


class ImageTowerConfig(Section):
    backbone: str = Field(
        "resnet18", description="resnet18 | resnet50 | resnet152, a hub vision model (e.g. a CLIP) or a local folder."
    )
    pretrained: bool = Field(False, description="ResNets: ImageNet weights from the hub (microsoft/resnet-N).")
    image_size: int = Field(64, gt=0, description="Images are resized to image_size x image_size.")


class PairModelConfig(Section):
    name: str = Field("wordllama", description="'wordllama', a hub model name, or a local model folder.")
    preload: str | None = Field(None, description="Start from this saved model folder (e.g. an earlier run's model).")
    dropout: float = Field(0.0, ge=0, lt=1)
    max_length: int = Field(256, gt=0)
    normalize: bool = True
    fields_encoder: Literal["joined", "shared", "separate"] = Field(
        "joined",
        description="joined: a record is one string of its field values; shared / separate: each field is "
        "encoded on its own (one shared encoder, or a copy per field; static embedding models only) and fused.",
    )
    fusion: Literal["concat", "mean"] = Field(
        "concat", description="How per-field embeddings are fused (fields_encoder shared/separate)."
    )
    image: ImageTowerConfig = Field(ImageTowerConfig(), description="The tower of data.image_field, if any.")
    backend: Backend = "torch"


class CrossEncoderConfig(Section):
    """The `cross` system: one transformer reads both records together and is fine-tuned on the labelled train
    pairs (a sentence-transformers CrossEncoder with binary cross-entropy, as Ditto does with RoBERTa)."""

    model: str | None = Field(
        None, description="null: no cross system; 'minilm' (all-MiniLM-L6-v2), a hub model or a local model folder."
    )
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(8e-5, gt=0, description="Peak learning rate (10% linear warm-up, linear decay).")
    max_length: int = Field(64, gt=0, description="Tokens of the two records together; longer pairs are cut.")
    field_tokens: int | None = Field(
        None,
        ge=1,
        description="Cut each field's value to its first N tokens before the records are serialised, so a long "
        "field (a title) leaves room for the others within max_length; null: no cut per field.",
    )


class ContextModelConfig(Section):
    """The encoder of context-vs-definition matching, pooled over the context's target word if asked."""

    name: str = Field("wordllama", description="'wordllama', a hub model name, or a local model folder.")
    preload: str | None = Field(None, description="Start from this saved model folder (e.g. an earlier run's model).")
    max_length: int = Field(256, gt=0)
    normalize: bool = True
    layers: str | None = Field(
        None,
        pattern=r"^last[1-9][0-9]*_(sum|mean)$",
        description="Token vectors = sum or mean of the last k hidden layers, e.g. last4_sum (transformer "
        "models only; see simlab.models.context_pooling).",
    )
    pooling_scope: Literal["sentence", "target", "window"] = Field(
        "sentence",
        description="Pool all tokens, only the target word's tokens, or the tokens within `window` of the target "
        "(contexts with a target span; other texts pool all tokens).",
    )
    window: int = Field(5, ge=0, description="pooling_scope: window: tokens on each side of the target.")
    backend: Backend = "torch"


class PairTrainConfig(TrainerSection):
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(64, ge=2)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only.")
    weight_decay: float = Field(0.0, ge=0)
    sparse_grads: bool = Field(True, description=SPARSE_GRADS)
    scheduler: SchedulerConfig = SchedulerConfig(name="plateau")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    loss: str = Field(
        "contrastive",
        description="A pair loss of simlab.training.pair_losses.LOSSES: contrastive, online_contrastive, cosent, "
        "or one added with simlab.register_loss.",
    )
    margin: float = Field(0.5, gt=0, description="Contrastive loss margin on the distance.")
    distance: Literal["cosine", "euclidean"] = "cosine"
    best_by: Literal["f1", "pos_acc", "accuracy"] = "f1"
    threshold_by: Literal["f1", "accuracy"] = Field(
        "f1", description="The val-tuned threshold maximises this (then frozen for test)."
    )
    save_every: int | None = Field(None, ge=1, description="Also keep the model every N epochs.")
    seed: int = 42


class HeadConfig(Section):
    """A classifier head over (example, definition) embeddings, trained with BCE (workload B)."""

    kind: Literal["mlp", "cosine"] = Field(
        "mlp", description="mlp: two tanh branches, combined features, linear + sigmoid; cosine: cosine of branches."
    )
    widths: list[int] = Field([512, 128], description="Layer widths of each branch (example, definition); [] = none.")
    features: list[Literal["u", "v", "absdiff", "product"]] = Field(
        ["u", "v", "absdiff", "product"],
        min_length=1,
        description="mlp: what the final linear layer reads: branch outputs u, v, |u-v|, u*v.",
    )
    freeze_encoder: bool = Field(True, description="Train the head only (embeddings computed once).")
    encoder_learning_rate: float = Field(2e-5, gt=0, description="Encoder learning rate when not frozen.")


DEFAULT_TEMPLATES = [
    "From the top of the hill {target} can be seen along the whole road.",
    "She wrote the word {target} on the blackboard.",
    "The children laughed when the {target} started to sing.",
    "He never understood why {target} was printed on the ticket.",
    "In the old story the king kept {target} in a golden box.",
    "Nobody at the station could explain the {target}.",
    "The letter ended with the word {target}.",
    "They painted {target} on the side of the boat.",
    "The teacher asked who had brought the {target} to class.",
    "A sign by the gate said {target} in large letters.",
]


class SyntheticConfig(Section):
    """Synthetic negatives for the train split (workload B); see simlab.data.synthetic."""

    replace_share: float = Field(0.0, ge=0, le=1, description="Share of label-0 train pairs replaced by templates.")
    templates: list[str] = Field(
        DEFAULT_TEMPLATES, description="Contexts with a {target} slot, filled with a positive's target word."
    )
    swap_share: float = Field(
        0.0, ge=0, le=1, description="Share of label-0 train pairs replaced by swapped contexts (opposite index)."
    )
    seed: int = 42

    @model_validator(mode="after")
    def _check(self):
        if self.replace_share + self.swap_share > 1:
            raise ValueError(
                f"synthetic.replace_share ({self.replace_share}) + synthetic.swap_share ({self.swap_share}) > 1: "
                "together they cannot replace more than all label-0 pairs"
            )
        bad = [t for t in self.templates if "{target}" not in t]
        if bad or (self.replace_share > 0 and not self.templates):
            raise ValueError(f"synthetic.templates: every template needs a {{target}} slot (got {bad or []!r})")
        return self
