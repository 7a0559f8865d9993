"""The stages of a multi-label run: texts or images with several labels each (workload D).

Stages: read the items and split them (`simlab.data.multilabel`); build the backbone + head
(`simlab.models.multilabel`) and the loss; train with val every epoch and keep the best epoch
(`simlab.training.multilabel`); score val and test once with the best weights; tune the
thresholds on val (`thresholds.mode`) and apply them, frozen, to test. Reference systems go
through the same thresholds, so a single run already has baselines for `simlab compare`: `prior`
scores every item with the train frequency of each label; for texts, `tfidf` is TF-IDF + a linear
SVM per label (`simlab.models.tfidf`).

The run folder holds, besides the common files of the run skeleton: `per_label.json` (system -> label ->
precision, recall, F1, AP, support, threshold on test), `thresholds.json`, `cost.json`
(parameters, seconds per epoch and in total, peak memory), and perquery.tsv rows per test
item: `sample_f1`, `exact_match`, `label_accuracy` (1 - the item's hamming loss; the three are
higher-is-better, as `simlab compare` counts wins) and the item's `tp`, `fp`, `fn` over its labels,
from which `simlab compare` computes micro F1, precision and recall and tests them by resampling
items. With `baseline: RUN_DIR`, report.md gives every metric its delta against that run, in the
seed's form `f1_micro: 0.59 (+0.02)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simlab import fsutil
from simlab.errors import ConfigError, RunFolderError
from simlab.evaluation.multilabel import ITEM_METRICS
from simlab.tasks.base import RunSummary
from simlab.tasks.multilabel.config import MultilabelConfig
from simlab.tasks.skeleton import checkpoint_dir, note_resume


@dataclass
class MultilabelSummary(RunSummary):
    """A `RunSummary` with what a multi-label report shows besides the metrics."""

    val_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    per_label: dict[str, dict[str, dict]] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, dict[str, float]] | None = None
    labels: list[str] = field(default_factory=list)


def read_baseline(path: str) -> dict[str, dict[str, float]]:
    """metrics.json of a finished multilabel run folder.

    Raises:
        RunFolderError: not a run folder, another task's run, or no metrics.json.
    """
    folder = Path(path)
    meta_file, metrics_file = folder / "meta.json", folder / "metrics.json"
    if not meta_file.is_file() or not metrics_file.is_file():
        raise RunFolderError(
            f"baseline: {folder} is not a finished run folder (no meta.json/metrics.json); give the --out "
            "folder of an earlier `simlab run` of a multilabel config."
        )
    task = json.loads(meta_file.read_text(encoding="utf-8")).get("task")
    if task != "multilabel":
        raise RunFolderError(f"baseline: {folder} is a {task!r} run; a multilabel run needs a multilabel baseline.")
    from simlab.tasks.skeleton import read_metrics

    return read_metrics(metrics_file)[0]


def frozen_threshold_eval(
    y_val: np.ndarray, s_val: np.ndarray, y_test: np.ndarray, s_test: np.ndarray, cfg
) -> tuple[np.ndarray, dict[str, float], dict[str, float]]:
    """Thresholds tuned on val (or fixed) and the val and test metrics at those same thresholds.

    Returns:
        (thresholds (L,), val metrics, test metrics).
    """
    from simlab.evaluation.multilabel import multilabel_metrics, tune_thresholds

    y_val, y_test = y_val >= 0.5, y_test >= 0.5
    if cfg.mode == "fixed":
        thr = np.full(y_val.shape[1], cfg.value)
    else:
        thr = tune_thresholds(y_val, s_val, cfg.mode, cfg.tune_by, cfg.min_positives)
    return thr, multilabel_metrics(y_val, s_val, thr), multilabel_metrics(y_test, s_test, thr)


def _inputs(cfg: MultilabelConfig, items):
    if items.kind == "text":
        return list(items.inputs)
    from simlab.data.multilabel import load_images

    return load_images(items.inputs, cfg.data.image_size)


def _train(cfg: MultilabelConfig, splits, y, inputs, summary):
    """Build the model and loss, train with val every epoch; returns (model, train result)."""
    import torch

    from simlab.models.multilabel import build_model
    from simlab.training.multilabel import train_multilabel
    from simlab.training.multilabel_losses import build_loss

    torch.manual_seed(cfg.train.seed)
    kind = splits.train.kind
    model = build_model(cfg, kind, len(splits.vocab))
    loss_fn = build_loss(cfg.loss, y["train"])
    if cfg.loss.name == "weighted_bce":
        weights = ", ".join(f"{lab} {w:.2f}" for lab, w in zip(splits.vocab, loss_fn.pos_weight.tolist()))
        summary.notes.append(f"weighted_bce pos_weight = (1 - prior) / prior from train: {weights}.")
    augment = cfg.data.augment if kind == "image" else None
    args = (inputs["train"], y["train"], inputs["val"], y["val"], loss_fn, cfg.train, cfg.scheduler, augment)
    return model, train_multilabel(model, *args, work_dir=checkpoint_dir(summary.folder))


def _score_systems(cfg: MultilabelConfig, systems: dict, y: dict, test_ids, vocab, summary) -> dict[str, list[float]]:
    """Every system's thresholds (tuned on val, frozen), test metrics, per-label table and per-item rows."""
    from simlab.evaluation.multilabel import item_scores, per_label_table, predict

    thresholds: dict[str, list[float]] = {}
    for name, sc in systems.items():
        thr, val_m, test_m = frozen_threshold_eval(y["val"], sc["val"], y["test"], sc["test"], cfg.thresholds)
        thresholds[name] = thr.tolist()
        summary.metrics[name] = test_m | {"threshold": float(np.mean(thr))} | {f"val_{k}": v for k, v in val_m.items()}
        summary.val_metrics[name] = val_m
        summary.per_label[name] = per_label_table(y["test"] >= 0.5, sc["test"], thr, vocab)
        per_item = item_scores(y["test"] >= 0.5, predict(sc["test"], thr))
        summary.add_items(name, list(test_ids), {m: list(per_item[m]) for m in ITEM_METRICS})
    return thresholds


def run(cfg: MultilabelConfig, summary: MultilabelSummary, folder: Path) -> None:
    """All stages into the staging `folder` (see the module docstring)."""
    import torch

    from simlab.data.multilabel import make_splits, read_items
    from simlab.models.multilabel import info_of
    from simlab.training.multilabel import peak_memory_mb, predict_logits

    summary.baseline_metrics = read_baseline(cfg.baseline) if cfg.baseline else None
    splits = make_splits(read_items(cfg.data), cfg.data)
    if splits.train.kind == "text" and (cfg.data.augment.flip or cfg.data.augment.crop_padding):
        raise ConfigError("data.augment applies to images; the data are texts (remove data.augment)")
    summary.labels, summary.notes = splits.vocab, summary.notes + splits.notes
    y = {s: splits[s].targets(splits.vocab) for s in ("train", "val", "test")}
    inputs = {s: _inputs(cfg, splits[s]) for s in ("train", "val", "test")}
    if splits.train.soft and cfg.loss.name != "soft_bce":
        summary.notes.append(
            f"The labels are soft; loss {cfg.loss.name} counts a label from probability 0.5 up (soft_bce learns "
            "the probabilities). Metrics always count a label from 0.5 up."
        )
    model, result = _train(cfg, splits, y, inputs, summary)
    summary.history = result.history
    note_resume(result, summary)
    scores = {s: torch.sigmoid(predict_logits(model, inputs[s])).numpy() for s in ("val", "test")}
    prior = (y["train"] >= 0.5).mean(0)
    systems = {"prior": {s: np.tile(prior, (len(y[s]), 1)) for s in ("val", "test")}}
    if splits.train.kind == "text":
        from simlab.models.tfidf import tfidf_svm_scores

        systems["tfidf"] = tfidf_svm_scores(inputs["train"], y["train"], {s: inputs[s] for s in ("val", "test")})
    systems["trained"] = scores
    thresholds = _score_systems(cfg, systems, y, splits.test.ids, splits.vocab, summary)
    n_params, n_trainable = model.n_parameters()
    epochs = len(result.epoch_seconds)
    summary.cost = {
        "parameters": n_params,
        "trainable_parameters": n_trainable,
        "train_seconds": round(result.seconds, 2),
        "seconds_per_epoch": round(result.seconds / max(epochs, 1), 2),
        "peak_memory_mb": round(peak_memory_mb(), 1),
    }
    summary.n_test = len(splits.test)
    thr_text = (
        f"fixed at {cfg.thresholds.value}"
        if cfg.thresholds.mode == "fixed"
        else f"{cfg.thresholds.mode.replace('_', '-')} threshold(s) tuned on val, frozen for test"
    )
    summary.notes.append(
        f"Best epoch by val {cfg.train.best_by}: {result.best_epoch} of {epochs}; test scored once with its "
        f"weights; {thr_text}. `prior` scores every item with the train frequency of each label; `tfidf` (texts) is "
        "TF-IDF + a linear SVM per label (scikit-learn), fitted on train."
    )
    summary.meta |= {"cost": summary.cost, "baseline": cfg.baseline}
    fsutil.write_json(folder / "per_label.json", summary.per_label)
    fsutil.write_json(folder / "thresholds.json", {s: dict(zip(splits.vocab, t)) for s, t in thresholds.items()})
    fsutil.write_json(folder / "cost.json", summary.cost)
    model.save(folder / "model", splits.vocab, np.array(thresholds["trained"]), info_of(cfg))
