"""The stages of a sparse (SPLADE) run: the retrieval stages with sparse models in place of dense ones.

`training_rows` builds the (query, positive, negative) rows SPLADE trains on: a triples
file (`data.triples`, MS MARCO `triples` TSV) or, like the dense task, pairs from the
collection with hard negatives mined by BM25 or the model (`train.hard_negatives`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from simlab import fsutil
from simlab.errors import ConfigError
from simlab.records import Collection
from simlab.tasks.base import RunSummary
from simlab.tasks.skeleton import checkpoint_dir, note_resume
from simlab.tasks.sparse.config import SparseConfig
from simlab.tasks.sparse.systems import sparse_systems

if TYPE_CHECKING:
    from simlab.data.pairs import DevSet
    from simlab.training.mining import MinedPairs

log = logging.getLogger("simlab")
ZEROSHOT_MODEL = "zeroshot-model"
"""The run folder's copy of a zero-shot model the run built itself (`bert-mlm-scratch`), for its saved indexes."""


def triples_path(cfg: SparseConfig) -> Path:
    """`data.triples`, relative to `data.path` unless absolute.

    Raises:
        ConfigError: no such file.
    """
    path = Path(cfg.data.triples)
    path = path if path.is_absolute() else Path(cfg.data.path) / path
    if not path.is_file():
        raise ConfigError(f"data.triples: {path}: no such file (a path relative to data.path, or absolute)")
    return path


def training_rows(cfg: SparseConfig, collection: Collection, model) -> tuple[MinedPairs, DevSet | None, list[str]]:
    """(rows, dev set or None, notes) for SPLADE training; see the module docstring."""
    from simlab.data.msmarco import read_triples
    from simlab.data.pairs import build_pairs, dev_from_qrels
    from simlab.training.mining import MinedPairs, mine

    dev_split, test_split = cfg.data.dev_split, cfg.data.test_split
    dev = dev_from_qrels(collection, dev_split) if dev_split in collection.qrels and dev_split != test_split else None
    if cfg.data.triples:
        path = triples_path(cfg)
        triples = read_triples(path)
        if cfg.data.max_train_pairs is not None and len(triples) > cfg.data.max_train_pairs:
            import random

            triples = random.Random(cfg.train.seed).sample(triples, cfg.data.max_train_pairs)
        rows = MinedPairs([t[0] for t in triples], [t[1] for t in triples], [[t[2]] for t in triples], 0)
        notes = [f"Training triples: {len(triples)} from {path.name} (query, positive, negative)."]
    else:
        d = cfg.data
        pairs = build_pairs(collection, d.train_split, dev_split, cfg.train.seed, d.max_train_pairs, test_split)
        rows = mine(pairs, cfg.train.hard_negatives, model)
        notes = [f"Training pairs: {pairs.source}."]
        hn = cfg.train.hard_negatives
        if hn.source != "none":
            notes.append(
                f"Hard negatives: {hn.num} per pair mined by {hn.source} from ranks [{hn.range_min}, {hn.range_max}); "
                f"{rows.dropped} pairs dropped for lack of negatives."
            )
        if dev is None and pairs.dev.queries:
            dev = pairs.dev
    notes.append(f"Per-epoch evaluation: {dev.source}." if dev else "No per-epoch evaluation (no dev split).")
    return rows, dev, notes


def sparse_systems_of(m, cfg: SparseConfig, corpus, queries, index_cfg, index_dir):
    """The exact and Seismic systems of one sparse model (`simlab.tasks.sparse.systems`)."""
    k, quantize = cfg.eval.k, cfg.model.sparse.quantize
    return sparse_systems(m.prefix, m.model, m.model_id, corpus, queries, k, index_cfg, index_dir, quantize)


def _train(cfg: SparseConfig, collection: Collection, model, folder: Path, summary: RunSummary) -> None:
    from simlab.models import uses_router
    from simlab.training.sparse import train_sparse

    rows, dev, notes = training_rows(cfg, collection, model)
    summary.notes.extend(notes)
    result = train_sparse(model, rows, dev, cfg.train, checkpoint_dir(summary.folder), uses_router(model))
    summary.history = result.history
    note_resume(result, summary)
    summary.notes.extend(result.notes)
    splade = cfg.train.splade
    summary.notes.append(
        f"SPLADE loss: in-batch ranking + FLOPS (query weight {splade.query_regularizer_weight:g}, "
        f"document weight {splade.document_regularizer_weight:g}, reached after "
        f"{splade.regularizer_warmup_ratio:.0%} of the steps); {result.n_pairs} rows, "
        f"{cfg.train.epochs} epoch(s), {result.seconds:.1f} s."
    )
    if result.best_epoch is not None:
        summary.notes.append(f"Best epoch by dev {cfg.train.best_by}: {result.best_epoch} (its weights are kept).")
    model.save(str(folder / "model"))
    fsutil.write_text(folder / "train_steps.jsonl", "".join(json.dumps(s) + "\n" for s in result.steps))


def sparse_models(cfg: SparseConfig, collection: Collection, folder: Path, summary: RunSummary):
    """The zero-shot and trained sparse models (in place of the retrieval task's dense ones)."""
    from simlab.models.sparse import SPARSE_MODELS, load_sparse_model
    from simlab.tasks.retrieval.run import Model

    texts = collection.corpus.full_texts()
    models = []
    if "zeroshot" in cfg.eval.systems:
        log.info("zero-shot sparse model %s", cfg.model.name)
        model = load_sparse_model(cfg.model, texts)
        if cfg.model.name in SPARSE_MODELS:  # built here, not loadable by name: kept for its saved indexes
            model.save(str(folder / ZEROSHOT_MODEL))
        models.append(Model("zeroshot", model, cfg.model.name, folder / "indexes"))
    if "trained" in cfg.eval.systems and cfg.train.enabled:
        log.info("training sparse model %s", cfg.model.name)
        model = load_sparse_model(cfg.model, texts)
        _train(cfg, collection, model, folder, summary)
        models.append(Model("trained", model, f"{cfg.model.name}+trained:{summary.folder.name}", folder / "indexes"))
    return models


def run(cfg: SparseConfig, summary: RunSummary, folder: Path) -> None:
    """The retrieval stages (`simlab.tasks.retrieval.run.run`) with the sparse models and indexes."""
    from simlab.tasks.retrieval.run import run as retrieval_run

    retrieval_run(cfg, summary, folder, models=sparse_models, systems_of=sparse_systems_of)
