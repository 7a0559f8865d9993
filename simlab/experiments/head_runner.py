"""`simlab run` for `task: pairs` with a `head` block: usage example vs definition (workload B).

Shares workload A's data layout (`read_matching`: contexts as table A, definitions as table B,
labelled pairs per split, as `simlab data convert wic-tsv|wic|oewn` writes), its systems table,
thresholds (tuned on val, frozen for test), metrics and run folder. Stages: read the pairs
(the given ones, `sampling.mode: given`); add synthetic negatives to train (`synthetic`);
build the encoder (`model.layers`, `model.pooling_scope` through `ContextPooling`); score the
token-overlap baseline and the untrained encoder's cosine; train the head (`simlab.training.head`);
score test once with the best epoch and val's threshold.

The run folder's `model/` is the encoder in sentence-transformers format (load it with
`trust_remote_code=True` when it uses `ContextPooling`) and `model/head/` the head
(`simlab.models.head.PairHead.load`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from simlab import fsutil
from simlab.config import PairsConfig
from simlab.data.matching import MatchingDataset, Records
from simlab.data.synthetic import ContextPairs
from simlab.errors import ConfigError, RunFolderError
from simlab.experiments.runner import RunSummary, write_summary
from simlab.training.pairs import PairSet


def _ints(records: Records, name: str, i: int) -> int | None:
    value = records.fields.get(name, [""] * len(records))[i].strip()
    return int(value) if value.lstrip("-").isdigit() else None


def text_fields(cfg: PairsConfig, data: MatchingDataset) -> tuple[list[str], list[str]]:
    """The fields joined into a context's text and into a definition's text.

    `data.fields` (default: every field but the span columns) restricted to each table's own
    fields; a context's `text` comes first, so that its target span stays valid.
    """
    from simlab.data.definitions import SPAN_COLUMNS

    def pick(records: Records) -> list[str]:
        names = [f for f in (cfg.data.fields or records.fields) if f in records.fields and f not in SPAN_COLUMNS]
        return sorted(names, key=lambda f: f != "text")  # stable: "text" first

    left, right = pick(data.left), pick(data.right)
    if cfg.data.fields:
        unknown = [f for f in cfg.data.fields if f not in data.left.fields and f not in data.right.fields]
        if unknown:
            raise ConfigError(
                f"data.fields: {unknown} are in neither table of {cfg.data.path}; fields are "
                f"{sorted(set(data.left.fields) | set(data.right.fields))}"
            )
    if not left or not right:
        raise ConfigError(f"data.fields: {cfg.data.fields} leaves a table of {cfg.data.path} without text")
    return left, right


def context_pairs(cfg: PairsConfig, data: MatchingDataset, split: str) -> ContextPairs:
    """One split's labelled pairs with the context's target word and span (when the table has them)."""

    lf, rf = text_fields(cfg, data)
    pairs = data.pairs[split]
    if split == "train" and cfg.sampling.limit_pos_pairs_per_query.train:
        from simlab.data.sampling import limit_labelled_pairs

        pairs = limit_labelled_pairs(pairs, cfg.sampling.limit_pos_pairs_per_query.train, None, cfg.train.seed)
    left, right = data.left, data.right
    spans_ok = lf[0] == "text" and "char_start" in left.fields
    targets, spans, texts = [], [], []
    for lid in pairs.left_ids:
        i = left.position[lid]
        texts.append(left.text(i, lf))
        a, b = _ints(left, "char_start", i), _ints(left, "char_end", i)
        ok = spans_ok and a is not None and b is not None and 0 <= a < b <= len(left.fields["text"][i])
        spans.append((a, b) if ok else None)
        targets.append(left.fields["target"][i] if "target" in left.fields else None)
    return ContextPairs(
        left=texts,
        right=[right.text(right.position[r], rf) for r in pairs.right_ids],
        labels=list(pairs.labels),
        ids=[f"{a}|{b}" for a, b in zip(pairs.left_ids, pairs.right_ids)],
        targets=targets,
        spans=spans,
    )


def to_pair_set(pairs: ContextPairs, mark: bool) -> PairSet:
    """Texts for the encoder: contexts with their target marked when the encoder pools by target."""
    from simlab.models.context_pooling import mark_target

    left = [mark_target(t, *s) if mark and s else t for t, s in zip(pairs.left, pairs.spans)]
    return PairSet(left, list(pairs.right), list(pairs.labels), list(pairs.ids))


def context_encoder(cfg: PairsConfig):
    """The encoder: the configured model, wrapped in `ContextPooling` when `model.layers` or a
    target scope is set. A static model with `model.layers` is refused (`ConfigError`)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    from simlab.config import ModelConfig
    from simlab.models import _load_base, load_model
    from simlab.models.context_pooling import ContextPooling, parse_layers

    m = cfg.model
    name = m.preload or m.name
    k, mode = parse_layers(m.layers)
    modules_json = Path(name) / "modules.json"
    if modules_json.is_file() and "ContextPooling" in modules_json.read_text(encoding="utf-8"):
        return SentenceTransformer(name, device="cpu", trust_remote_code=True)  # a saved run model
    if not k and m.pooling_scope == "sentence":
        return load_model(ModelConfig(name=name, max_length=m.max_length, normalize=m.normalize))
    inner = _load_base(ModelConfig(name=name, max_length=m.max_length, normalize=False))[0]
    if isinstance(inner, StaticEmbedding) and k:
        raise ConfigError(
            f"model.layers: {m.layers} sums hidden layers, but {name} is a static embedding (no layers); set "
            "model.layers: null, or model.name: a transformers model folder"
        )
    if not isinstance(inner, StaticEmbedding) and not k:
        k = 1  # the last layer: the usual token vectors
    pool = ContextPooling(inner, layers=k, layer_mode=mode, scope=m.pooling_scope, window=m.window)
    return SentenceTransformer(modules=[pool, *([Normalize()] if m.normalize else [])], device="cpu")


def _senses_system(cfg: PairsConfig, data: MatchingDataset, raw, sets, model, summary, per_item) -> None:
    """The `senses` system: the untrained encoder's sense margin against `data.senses` (see simlab.data.senses)."""
    from simlab.data.senses import read_oewn_senses, sense_margin
    from simlab.experiments.pairs_runner import _system

    inventory = read_oewn_senses(cfg.data.senses)
    hyps = "hypernyms" in text_fields(cfg, data)[1]

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=256, convert_to_numpy=True, show_progress_bar=len(texts) > 5000)

    margins, covered = {}, {}
    for split in ("val", "test"):
        ps = sets[split]
        glosses = [data.right.fields["text"][data.right.position[pid.split("|", 1)[1]]] for pid in ps.ids]
        margins[split], covered[split] = sense_margin(
            encode, ps.left, ps.right, glosses, raw[split].targets, inventory, hyps
        )
    val, test = sets["val"], sets["test"]
    summary.metrics["senses"], per_item["senses"], _ = _system(
        margins["val"], margins["test"], val, test, cfg.train.threshold_by
    )
    rule = float(np.mean((margins["test"] >= 0) == np.asarray(test.labels, dtype=bool)))
    summary.notes.append(
        f"senses: the untrained encoder's cosine to the definition minus its best cosine to another sense of the "
        f"word in {cfg.data.senses} ({len(inventory)} lemmas); {covered['test']} of {len(test)} test pairs "
        f"({covered['val']} of {len(val)} val) had other senses. With the fixed rule margin >= 0 (the definition "
        f"is the word's best-matching sense; no threshold tuned) test accuracy is {rule:.4f}."
    )
    summary.notes.append(f"senses rule accuracy: {rule:.6f}")


def run_head(cfg: PairsConfig, out: Path, overwrite: bool = False) -> RunSummary:
    """Run an example-vs-definition experiment into `out`; see the module docstring."""
    from simlab.data.matching import read_matching
    from simlab.data.synthetic import add_synthetic
    from simlab.evaluation.pairs import epoch_line
    from simlab.experiments.pairs_runner import _system, token_overlap
    from simlab.experiments.plots import learning_curves
    from simlab.models.context_pooling import ContextPooling
    from simlab.models.head import PairHead
    from simlab.training.head import head_scores, train_head
    from simlab.training.pairs import pair_scores

    if out.exists() and not overwrite:
        raise RunFolderError(f"{out} already exists; choose another --out or pass --overwrite")
    if cfg.sampling.mode != "given":
        raise ConfigError(
            "a head block trains on the dataset's labelled pairs: set sampling.mode: given "
            "(the definition datasets give their train pairs)"
        )
    t0 = time.perf_counter()
    data = read_matching(Path(cfg.data.path), id_field=cfg.data.id_field, group_field=cfg.data.group_field)
    if data.kind != "pairs":
        raise ConfigError(
            f"data.path: {cfg.data.path} is a records file with groups; a head block needs labelled pairs "
            "(simlab data convert wic-tsv | wic | oewn)"
        )
    summary = RunSummary(folder=out, config=cfg)
    raw = {s: context_pairs(cfg, data, s) for s in ("train", "val", "test")}
    syn = cfg.synthetic
    if syn.replace_share or syn.swap_share:
        raw["train"], counts = add_synthetic(raw["train"], syn.replace_share, syn.swap_share, syn.templates, syn.seed)
        summary.notes.append(
            f"Synthetic negatives (train only): {counts['template']} label-0 pairs replaced by templates "
            f"(replace_share {syn.replace_share}, {len(syn.templates)} templates), {counts['swap']} by swapped "
            f"contexts (swap_share {syn.swap_share}); {counts['negatives_kept']} label-0 pairs kept, "
            f"{counts['positives']} positives."
        )
        summary.notes.append(f"synthetic counts: {json.dumps(counts)}")
    model = context_encoder(cfg)
    mark = isinstance(model[0], ContextPooling) and model[0].scope != "sentence"
    sets = {s: to_pair_set(p, mark) for s, p in raw.items()}
    train, val, test = sets["train"], sets["val"], sets["test"]
    summary.n_test_queries = len(test)
    by = cfg.train.threshold_by
    per_item: dict[str, np.ndarray] = {}
    with fsutil.staged_dir(out, overwrite=overwrite) as tmp:
        fsutil.write_text(tmp / "config.yaml", cfg.to_yaml())
        summary.metrics["overlap"], per_item["overlap"], _ = _system(
            token_overlap(val), token_overlap(test), val, test, by
        )
        summary.metrics["zeroshot"], per_item["zeroshot"], _ = _system(
            pair_scores(model, val), pair_scores(model, test), val, test, by
        )
        if cfg.data.senses:
            _senses_system(cfg, data, raw, sets, model, summary, per_item)
        h = cfg.head
        import torch

        torch.manual_seed(cfg.train.seed)  # the head's initial weights: reproducible whatever ran before
        head = PairHead(model.get_embedding_dimension(), h.kind, h.widths, h.features)
        result = train_head(model, head, train, val, cfg)
        summary.history = result.history
        summary.metrics["trained"], per_item["trained"], test_m = _system(
            head_scores(model, head, val), head_scores(model, head, test), val, test, by
        )
        summary.notes.append(
            f"Head: {h.kind}, branch widths {h.widths}"
            + (f", features {'+'.join(h.features)}" if h.kind == "mlp" else "")
            + f", BCE; encoder {'frozen: every text embedded once' if h.freeze_encoder else 'trained end to end'}"
            + (f" ({result.encode_seconds:.1f} s)" if h.freeze_encoder else "")
            + f". Pooling: layers {cfg.model.layers or 'n/a'}, scope {cfg.model.pooling_scope}"
            + (f" (window {cfg.model.window})" if cfg.model.pooling_scope == "window" else "")
            + "."
        )
        summary.notes.append(
            f"Best epoch by val {cfg.train.best_by}: {result.best_epoch}; test scored once with its weights and "
            f"val's threshold {summary.metrics['trained']['threshold']:.3f} (by {by}), frozen: "
            f"{epoch_line('test', result.best_epoch or 0, None, test_m, test_m['threshold'], optimised=False)}, "
            f"Acc {test_m['accuracy']:.3f}."
        )
        summary.notes.append(
            f"{len(train)} training pairs, {cfg.train.epochs} epochs, {result.seconds:.1f} s training "
            f"({result.seconds / cfg.train.epochs:.2f} s per epoch, validation included)."
        )
        model.save(str(tmp / "model"))
        head.save(tmp / "model" / "head")
        fsutil.write_text(tmp / "history.jsonl", "".join(json.dumps(r) + "\n" for r in summary.history))
        learning_curves(summary.history, tmp / "curves.png", cfg.train.best_by, prefix="val")
        rows = ["system\tquery_id\tmetric\tvalue\n"]
        for system, scores in per_item.items():
            thr = summary.metrics[system]["threshold"]
            for pid, y, s in zip(test.ids, test.labels, scores):
                rows.append(f"{system}\t{pid}\tcorrect\t{int((s >= thr) == bool(y))}\n")
                rows.append(f"{system}\t{pid}\tscore\t{s:.6f}\n")
        fsutil.write_text(tmp / "perquery.tsv", "".join(rows))
        summary.seconds = time.perf_counter() - t0
        write_summary(tmp, summary, n_test_pairs=len(test), train_seconds=round(result.seconds, 3))
    if cfg.tracking.mlflow:
        from simlab.experiments.tracking import log_run

        log_run(summary)
    return summary
