"""The stages of a definitions run: usage example vs definition (workload B).

Shares the pairs task's data layout (`read_matching`: contexts as table A, definitions as
table B, labelled pairs per split, as `simlab data convert wic-tsv|wic|oewn` writes), its
systems table, thresholds (tuned on val, frozen for test), per-pair rows and report. Stages:
read the given pairs; add synthetic negatives to train (`synthetic`); build the encoder
(`model.layers`, `model.pooling_scope` through `ContextPooling`); score the token-overlap
reference, the untrained encoder's cosine and the sense margin (`data.senses`); train the head
(`simlab.training.head`); score test once with the best epoch and val's threshold.

The run folder's `model/` is the encoder in sentence-transformers format (load it with
`trust_remote_code=True` when it uses `ContextPooling`) and `model/head/` the head
(`simlab.models.head.PairHead.load`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from simlab.console import wants_bar
from simlab.data.matching import MatchingDataset
from simlab.errors import ConfigError
from simlab.tasks.base import RunSummary
from simlab.tasks.definitions.config import DefinitionsConfig
from simlab.tasks.definitions.sets import context_pairs, text_fields, to_pair_set
from simlab.tasks.pairs.systems import add_system, token_overlap
from simlab.tasks.skeleton import checkpoint_dir, note_resume


def context_encoder(cfg: DefinitionsConfig):
    """The encoder: the configured model, wrapped in `ContextPooling` when `model.layers` or a
    target scope is set. A static model with `model.layers` is refused (`ConfigError`)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    from simlab.config import ModelConfig
    from simlab.models import load_base, load_model
    from simlab.models.context_pooling import ContextPooling, parse_layers

    m = cfg.model
    name = m.preload or m.name
    k, mode = parse_layers(m.layers)
    modules_json = Path(name) / "modules.json"
    if modules_json.is_file() and "ContextPooling" in modules_json.read_text(encoding="utf-8"):
        return SentenceTransformer(name, device="cpu", trust_remote_code=True)  # a saved run model
    if not k and m.pooling_scope == "sentence":
        return load_model(ModelConfig(name=name, max_length=m.max_length, normalize=m.normalize))
    inner = load_base(ModelConfig(name=name, max_length=m.max_length, normalize=False))[0]
    if isinstance(inner, StaticEmbedding) and k:
        raise ConfigError(
            f"model.layers: {m.layers} sums hidden layers, but {name} is a static embedding (no layers); set "
            "model.layers: null, or model.name: a transformers model folder"
        )
    if not isinstance(inner, StaticEmbedding) and not k:
        k = 1  # the last layer: the usual token vectors
    pool = ContextPooling(inner, layers=k, layer_mode=mode, scope=m.pooling_scope, window=m.window)
    return SentenceTransformer(modules=[pool, *([Normalize()] if m.normalize else [])], device="cpu")


def add_senses(cfg: DefinitionsConfig, data: MatchingDataset, raw, sets, model, summary: RunSummary) -> None:
    """The `senses` system: the untrained encoder's sense margin against `data.senses` (see simlab.data.senses)."""
    from simlab.data.senses import read_senses, sense_margin
    from simlab.tasks.pairs.systems import add_system

    inventory = read_senses(cfg.data.senses, [t for split in ("val", "test") for t in raw[split].targets if t])
    hyps = "hypernyms" in text_fields(cfg, data)[1]

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=256, convert_to_numpy=True, show_progress_bar=wants_bar(len(texts), 5000))

    margins, covered = {}, {}
    for split in ("val", "test"):
        ps = sets[split]
        glosses = [data.right.fields["text"][data.right.position[pid.split("|", 1)[1]]] for pid in ps.ids]
        margins[split], covered[split] = sense_margin(
            encode, ps.left, ps.right, glosses, raw[split].targets, inventory, hyps
        )
    val, test = sets["val"], sets["test"]
    add_system(summary, "senses", margins["val"], margins["test"], val, test, cfg.train.threshold_by)
    rule = float(np.mean((margins["test"] >= 0) == np.asarray(test.labels, dtype=bool)))
    summary.notes.append(
        f"senses: the untrained encoder's cosine to the definition minus its best cosine to another sense of the "
        f"word in {cfg.data.senses} ({len(inventory)} lemmas read); {covered['test']} of {len(test)} test pairs "
        f"({covered['val']} of {len(val)} val) had other senses. With the fixed rule margin >= 0 (the definition "
        f"is the word's best-matching sense; no threshold tuned) test accuracy is {rule:.4f}."
    )
    summary.notes.append(f"senses rule accuracy: {rule:.6f}")


def _synthetic(cfg: DefinitionsConfig, raw: dict, summary: RunSummary) -> None:
    """Replace label-0 train pairs by synthetic negatives (`synthetic`), counted in the notes."""
    from simlab.data.synthetic import add_synthetic

    syn = cfg.synthetic
    if not (syn.replace_share or syn.swap_share):
        return
    raw["train"], counts = add_synthetic(raw["train"], syn.replace_share, syn.swap_share, syn.templates, syn.seed)
    summary.notes.append(
        f"Synthetic negatives (train only): {counts['template']} label-0 pairs replaced by templates "
        f"(replace_share {syn.replace_share}, {len(syn.templates)} templates), {counts['swap']} by swapped "
        f"contexts (swap_share {syn.swap_share}); {counts['negatives_kept']} label-0 pairs kept, "
        f"{counts['positives']} positives."
    )
    summary.notes.append(f"synthetic counts: {json.dumps(counts)}")


def _head_notes(cfg: DefinitionsConfig, result, test_m: dict, n_train: int, summary: RunSummary) -> None:
    from simlab.evaluation.pairs import epoch_line

    h, m, by = cfg.head, cfg.model, cfg.train.threshold_by
    summary.notes.append(
        f"Head: {h.kind}, branch widths {h.widths}"
        + (f", features {'+'.join(h.features)}" if h.kind == "mlp" else "")
        + f", BCE; encoder {'frozen: every text embedded once' if h.freeze_encoder else 'trained end to end'}"
        + (f" ({result.encode_seconds:.1f} s)" if h.freeze_encoder else "")
        + f". Pooling: layers {m.layers or 'n/a'}, scope {m.pooling_scope}"
        + (f" (window {m.window})" if m.pooling_scope == "window" else "")
        + "."
    )
    summary.notes.append(
        f"Best epoch by val {cfg.train.best_by}: {result.best_epoch}; test scored once with its weights and "
        f"val's threshold {test_m['threshold']:.3f} (by {by}), frozen: "
        f"{epoch_line('test', result.best_epoch or 0, None, test_m, test_m['threshold'], optimised=False)}, "
        f"Acc {test_m['accuracy']:.3f}."
    )
    summary.notes.append(
        f"{n_train} training pairs, {cfg.train.epochs} epochs, {result.seconds:.1f} s training "
        f"({result.seconds / cfg.train.epochs:.2f} s per epoch, validation included)."
    )


def run(cfg: DefinitionsConfig, summary: RunSummary, folder: Path) -> None:
    """All stages into the staging `folder` (see the module docstring)."""
    import torch

    from simlab.data.matching import read_matching
    from simlab.models.backends import with_backend
    from simlab.models.context_pooling import ContextPooling
    from simlab.models.head import PairHead
    from simlab.training.head import head_scores, train_head
    from simlab.training.pairs import pair_scores

    data = read_matching(Path(cfg.data.path), id_field=cfg.data.id_field, group_field=cfg.data.group_field)
    if data.kind != "pairs":
        raise ConfigError(
            f"data.path: {cfg.data.path} is a records file with groups; a definitions run needs labelled pairs "
            "(simlab data convert wic-tsv | wic | oewn)"
        )
    raw = {s: context_pairs(cfg, data, s) for s in ("train", "val", "test")}
    _synthetic(cfg, raw, summary)
    model = context_encoder(cfg)
    mark = isinstance(model[0], ContextPooling) and model[0].scope != "sentence"
    sets = {s: to_pair_set(p, mark) for s, p in raw.items()}
    train, val, test = sets["train"], sets["val"], sets["test"]
    summary.n_test, by = len(test), cfg.train.threshold_by
    add_system(summary, "overlap", token_overlap(val), token_overlap(test), val, test, by)
    infer = with_backend(model, cfg.model.backend)  # evaluation encodes on model.backend, training on torch
    add_system(summary, "zeroshot", pair_scores(infer, val), pair_scores(infer, test), val, test, by)
    if cfg.data.senses:
        add_senses(cfg, data, raw, sets, infer, summary)
    h = cfg.head
    torch.manual_seed(cfg.train.seed)  # the head's initial weights: reproducible whatever ran before
    head = PairHead(model.get_embedding_dimension(), h.kind, h.widths, h.features)
    result = train_head(model, head, train, val, cfg.train, cfg.head, checkpoint_dir(summary.folder))
    note_resume(result, summary)
    summary.history = result.history
    infer = with_backend(model.eval(), cfg.model.backend)
    scores = [head_scores(infer, head, split) for split in (val, test)]
    test_m = add_system(summary, "trained", *scores, val, test, by)
    _head_notes(cfg, result, test_m, len(train), summary)
    summary.meta["train_seconds"] = round(result.seconds, 3)
    model.save(str(folder / "model"))
    head.save(folder / "model" / "head")
