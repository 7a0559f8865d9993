"""`simlab run` for `task: multilabel`: texts or images with several labels each (workload D).

Stages: read the items and split them (`simlab.data.multilabel`); build the backbone + head
(`simlab.models.multilabel`) and the loss; train with val every epoch and keep the best epoch
(`simlab.training.multilabel`); score val and test once with the best weights; tune the
thresholds on val (`thresholds.mode`) and apply them, frozen, to test. A reference system,
`prior`, scores every item with the train frequency of each label and goes through the same
thresholds, so a single run already has a baseline for `simlab compare`.

The run folder holds, besides the common files: `per_label.json` (system -> label ->
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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simlab import fsutil
from simlab.config import MultilabelConfig
from simlab.errors import ConfigError, RunFolderError
from simlab.experiments.runner import RunSummary, write_summary

ITEM_METRICS = ("sample_f1", "exact_match", "label_accuracy", "tp", "fp", "fn")


@dataclass
class MultilabelSummary(RunSummary):
    """A `RunSummary` with what a multi-label report shows besides the metrics."""

    val_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    per_label: dict[str, dict[str, dict]] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, dict[str, float]] | None = None
    baseline_path: str | None = None
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
    return json.loads(metrics_file.read_text(encoding="utf-8"))


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
        thr = tune_thresholds(y_val, s_val, cfg.mode, cfg.tune_by)
    return thr, multilabel_metrics(y_val, s_val, thr), multilabel_metrics(y_test, s_test, thr)


def _inputs(cfg: MultilabelConfig, items):
    if items.kind == "text":
        return list(items.inputs)
    from simlab.data.multilabel import load_images

    return load_images(items.inputs, cfg.data.image_size)


def run_multilabel(cfg: MultilabelConfig, out: Path, overwrite: bool = False) -> MultilabelSummary:
    """Run a multi-label experiment into `out`; see the module docstring."""
    import torch

    from simlab.data.multilabel import make_splits, read_items
    from simlab.evaluation.multilabel import item_scores, per_label_table, predict
    from simlab.experiments.plots import learning_curves
    from simlab.models.multilabel import build_model, info_of
    from simlab.training.multilabel import peak_memory_mb, predict_logits, train_multilabel
    from simlab.training.multilabel_losses import build_loss

    out = Path(out)
    if out.exists() and not overwrite:
        raise RunFolderError(f"{out} already exists; choose another --out or pass --overwrite")
    baseline = read_baseline(cfg.baseline) if cfg.baseline else None
    t0 = time.perf_counter()
    splits = make_splits(read_items(cfg.data), cfg.data)
    kind = splits.train.kind
    if kind == "text" and (cfg.data.augment.flip or cfg.data.augment.crop_padding):
        raise ConfigError("data.augment applies to images; the data are texts (remove data.augment)")
    summary = MultilabelSummary(folder=out, config=cfg, labels=splits.vocab, baseline_path=cfg.baseline)
    summary.baseline_metrics = baseline
    summary.notes += splits.notes
    y = {s: splits[s].targets(splits.vocab) for s in ("train", "val", "test")}
    inputs = {s: _inputs(cfg, splits[s]) for s in ("train", "val", "test")}
    if splits.train.soft and cfg.loss.name != "soft_bce":
        summary.notes.append(
            f"The labels are soft; loss {cfg.loss.name} counts a label from probability 0.5 up (soft_bce learns "
            "the probabilities). Metrics always count a label from 0.5 up."
        )
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, kind, len(splits.vocab))
    loss_fn = build_loss(cfg.loss, y["train"])
    if cfg.loss.name == "weighted_bce":
        weights = ", ".join(f"{lab} {w:.2f}" for lab, w in zip(splits.vocab, loss_fn.pos_weight.tolist()))
        summary.notes.append(f"weighted_bce pos_weight = (1 - prior) / prior from train: {weights}.")
    n_params, n_trainable = model.n_parameters()
    result = train_multilabel(
        model,
        inputs["train"],
        y["train"],
        inputs["val"],
        y["val"],
        loss_fn,
        cfg.train,
        cfg.scheduler,
        cfg.data.augment if kind == "image" else None,
    )
    summary.history = result.history
    scores = {s: torch.sigmoid(predict_logits(model, inputs[s])).numpy() for s in ("val", "test")}
    prior = (y["train"] >= 0.5).mean(0)
    systems = {
        "prior": {s: np.tile(prior, (len(y[s]), 1)) for s in ("val", "test")},
        "trained": scores,
    }
    rows = ["system\tquery_id\tmetric\tvalue\n"]
    thresholds: dict[str, list[float]] = {}
    for name, sc in systems.items():
        thr, val_m, test_m = frozen_threshold_eval(y["val"], sc["val"], y["test"], sc["test"], cfg.thresholds)
        thresholds[name] = thr.tolist()
        summary.metrics[name] = test_m | {"threshold": float(np.mean(thr))} | {f"val_{k}": v for k, v in val_m.items()}
        summary.val_metrics[name] = val_m
        summary.per_label[name] = per_label_table(y["test"] >= 0.5, sc["test"], thr, splits.vocab)
        per_item = item_scores(y["test"] >= 0.5, predict(sc["test"], thr))
        for i, item_id in enumerate(splits.test.ids):
            rows += [f"{name}\t{item_id}\t{m}\t{per_item[m][i]:.6f}\n" for m in ITEM_METRICS]
    epochs = len(result.epoch_seconds)
    summary.cost = {
        "parameters": n_params,
        "trainable_parameters": n_trainable,
        "train_seconds": round(result.seconds, 2),
        "seconds_per_epoch": round(result.seconds / max(epochs, 1), 2),
        "peak_memory_mb": round(peak_memory_mb(), 1),
    }
    summary.n_test_queries = len(splits.test)
    thr_text = (
        f"fixed at {cfg.thresholds.value}"
        if cfg.thresholds.mode == "fixed"
        else f"{cfg.thresholds.mode.replace('_', '-')} threshold(s) tuned on val, frozen for test"
    )
    summary.notes.append(
        f"Best epoch by val {cfg.train.best_by}: {result.best_epoch} of {epochs}; test scored once with its "
        f"weights; {thr_text}. `prior` scores every item with the train frequency of each label."
    )
    with fsutil.staged_dir(out, overwrite=overwrite) as tmp:
        fsutil.write_text(tmp / "config.yaml", cfg.to_yaml())
        fsutil.write_text(tmp / "history.jsonl", "".join(json.dumps(h) + "\n" for h in summary.history))
        learning_curves(summary.history, tmp / "curves.png", cfg.train.best_by, prefix="val")
        fsutil.write_text(tmp / "perquery.tsv", "".join(rows))
        fsutil.write_json(tmp / "per_label.json", summary.per_label)
        fsutil.write_json(tmp / "thresholds.json", {s: dict(zip(splits.vocab, t)) for s, t in thresholds.items()})
        fsutil.write_json(tmp / "cost.json", summary.cost)
        model.save(tmp / "model", splits.vocab, np.array(thresholds["trained"]), info_of(cfg))
        summary.seconds = time.perf_counter() - t0
        write_summary(tmp, summary, n_test_items=len(splits.test), cost=summary.cost, baseline=cfg.baseline)
    if cfg.tracking.mlflow:
        from simlab.experiments.tracking import log_run

        log_run(summary)
    return summary
