"""The stages of a retrieval run: every system ranked on the same test queries.

In order: load and check the collection, BM25, the pretrained model zero-shot, training, the
trained model, the hybrid, evaluation of every system, TREC files. The run skeleton
(`simlab.tasks.skeleton`) writes the common files around them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from simlab import distributed
from simlab.errors import ConfigError, DataError
from simlab.records import Collection, Corpus, Qrels, Queries, Run
from simlab.tasks.base import RunSummary
from simlab.tasks.retrieval.config import RetrievalConfig
from simlab.tasks.skeleton import checkpoint_dir, note_resume

log = logging.getLogger("simlab")


def test_queries(collection: Collection, split: str) -> tuple[Queries, object]:
    """The queries of the test split that have a relevant document, and the split's qrels."""
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


HUGE_DOCUMENT = 1_000_000
"""Characters from which a document is worth a word: the model reads only its first `model.max_length` tokens,
while BM25 indexes and every encoder tokenizes all of it (a 50 MB document made a run 30x slower)."""


def warn_huge_documents(collection: Collection, summary: RunSummary) -> None:
    """Say, in the log and the run's notes, how many documents are huge, and which is the largest."""
    sizes = [(len(t), i) for i, t in zip(collection.corpus.ids, collection.corpus.texts) if len(t) >= HUGE_DOCUMENT]
    if sizes:
        size, doc = max(sizes)
        note = (
            f"{len(sizes)} document(s) of {collection.name} hold over {HUGE_DOCUMENT:,} characters (the largest, "
            f"{doc}, {size / 1e6:.1f} M): BM25 indexes all of it and the model reads only its first tokens, so "
            "tokenizing them dominates the run's time and memory; split or trim them if that is not meant"
        )
        log.warning(note)
        summary.notes.append(note)


def train(cfg: RetrievalConfig, collection: Collection, folder: Path | None, summary: RunSummary, work_dir: Path):
    """Train and save the model to `folder/model`; `folder=None` (a DDP rank other than 0) trains without saving."""
    from simlab.data.pairs import build_pairs
    from simlab.models import load_model, uses_router
    from simlab.training.dense import train_dense
    from simlab.training.mining import mine

    model = load_model(cfg.model)
    d = cfg.data
    pairs = build_pairs(collection, d.train_split, d.dev_split, cfg.train.seed, d.max_train_pairs, d.test_split)
    mined = mine(pairs, cfg.train.hard_negatives, model)
    hn = cfg.train.hard_negatives
    summary.notes += [f"Training pairs: {pairs.source}.", f"Per-epoch evaluation: {pairs.dev.source}."]
    if hn.source != "none":
        summary.notes.append(
            f"Hard negatives: {hn.num} per pair mined by {hn.source} from ranks [{hn.range_min}, {hn.range_max}); "
            f"{mined.dropped} pairs dropped for lack of negatives."
        )
    result = train_dense(model, mined, pairs.dev, cfg.train, work_dir, uses_router(model))
    distributed.finish()  # every rank done (best weights loaded) before rank 0 goes on alone
    if folder is None:
        return model
    summary.history = result.history
    note_resume(result, summary)
    batch = f"batch size {cfg.train.batch_size}"
    if result.world_size > 1:
        batch = f"global batch {cfg.train.batch_size * result.world_size} over {result.world_size} processes"
        summary.notes.append(
            f"Trained on {result.world_size} processes (PyTorch DDP, gloo): {batch} ({cfg.train.batch_size} per "
            f"process); in-batch negatives gathered across processes: {result.negatives_per_query:.1f} negatives "
            "per query per step."
        )
    summary.notes.append(
        f"Each query saw {result.negatives_per_query:.1f} negatives per step on average "
        f"(in-batch, {batch}, plus hard negatives); "
        f"{result.n_pairs} pairs, {cfg.train.epochs} epoch(s), {result.seconds:.1f} s."
    )
    if result.best_epoch is not None:
        summary.notes.append(f"Best epoch by dev {cfg.train.best_by}: {result.best_epoch} (its weights are kept).")
    model.save(str(folder / "model"))
    return model


def follow(cfg: RetrievalConfig, out: Path) -> RunSummary:
    """A DDP rank other than 0: load the data, build the same pairs, train alongside rank 0, return.

    It writes nothing itself; the trainer's checkpoints go to `checkpoint_dir(out)`, which
    rank 0 writes and deletes. Evaluation, the run folder, the report and tracking are rank 0's.
    """
    from simlab.data.loader import load_collection

    summary = RunSummary(folder=out, config=cfg)
    if "trained" in cfg.eval.systems and cfg.train.enabled:
        train(cfg, load_collection(Path(cfg.data.path)), None, summary, checkpoint_dir(out))
    return summary


@dataclass
class Model:
    """One model a run evaluates: its systems are `<prefix>.flat` and `<prefix>.<approximate index>`."""

    prefix: str
    model: object
    model_id: str
    index_dir: Path | None = None


def dense_models(cfg: RetrievalConfig, collection: Collection, folder: Path, summary: RunSummary) -> list[Model]:
    """The pretrained model (zero-shot), `eval.reference_models` (zero-shot) and the trained model, as
    `eval.systems` asks."""
    from simlab.config.retrieval import reference_config, reference_prefix
    from simlab.models import load_model

    models = []
    if "zeroshot" in cfg.eval.systems:
        log.info("zero-shot model %s", cfg.model.name)
        models.append(Model("zeroshot", load_model(cfg.model), cfg.model.name, folder / "indexes"))
    for name in cfg.eval.reference_models:
        log.info("reference model %s (zero-shot)", name)
        models.append(
            Model(reference_prefix(name), load_model(reference_config(cfg.model, name)), name, folder / "indexes")
        )
    if "trained" in cfg.eval.systems and cfg.train.enabled:
        log.info("training %s", cfg.model.name)
        model = train(cfg, collection, folder, summary, checkpoint_dir(summary.folder))
        models.append(Model("trained", model, f"{cfg.model.name}+trained:{summary.folder.name}", folder / "indexes"))
    return models


def dense_systems_of(m: Model, cfg, corpus: Corpus, queries: Queries, index_cfg, index_dir: Path | None):
    """The exact and approximate systems of one dense model (`simlab.tasks.retrieval.systems`)."""
    from simlab.models.backends import with_backend
    from simlab.tasks.retrieval.systems import dense_systems

    model = with_backend(m.model, cfg.model.backend)  # encoding for evaluation and the indexes (model.backend)
    return dense_systems(
        m.prefix, model, m.model_id, cfg.model.normalize, corpus, queries, cfg.eval.k, index_cfg, index_dir
    )


def rank(
    cfg,
    corpus: Corpus,
    queries: Queries,
    models: list[Model],
    systems_of,
    summary: RunSummary | None,
    index_dir: Path | None = None,
):
    """BM25 (when `eval.systems` has it or the hybrid) and each model's indexes over `corpus` for `queries`.
    With `summary`, speed and notes go into it and indexes are saved; without, only exact search is run.
    With `index_dir`, BM25 is saved there too (every system the run evaluates is)."""
    from simlab.index.bm25 import BM25Retriever

    systems, k = cfg.eval.systems, cfg.eval.k
    runs: dict[str, Run] = {}
    if "bm25" in systems or "hybrid" in systems:
        log.info("BM25 over %d documents", len(corpus))
        bm25 = BM25Retriever.build(corpus)
        runs["bm25"] = bm25.search(queries, k)
        if index_dir is not None:
            bm25.save(index_dir / "bm25")
    index_cfg = (
        cfg.index if summary is not None else cfg.index.model_copy(update={"approximate": [], "sparse_approximate": []})
    )
    for m in models:
        result = systems_of(m, cfg, corpus, queries, index_cfg, m.index_dir if summary is not None else None)
        runs |= result.runs
        if summary is not None:
            summary.speed |= result.speed
            summary.notes.extend(result.notes)
    return runs


def hybrid_member(cfg, models: list[Model], val_runs: dict[str, Run] | None, dev) -> tuple[str, str]:
    """The dense system the hybrid fuses with BM25, and why: of the models' `.flat` systems, the best on val by
    the main metric (val only, never test); without val, the last model's (the trained one when there is one)."""
    from simlab.evaluation.metrics import evaluate

    flats = [f"{m.prefix}.flat" for m in models]
    if val_runs is None or len(flats) == 1:
        return flats[-1], ""
    metric = cfg.eval.metrics[0]
    scores = {name: evaluate(dev.qrels, val_runs[name], [metric]).means[metric] for name in flats}
    best = max(flats, key=lambda name: scores[name])
    return best, f", the model system with the best val {metric} ({scores[best]:.4f})"


def add_hybrid(cfg, member: str, why: str, runs: list[dict[str, Run]], summary: RunSummary, index_dir: Path) -> None:
    """`hybrid` in each of `runs`: reciprocal rank fusion of `bm25` and `member`; its recipe saved."""
    from simlab.index.fusion import rrf

    for ranked in runs:
        ranked["hybrid"] = rrf([ranked["bm25"], ranked[member]], k=cfg.eval.rrf_k, name="hybrid", top=cfg.eval.k)
    save_hybrid(index_dir, ["bm25", member], cfg.eval.rrf_k, cfg.eval.k)
    summary.notes.append(f"hybrid = reciprocal rank fusion (k={cfg.eval.rrf_k}) of bm25 and {member}{why}.")


HYBRID_FORMAT = {"format": "simlab.hybrid", "format_version": 1}


def save_hybrid(index_dir: Path, systems: list[str], rrf_k: float, depth: int) -> None:
    """`index_dir/hybrid.json`: the hybrid's recipe (the fused systems, RRF's k, the depth each was cut at)."""
    from simlab.fsutil import write_json

    recipe = {"fusion": "rrf", "systems": systems, "k": rrf_k, "depth": depth}
    write_json(index_dir / "hybrid.json", HYBRID_FORMAT | recipe)


def evaluate_runs(cfg, runs: dict[str, Run], qrels, summary: RunSummary, folder: Path) -> None:
    """Score every run on the test qrels; per-query rows, the Δ of each approximate index, TREC files."""
    from simlab.data.trec import write_trec_qrels, write_trec_run
    from simlab.evaluation.metrics import evaluate, per_query_rows

    results = {name: evaluate(qrels, run, cfg.eval.metrics) for name, run in runs.items()}
    summary.metrics = {name: dict(r.means) for name, r in results.items()}
    for name, stats in summary.speed.items():
        exact = name.rsplit(".", 1)[0] + ".flat"
        if name != exact and exact in summary.metrics:
            for m in cfg.eval.metrics:
                stats[f"delta_{m}"] = summary.metrics[name][m] - summary.metrics[exact][m]
    summary.items += [(r["system"], r["query_id"], r["metric"], r["value"]) for r in per_query_rows(results)]
    for name, run in runs.items():
        write_trec_run(run, folder / "runs" / f"{name}.trec")
    write_trec_qrels(qrels, folder / "qrels.trec")  # so trec_eval / ir_measures can score runs/*.trec


def val_set(cfg, collection: Collection):
    """The val queries a run chooses its system by (`simlab.data.pairs.build_pairs`' dev set: the dev qrels, else
    held-out train queries, else held-out test queries, which the run then leaves out of test, else held-out
    title -> body pairs); never a query the run scores as test."""
    from simlab.data.pairs import build_pairs

    d = cfg.data
    dev_split = d.dev_split if d.dev_split != d.test_split else None
    try:
        return build_pairs(collection, d.train_split, dev_split, cfg.train.seed, test_split=d.test_split).dev
    except DataError:
        return None


def evaluate_val(cfg, runs: dict[str, Run], dev, summary: RunSummary) -> None:
    """`val_<metric>` of every exact system on the val queries (what `chosen` reads; an approximate index is a
    speed variant of its model's `.flat` system, not a candidate of its own), and where they come from."""
    from simlab.evaluation.metrics import evaluate

    for name, run in runs.items():
        if name in summary.metrics and ("." not in name or name.endswith(".flat")):
            means = evaluate(dev.qrels, run, cfg.eval.metrics).means
            summary.metrics[name] |= {f"val_{m}": float(means[m]) for m in cfg.eval.metrics}
    summary.notes.append(f"Val (the system is chosen by it, never by test): {dev.source}.")


def run(cfg: RetrievalConfig, summary: RunSummary, folder: Path, models=dense_models, systems_of=dense_systems_of):
    """All stages into the staging `folder` (see the module docstring). The sparse task gives its own `models`
    (the zero-shot and trained SPLADE models) and `systems_of` (their exact and Seismic indexes)."""
    from simlab.data.loader import load_collection

    collection = load_collection(Path(cfg.data.path))
    warn_huge_documents(collection, summary)
    queries, qrels = test_queries(collection, cfg.data.test_split)
    summary.notes.extend(collection.notes)
    dev = val_set(cfg, collection)
    if dev is not None and dev.split == cfg.data.test_split:  # val holds a share of the test queries: not test
        queries = queries.subset(set(queries.ids) - set(dev.queries))
        qrels = Qrels({q: qrels.judgements[q] for q in queries.ids})
    summary.n_test = len(queries)
    evaluated = models(cfg, collection, folder, summary)
    both = dev is not None and dev.full_corpus and not set(dev.queries) & set(queries.ids)
    searched = queries
    if both:  # one search for test and val queries: the indexes are built once
        searched = Queries(queries.ids + list(dev.queries), queries.texts + list(dev.queries.values()))
    runs = rank(cfg, collection.corpus, searched, evaluated, systems_of, summary, folder / "indexes")
    val_runs = None
    if both:
        val_runs = {name: r.subset(dev.queries) for name, r in runs.items()}
    elif dev is not None:  # held-out title -> body pairs: ranked among the bodies, without their titles
        bodies = Corpus(list(dev.corpus), list(dev.corpus.values()), [""] * len(dev.corpus))
        val_runs = rank(
            cfg, bodies, Queries(list(dev.queries), list(dev.queries.values())), evaluated, systems_of, None
        )
    if "hybrid" in cfg.eval.systems and evaluated:
        member, why = hybrid_member(cfg, evaluated, val_runs, dev)
        add_hybrid(cfg, member, why, [r for r in (runs, val_runs) if r is not None], summary, folder / "indexes")
    if "bm25" not in cfg.eval.systems:
        for ranked in (runs, val_runs or {}):
            ranked.pop("bm25", None)
    test_runs = {name: r.subset(queries.ids) for name, r in runs.items()}
    evaluate_runs(cfg, test_runs, qrels, summary, folder)
    if val_runs is not None:
        evaluate_val(cfg, val_runs, dev, summary)
