"""The experiment config: a typed schema, validated at the edge.

`load_config(path, overrides)` reads a YAML file, applies `--set dotted.key=value`
overrides, and validates the result against the task's schema (`TASKS`). Any problem (an
unknown field, a wrong type, a value outside the allowed set) raises one `ConfigError` naming
the file, the dotted field and what is allowed, before any work starts. The resolved config
(`to_yaml`) is written into every run folder. `load_sweep` does the same for a config with
sweep axes (`--set train.epochs=[1,2]`): one validated config per grid point.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simlab.errors import ConfigError

METRIC_CHOICES = "ndcg@k, mrr@k, recall@k, precision@k, map, map@k"


class Section(BaseModel):
    """Base of every config block: unknown fields are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    path: str = Field("examples/demo", description="Collection folder: BEIR, MS MARCO TSV or raw Glasgow.")
    train_split: str = Field("train", description="Qrels split for training pairs; missing -> corpus pairs.")
    dev_split: str = Field("dev", description="Qrels split evaluated every epoch; missing -> held-out pairs.")
    test_split: str = Field("test", description="Qrels split of the final evaluation table.")
    max_train_pairs: int | None = Field(None, gt=0, description="Cap on training pairs (sampled with seed).")
    triples: str | None = Field(
        None,
        description="model.kind sparse: training triples `query<TAB>positive<TAB>negative` (MS MARCO triples "
        "TSV), relative to data.path; default: pairs from qrels/corpus with train.hard_negatives.",
    )


class ScratchMLMConfig(Section):
    """`model.name: bert-mlm-scratch`: a random BERT-MLM with a WordPiece vocabulary trained on the corpus."""

    vocab_size: int = Field(8000, ge=100)
    hidden_size: int = Field(128, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    seed: int = 0


class SparseModelConfig(Section):
    """`model.kind: sparse` (SPLADE) options."""

    mask: list[Literal["punctuation", "special", "unused", "stopwords"]] = Field(
        [], description="Vocabulary ids zeroed in every sparse vector, in training and at inference."
    )
    stopwords: list[str] | None = Field(None, description="The 'stopwords' mask list; default: English (bm25s).")
    inference_free: bool = Field(
        False, description="Queries by a static per-token weight (SparseStaticEmbedding), documents by SPLADE."
    )
    pooling: Literal["max", "sum"] = "max"
    scratch: ScratchMLMConfig = ScratchMLMConfig()
    quantize: bool = Field(
        False,
        description="Encode for evaluation, search and inspect with int8 dynamically quantized Linear layers "
        "(CPU; several times faster for a BERT-base query); training and the saved model stay float32.",
    )


class ModelConfig(Section):
    name: str = Field("wordllama", description="'wordllama', a hub model name, or a local model folder.")
    kind: Literal["dense", "sparse"] = Field("dense", description="dense bi-encoder, or sparse (SPLADE).")
    sparse: SparseModelConfig = SparseModelConfig()
    towers: Literal["shared", "separate"] = "shared"
    pooling: Literal["mean", "cls"] = Field("mean", description="Used when building from a plain HF model.")
    normalize: bool = True
    max_length: int = Field(256, gt=0)


class HardNegativesConfig(Section):
    source: Literal["none", "bm25", "model"] = "none"
    num: int = Field(1, ge=1, le=16, description="Hard negatives per training pair.")
    range_min: int = Field(0, ge=0, description="Skip this many top candidates (likely false negatives).")
    range_max: int = Field(50, ge=1, description="Sample from the top range_max candidates.")
    margin: float | None = Field(None, description="Model mining: negative must score below positive - margin.")


# ----- schedulers (shared: any task's training loop can take a `scheduler:` section) ----------


class SchedulerConfig(Section):
    """The learning-rate schedule; built by `simlab.training.schedulers.build_scheduler`.

    `exponential` multiplies the rate by `gamma` after every epoch (torch ExponentialLR);
    `warmup_cosine` / `warmup_linear` warm up linearly over `warmup_ratio` of the steps, then
    decay along a cosine / a line to 0, stepped every batch; `plateau` multiplies it by
    `factor` when the val metric has not improved for `patience` epochs (ReduceLROnPlateau);
    `constant` keeps it. The same section serves every task: `train.scheduler` of retrieval
    and pairs (on the Hugging Face trainer, `trainer_schedule`), `scheduler` of multilabel.
    """

    name: Literal["constant", "exponential", "warmup_cosine", "warmup_linear", "plateau"] = "exponential"
    gamma: float = Field(0.9, gt=0, le=1, description="exponential: rate factor per epoch.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="warmup_*: share of steps spent warming up.")
    patience: int = Field(2, ge=0, description="plateau: epochs without val improvement before reducing.")
    factor: float = Field(0.5, gt=0, lt=1, description="plateau: rate factor on a plateau.")
    min_lr: float = Field(0.0, ge=0, description="plateau: lower bound of the rate.")


class SpladeTrainConfig(Section):
    """`model.kind: sparse` training: SpladeLoss = in-batch ranking loss + FLOPS regularisers."""

    query_regularizer_weight: float = Field(5e-5, ge=0, description="FLOPS weight of the query vectors.")
    document_regularizer_weight: float = Field(3e-5, ge=0, description="FLOPS weight of the document vectors.")
    regularizer_warmup_ratio: float = Field(
        1 / 3, gt=0, le=1, description="Share of the steps over which the FLOPS weights grow from 0 to their value."
    )
    regularizer_schedule: Literal["quadratic", "linear"] = "quadratic"
    freeze_encoder: bool = Field(False, description="Train only the vocabulary (MLM) head; the encoder is frozen.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    log_every: int = Field(50, ge=1, description="Progress line every N optimiser steps.")


class TrainConfig(Section):
    enabled: bool = True
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=2)
    learning_rate: float = Field(0.05, gt=0)
    scheduler: SchedulerConfig = SchedulerConfig(name="warmup_cosine")
    seed: int = 42
    best_metric: str = Field("ndcg@10", description=f"Dev metric that picks the best epoch ({METRIC_CHOICES}).")
    hard_negatives: HardNegativesConfig = HardNegativesConfig()
    splade: SpladeTrainConfig = SpladeTrainConfig()
    report_to: list[str] = Field(
        [], description="Trainer integrations besides simlab's own MLflow run: tensorboard, wandb, clearml, ..."
    )


class HNSWConfig(Section):
    m: int = Field(32, ge=4)
    ef_construction: int = Field(120, ge=8)
    ef_search: int = Field(128, ge=1)


class IVFConfig(Section):
    nlist: int | None = Field(None, ge=1, description="Default: about 4 * sqrt(n_docs).")
    nprobe: int = Field(32, ge=1)
    min_docs: int = Field(10_000, ge=1, description="Build IVF only for corpora at least this large.")


class SeismicConfig(Section):
    """pyseismic-lsr's build and search parameters (model.kind: sparse)."""

    n_postings: int = Field(3500, ge=1, description="Average postings kept per term.")
    centroid_fraction: float = Field(0.1, gt=0, le=1)
    summary_energy: float = Field(0.4, gt=0, le=1)
    query_cut: int = Field(10, ge=1, description="Query terms scanned (the heaviest).")
    heap_factor: float = Field(0.7, gt=0, le=1)


class IndexConfig(Section):
    approximate: list[Literal["hnsw", "ivf"]] = ["hnsw", "ivf"]
    hnsw: HNSWConfig = HNSWConfig()
    ivf: IVFConfig = IVFConfig()
    sparse_approximate: list[Literal["seismic"]] = Field(["seismic"], description="model.kind: sparse.")
    seismic: SeismicConfig = SeismicConfig()


class EvalConfig(Section):
    metrics: list[str] = ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map"]
    k: int = Field(100, ge=1, description="Depth of every ranked list.")
    systems: list[Literal["bm25", "zeroshot", "trained", "hybrid"]] = [
        "bm25",
        "zeroshot",
        "trained",
        "hybrid",
    ]
    rrf_k: int = Field(60, ge=1)


class TrackingConfig(Section):
    mlflow: bool = True
    uri: str = Field("sqlite:///mlflow.db", description="MLflow tracking URI.")
    experiment: str = "simlab"


class Experiment(Section):
    """Fields every task shares; each task adds its own sections."""

    name: str = "experiment"
    tracking: TrackingConfig = TrackingConfig()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


class ExperimentConfig(Experiment):
    """`task: retrieval`: dense retrieval against BM25, exact and approximate (workload E)."""

    task: Literal["retrieval"] = "retrieval"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    index: IndexConfig = IndexConfig()
    eval: EvalConfig = EvalConfig()


# ----- task: pairs (workload A) ---------------------------------------------------------------


class PairsDataConfig(Section):
    path: str = Field(..., description="DeepMatcher folder (tableA/tableB + pair files) or a records file.")
    fields: list[str] | None = Field(None, description="Text fields of a record; default: all but the id.")
    id_field: str = "id"
    group_field: str = Field("group", description="Group column of a records file (records of a group match).")
    image_field: str | None = Field(
        None, description="Column of image paths (relative to the records file), encoded by model.image's tower."
    )
    val_ratio: float = Field(0.1, ge=0, lt=1)
    test_ratio: float = Field(0.1, ge=0, lt=1)
    seed: int = 42
    senses: str | None = Field(
        None,
        description="Open English WordNet folder: a sense inventory; a head run adds the `senses` system "
        "(cosine to the definition minus the best other sense of the word; simlab.data.senses).",
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
    layers: str | None = Field(
        None,
        pattern=r"^last[1-9][0-9]*_(sum|mean)$",
        description="Token vectors = sum or mean of the last k hidden layers, e.g. last4_sum (transformer "
        "models only; see simlab.models.context_pooling).",
    )
    pooling_scope: Literal["sentence", "target", "window"] = Field(
        "sentence",
        description="Pool all tokens, only the target word's tokens, or the tokens within `window` of the target "
        "(contexts with a target span; other texts pool all tokens). Needs a `head` block.",
    )
    window: int = Field(5, ge=0, description="pooling_scope: window: tokens on each side of the target.")

    @model_validator(mode="after")
    def _layers_need_a_transformer(self):
        from simlab.models import STATIC_MODELS

        if self.layers and (self.preload or self.name) in STATIC_MODELS:
            raise ValueError(
                f"model.layers: {self.layers} sums hidden layers, but {self.preload or self.name!r} is a static "
                "embedding (one table of token vectors, no layers); set model.layers: null (pooling_scope: window "
                "pools around the target word for static models too), or model.name: a local transformers folder"
            )
        return self


class PairTrainConfig(Section):
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(64, ge=2)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only.")
    weight_decay: float = Field(0.0, ge=0)
    scheduler: SchedulerConfig = SchedulerConfig(name="plateau")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    loss: Literal["contrastive", "online_contrastive", "cosent"] = Field(
        "contrastive", description="sentence-transformers pair loss (see simlab.training.pairs.LOSSES)."
    )
    margin: float = Field(0.5, gt=0, description="Contrastive loss margin on the distance.")
    distance: Literal["cosine", "euclidean"] = "cosine"
    best_by: Literal["f1", "pos_acc", "accuracy"] = "f1"
    threshold_by: Literal["f1", "accuracy"] = Field(
        "f1", description="The val-tuned threshold maximises this (then frozen for test)."
    )
    save_every: int | None = Field(None, ge=1, description="Also keep the model every N epochs.")
    report_to: list[str] = Field(
        [], description="Trainer integrations besides simlab's own MLflow run: tensorboard, wandb, clearml, ..."
    )
    resume: bool | str = Field(
        False,
        description="true: continue from the last checkpoint an interrupted run to the same --out left; "
        "or a trainer checkpoint folder.",
    )
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


class PairsConfig(Experiment):
    """`task: pairs`: a siamese matcher with a threshold tuned on val and frozen for test (workload A), or, with
    a `head` block, an example-vs-definition classifier (workload B)."""

    task: Literal["pairs"] = "pairs"
    data: PairsDataConfig
    sampling: PairSamplingConfig = PairSamplingConfig()
    model: PairModelConfig = PairModelConfig()
    train: PairTrainConfig = PairTrainConfig()
    head: HeadConfig | None = None
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _definition_options_need_a_head(self):
        used = [
            name
            for name, on in (
                ("synthetic.replace_share", self.synthetic.replace_share > 0),
                ("synthetic.swap_share", self.synthetic.swap_share > 0),
                (f"model.pooling_scope: {self.model.pooling_scope}", self.model.pooling_scope != "sentence"),
            )
            if on
        ]
        if used and self.head is None:
            raise ValueError(
                f"{', '.join(used)} need a head block (head: {{kind: mlp}}): they are options of "
                "example-vs-definition matching"
            )
        return self


TASKS: dict[str, type[Experiment]] = {"retrieval": ExperimentConfig, "pairs": PairsConfig}


# ----- task: multilabel (workload D) ------------------------------------------------------------


class AugmentConfig(Section):
    flip: bool = Field(False, description="Random horizontal flip (off for digits and text-like images).")
    crop_padding: int = Field(0, ge=0, description="Pad by this many pixels, then crop back at a random offset.")


class MultilabelDataConfig(Section):
    path: str = Field(
        ...,
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


class MultilabelTrainConfig(Section):
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only.")
    weight_decay: float = Field(0.0, ge=0)
    best_by: Literal["ap", "f1_micro", "f1_macro", "loss"] = Field(
        "ap", description="Val metric that picks the best epoch (its weights are tested)."
    )
    max_steps: int | None = Field(None, ge=1, description="Stop each epoch after this many batches (smoke tests).")
    seed: int = 42


class ThresholdsConfig(Section):
    mode: Literal["global", "per_label", "fixed"] = Field(
        "global", description="global: one threshold tuned on val; per_label: one per label; fixed: `value`."
    )
    value: float = Field(0.5, gt=0, lt=1, description="fixed: the threshold.")
    tune_by: Literal["f1_micro", "f1_macro"] = Field("f1_micro", description="global: the val metric maximised.")


class MultilabelConfig(Experiment):
    """`task: multilabel`: texts or images with several labels each (workload D)."""

    task: Literal["multilabel"] = "multilabel"
    data: MultilabelDataConfig
    model: MultilabelModelConfig = MultilabelModelConfig()
    loss: MultilabelLossConfig = MultilabelLossConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    train: MultilabelTrainConfig = MultilabelTrainConfig()
    thresholds: ThresholdsConfig = ThresholdsConfig()
    baseline: str | None = Field(None, description="A multilabel run folder: every metric gets its delta to it.")


TASKS["multilabel"] = MultilabelConfig


def _fields_of(model: type[BaseModel], loc: tuple) -> list[str]:
    """Valid field names at `loc` (the parent of a rejected key), for the error message."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        inner = [a for a in typing.get_args(field.annotation) or (field.annotation,) if isinstance(a, type)]
        sub = next((a for a in inner if issubclass(a, BaseModel)), None)
        if sub is None:
            return []
        model = sub
    return sorted(model.model_fields)


def _format_error(source: str, err: ValidationError, schema: type[BaseModel]) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            valid = _fields_of(schema, loc[:-1])
            lines.append(f"{source}: {dotted}: unknown field; valid fields here: {', '.join(valid)}")
        else:
            got = e.get("input")
            got_text = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"{source}: {dotted}: {e['msg']}{got_text}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into (["a", "b", "c"], value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected dotted.key=value, e.g. --set train.epochs=2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc.problem})") from None
    return key.strip().split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Return a copy of `raw` with each `dotted.key=value` set (intermediate mappings created)."""
    import copy

    out = copy.deepcopy(raw)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for i, k in enumerate(keys[:-1]):
            child = node.setdefault(k, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(keys[: i + 1])} is a value, not a section")
            node = child
        node[keys[-1]] = value
    return out


def _read_raw(path: str | Path | None, overrides: list[str]) -> tuple[str, dict]:
    """The config file as a plain dict with the overrides applied, and its name for messages."""
    raw: dict = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections (data:, model:, ...)")
    return source, apply_overrides(raw, list(overrides))


def _schema_of(source: str, raw: dict) -> type[Experiment]:
    task = raw.get("task", "retrieval")
    if not isinstance(task, str) or task not in TASKS:
        hint = " (a sweep runs one task)" if isinstance(task, list) else ""
        raise ConfigError(f"{source}: task: {task!r} is not a task{hint}; choose one of: {', '.join(sorted(TASKS))}")
    return TASKS[task]


def _validate(source: str, raw: dict, schema: type[Experiment]) -> Experiment:
    try:
        cfg = schema.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err, schema)) from None
    if isinstance(cfg, ExperimentConfig):
        _check_metrics(source, cfg)
    return cfg


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Experiment:
    """Read, override and validate an experiment config; raise `ConfigError` on any problem.

    A config with sweep axes (a list where a value belongs) is refused here: see `load_sweep`.
    """
    from simlab.experiments.sweep import sweep_axes

    source, raw = _read_raw(path, overrides)
    schema = _schema_of(source, raw)
    axes = sweep_axes(raw, schema)
    if axes:
        raise ConfigError(
            f"{source}: {', '.join(axes)}: a list of values makes this config a sweep; "
            "run it with `simlab run` (library: load_sweep + run_sweep) or give one value"
        )
    return _validate(source, raw, schema)


def load_sweep(path: str | Path | None, overrides: list[str] = ()) -> list[tuple[str, Experiment]]:
    """Read, override, expand and validate a config that may be a sweep.

    Every grid point is validated like a single config before this returns, so a bad value
    anywhere fails before any run starts; its message names the file, the grid point and
    the dotted field (`exp.yaml [batch_size=1]: train.batch_size: ...`).

    Returns:
        (run name, config) per grid point, in the order of `simlab.experiments.sweep.expand`;
        a config without sweep axes gives one item named "".

    Raises:
        ConfigError: as `load_config`, for any grid point, or an empty or duplicated sweep value.
    """
    from simlab.experiments.sweep import expand

    source, raw = _read_raw(path, overrides)
    schema = _schema_of(source, raw)
    try:
        points = expand(raw, schema)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return [(name, _validate(f"{source} [{name}]" if name else source, point, schema)) for name, point in points]


def _check_metrics(source: str, cfg: ExperimentConfig) -> None:
    from simlab.evaluation.metrics import parse_metric

    for field, names in (("eval.metrics", cfg.eval.metrics), ("train.best_metric", [cfg.train.best_metric])):
        for name in names:
            try:
                parse_metric(name)
            except ConfigError as exc:
                raise ConfigError(f"{source}: {field}: {exc}") from None
