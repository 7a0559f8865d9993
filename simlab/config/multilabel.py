"""Sections of the multi-label task: items, backbone and head, loss, training, thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simlab.config.base import Section
from simlab.config.schedule import SPARSE_GRADS, Resumable


class AugmentConfig(Section):
    flip: bool = Field(False, description="Random horizontal flip (off for digits and text-like images).")
    crop_padding: int = Field(0, ge=0, description="Pad by this many pixels, then crop back at a random offset.")


class MultilabelDataConfig(Section):
    path: str = Field(
        ...,
        min_length=1,
        description="A JSONL or CSV file, a folder with train/val/test files, or an image folder with labels.csv.",
    )
    input: Literal["auto", "text", "image"] = Field("auto", description="auto: image when rows have an image path.")
    id_field: str = "id"
    text_field: str = "text"
    image_field: str = "image"
    labels_field: str = Field("labels", description="A list of labels, a 'a|b' string, or {label: probability}.")
    label_sep: str = Field("|", min_length=1, description="Separator of labels given as one string.")
    split_field: str = Field("split", description="Column naming each row's split (train/val/test), if present.")
    val_ratio: float = Field(0.15, ge=0, lt=1, description="When no split is given: iterative stratification.")
    test_ratio: float = Field(0.15, ge=0, lt=1)
    seed: int = 42
    image_size: int = Field(64, ge=8, description="Images are resized to image_size x image_size.")
    augment: AugmentConfig = AugmentConfig()


class MultilabelModelConfig(Section):
    backbone: str = Field(
        "wordllama",
        description="Images: resnet18, resnet50, resnet152 (simlab.models.images.IMAGE_BACKBONES) or a saved "
        "ResNet folder; text: any model.name of the encoder registry (wordllama, a folder, a hub name).",
    )
    pretrained: bool = Field(False, description="Images: load the hub weights (microsoft/resnet-*); needs the hub.")
    freeze: bool = Field(False, description="Train the head only.")
    head: Literal["linear", "mlp"] = "linear"
    hidden: int = Field(256, ge=1, description="mlp head: hidden units.")
    dropout: float = Field(0.0, ge=0, lt=1)
    max_length: int = Field(128, gt=0, description="Text: max tokens.")


class MultilabelLossConfig(Section):
    name: Literal["bce", "weighted_bce", "focal", "soft_bce"] = Field(
        "bce", description="See simlab.training.multilabel_losses.LOSSES."
    )
    alpha: float = Field(0.25, le=1, description="focal: weight of positives; negative disables it.")
    gamma: float = Field(2.0, ge=0, description="focal: focusing exponent.")
    max_pos_weight: float | None = Field(None, gt=0, description="weighted_bce: cap on (1 - prior) / prior.")


class MultilabelTrainConfig(Resumable):
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only.")
    weight_decay: float = Field(0.0, ge=0)
    sparse_grads: bool = Field(True, description=SPARSE_GRADS)
    best_by: Literal["ap", "f1_micro", "f1_macro", "loss"] = Field(
        "ap", description="Val metric that picks the best epoch (its weights are tested)."
    )
    max_steps: int | None = Field(None, ge=1, description="Stop each epoch after this many batches (smoke tests).")
    seed: int = 42


class ThresholdsConfig(Section):
    mode: Literal["global", "per_label", "fixed"] = Field(
        "per_label",
        description="per_label: one per label with min_positives val positives, global for the rest; "
        "global: one threshold tuned on val; fixed: `value`.",
    )
    value: float = Field(0.5, gt=0, lt=1, description="fixed: the threshold.")
    tune_by: Literal["f1_micro", "f1_macro"] = Field("f1_micro", description="global: the val metric maximised.")
    min_positives: int = Field(5, ge=1, description="per_label: val positives a label needs for its own threshold.")
