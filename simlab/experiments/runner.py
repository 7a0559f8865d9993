"""`simlab run`: one config in, one run folder out.

Stages, in order: load and check the collection, BM25, the pretrained model zero-shot,
training, the trained model, the hybrid, evaluation of every system on the same test
queries, the report. Everything is written into a staged folder that becomes the run
folder only when all stages succeeded, so a failed run leaves nothing behind. Tracking
(MLflow) happens last, from the finished folder.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from simlab import distributed, fsutil
from simlab.config import ExperimentConfig
from simlab.errors import ConfigError, RunFolderError
from simlab.records import Collection, Queries, Run

log = logging.getLogger("simlab")

RUN_FORMAT = {"format": "simlab.run", "format_version": 1}


def write_summary(folder: Path, summary: RunSummary, **meta) -> None:
    """The files every finished run has, whatever its task: metrics.json, meta.json, report.md."""
    from simlab.experiments.report import render_markdown

    cfg = summary.config
    fsutil.write_json(folder / "metrics.json", summary.metrics)
    fsutil.write_json(
        folder / "meta.json",
        RUN_FORMAT
        | {"name": cfg.name, "task": cfg.task, "data": str(Path(cfg.data.path).resolve())}
        | meta
        | {"seconds": round(summary.seconds, 2), "notes": summary.notes},
    )
    fsutil.write_text(folder / "report.md", render_markdown(summary))


def checkpoint_dir(out: Path) -> Path:
    """Where the trainer checkpoints a run to `out`: beside it, so they outlive a failed or
    interrupted run (which leaves no run folder) and `train.resume: true` can continue; a
    finished run deletes them."""
    return out.parent / f".{out.name}.checkpoints"


@dataclass
class RunSummary:
    """What a run produced, as written to the run folder; `report.md` renders it."""

    folder: Path
    config: ExperimentConfig
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    speed: dict[str, dict[str, float]] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_test_queries: int = 0
    seconds: float = 0.0


def _test_queries(collection: Collection, split: str) -> tuple[Queries, object]:
    if split not in collection.qrels:
        raise ConfigError(
            f"data.test_split: '{split}' is not a qrels split of {collection.name} "
            f"(found: {', '.join(sorted(collection.qrels)) or 'none'})"
        )
    qrels = collection.qrels[split]
    queries = collection.queries.subset(qrels.query_ids())
    if not len(queries):
        raise ConfigError(f"data.test_split: '{split}' of {collection.name} has no query with a relevant document")
    return queries, qrels


def _train(
    cfg: ExperimentConfig,
    collection: Collection,
    folder: Path | None,
    summary: RunSummary,
    work_dir: Path | None = None,
):
    """Train and save the model to `folder/model`; `folder=None` (a DDP rank other than 0) trains without saving."""
    from simlab.data.mining import mine
    from simlab.data.pairs import build_pairs
    from simlab.models import load_model, uses_router
    from simlab.training.dense import train_dense

    model = load_model(cfg.model)
    pairs = build_pairs(collection, cfg.data.train_split, cfg.data.dev_split, cfg.train.seed, cfg.data.max_train_pairs)
    mined = mine(pairs, cfg.train.hard_negatives, model)
    summary.notes.append(f"Training pairs: {pairs.source}.")
    summary.notes.append(f"Per-epoch evaluation: {pairs.dev.source}.")
    if cfg.train.hard_negatives.source != "none":
        summary.notes.append(
            f"Hard negatives: {cfg.train.hard_negatives.num} per pair mined by {cfg.train.hard_negatives.source} "
            f"from ranks [{cfg.train.hard_negatives.range_min}, {cfg.train.hard_negatives.range_max}); "
            f"{mined.dropped} pairs dropped for lack of negatives."
        )
    work_dir = work_dir or folder / ".checkpoints"
    result = train_dense(model, mined, pairs.dev, cfg.train, work_dir, uses_router(model))
    distributed.finish()  # every rank done (best weights loaded) before rank 0 goes on alone
    if folder is None:
        return model
    summary.history = result.history
    if result.world_size > 1:
        summary.notes.append(
            f"Trained on {result.world_size} processes (PyTorch DDP, gloo): global batch "
            f"{cfg.train.batch_size * result.world_size} ({cfg.train.batch_size} per process); in-batch negatives "
            f"gathered across processes: {result.negatives_per_query:.1f} negatives per query per step."
        )
    batch = f"batch size {cfg.train.batch_size}"
    if result.world_size > 1:
        batch = f"global batch {cfg.train.batch_size * result.world_size} over {result.world_size} processes"
    summary.notes.append(
        f"Each query saw {result.negatives_per_query:.1f} negatives per step on average "
        f"(in-batch, {batch}, plus hard negatives); "
        f"{result.n_pairs} pairs, {cfg.train.epochs} epoch(s), {result.seconds:.1f} s."
    )
    if result.best_epoch is not None:
        summary.notes.append(f"Best epoch by dev {cfg.train.best_metric}: {result.best_epoch} (its weights are kept).")
    model.save(str(folder / "model"))
    return model


def _train_follower(cfg: ExperimentConfig, out: Path) -> RunSummary:
    """A DDP rank other than 0: load the data, build the same pairs, train alongside rank 0, return.

    It writes nothing itself; the trainer's checkpoints go to `checkpoint_dir(out)`, which
    rank 0 writes and deletes. Evaluation, the run folder, the report and tracking are rank 0's.
    """
    from simlab.data.loader import load_collection

    summary = RunSummary(folder=out, config=cfg)
    if "trained" in cfg.eval.systems and cfg.train.enabled:
        _train(cfg, load_collection(Path(cfg.data.path)), None, summary, checkpoint_dir(out))
    return summary


def run_experiment(cfg, out: Path, overwrite: bool = False) -> RunSummary:
    """Run any experiment config into the run folder `out`, dispatching on `cfg.task`."""
    if cfg.task == "pairs":
        if distributed.is_distributed():
            raise ConfigError("task: pairs does not run on several processes yet; run it without torchrun/--nproc")
        from simlab.experiments.pairs_runner import run_pairs

        return run_pairs(cfg, out, overwrite)
    if cfg.task == "multilabel":
        if distributed.is_distributed():
            raise ConfigError("task: multilabel runs on one process; run it without torchrun/--nproc")
        from simlab.experiments.multilabel_runner import run_multilabel

        return run_multilabel(cfg, out, overwrite)
    return run_retrieval(cfg, out, overwrite)


def run_retrieval(cfg: ExperimentConfig, out: Path, overwrite: bool = False) -> RunSummary:
    """Run a retrieval experiment into `out`; see the module docstring."""
    from simlab.data.loader import load_collection
    from simlab.data.trec import write_trec_qrels, write_trec_run
    from simlab.evaluation.metrics import evaluate, per_query_rows
    from simlab.experiments.dense_systems import dense_systems
    from simlab.index.bm25 import BM25Retriever
    from simlab.index.fusion import rrf

    out = Path(out)
    if out.exists() and not overwrite:
        raise RunFolderError(f"{out} already exists; choose another --out or pass --overwrite")
    ddp = distributed.is_distributed()
    if ddp and cfg.model.kind == "sparse":
        raise ConfigError("model.kind: sparse does not train on several processes yet; run it without --nproc")
    if ddp and not distributed.is_main():
        return _train_follower(cfg, out)
    t0 = time.perf_counter()
    collection = load_collection(Path(cfg.data.path))
    queries, qrels = _test_queries(collection, cfg.data.test_split)
    systems = cfg.eval.systems
    runs: dict[str, Run] = {}
    with fsutil.staged_dir(out, overwrite=overwrite) as tmp:
        summary = RunSummary(folder=out, config=cfg, n_test_queries=len(queries))
        summary.notes.extend(collection.notes)
        fsutil.write_text(tmp / "config.yaml", cfg.to_yaml())
        k = cfg.eval.k
        if "bm25" in systems or "hybrid" in systems:
            log.info("BM25 over %d documents", len(collection.corpus))
            runs["bm25"] = BM25Retriever.build(collection.corpus).search(queries, k)
        dense_prefixes = []
        if cfg.model.kind == "sparse":  # SPLADE: same table, sparse indexes (experiments/sparse_systems.py)
            from simlab.experiments.sparse_systems import run_sparse

            sparse_runs, dense_prefixes = run_sparse(cfg, collection, queries, tmp, summary, out.name)
            runs |= sparse_runs
            if summary.history:
                fsutil.write_text(tmp / "history.jsonl", "".join(json.dumps(h) + "\n" for h in summary.history))
                from simlab.experiments.plots import learning_curves

                learning_curves(summary.history, tmp / "curves.png", cfg.train.best_metric)
        if "zeroshot" in systems and cfg.model.kind == "dense":
            from simlab.models import load_model

            log.info("zero-shot model %s", cfg.model.name)
            zs = dense_systems(
                "zeroshot",
                load_model(cfg.model),
                cfg.model.name,
                cfg.model.normalize,
                collection.corpus,
                queries,
                k,
                cfg.index,
                None,
            )
            runs |= zs.runs
            summary.speed |= zs.speed
            summary.notes.extend(zs.notes)
            dense_prefixes.append("zeroshot")
        if "trained" in systems and cfg.train.enabled and cfg.model.kind == "dense":
            log.info("training %s", cfg.model.name)
            model = _train(cfg, collection, tmp, summary, checkpoint_dir(out) if ddp else None)
            tr = dense_systems(
                "trained",
                model,
                f"{cfg.model.name}+trained:{out.name}",
                cfg.model.normalize,
                collection.corpus,
                queries,
                k,
                cfg.index,
                tmp / "indexes",
            )
            runs |= tr.runs
            summary.speed |= tr.speed
            summary.notes.extend(tr.notes)
            dense_prefixes.append("trained")
            fsutil.write_text(tmp / "history.jsonl", "".join(json.dumps(h) + "\n" for h in summary.history))
            from simlab.experiments.plots import learning_curves

            learning_curves(summary.history, tmp / "curves.png", cfg.train.best_metric)
        if "hybrid" in systems and dense_prefixes:
            best_dense = f"{dense_prefixes[-1]}.flat"
            runs["hybrid"] = rrf([runs["bm25"], runs[best_dense]], k=cfg.eval.rrf_k, name="hybrid", top=k)
            summary.notes.append(f"hybrid = reciprocal rank fusion (k={cfg.eval.rrf_k}) of bm25 and {best_dense}.")
        if "bm25" not in systems:
            runs.pop("bm25", None)
        results = {name: evaluate(qrels, run, cfg.eval.metrics) for name, run in runs.items()}
        summary.metrics = {name: dict(r.means) for name, r in results.items()}
        for name, stats in summary.speed.items():
            exact = name.rsplit(".", 1)[0] + ".flat"
            if name != exact and exact in summary.metrics:
                for m in cfg.eval.metrics:
                    stats[f"delta_{m}"] = summary.metrics[name][m] - summary.metrics[exact][m]
        for name, run in runs.items():
            write_trec_run(run, tmp / "runs" / f"{name}.trec")
        write_trec_qrels(qrels, tmp / "qrels.trec")  # so trec_eval / ir_measures can score runs/*.trec
        rows = per_query_rows(results)
        fsutil.write_text(
            tmp / "perquery.tsv",
            "system\tquery_id\tmetric\tvalue\n"
            + "".join(f"{r['system']}\t{r['query_id']}\t{r['metric']}\t{r['value']:.6f}\n" for r in rows),
        )
        fsutil.write_json(tmp / "speed.json", summary.speed)
        summary.seconds = time.perf_counter() - t0
        write_summary(tmp, summary, n_test_queries=len(queries))
        import shutil

        shutil.rmtree(tmp / ".checkpoints", ignore_errors=True)
        if ddp:
            shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    if cfg.tracking.mlflow:
        from simlab.experiments.tracking import log_run

        log_run(summary)
    return summary
