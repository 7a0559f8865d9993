"""The stages of a pairs run: a siamese matcher with a val-tuned, frozen threshold (workload A).

Read the records and pairs; build the pair sets (`simlab.tasks.pairs.sets`); score the
reference systems (token overlap, per-field features, the untrained model); train the model
(in rounds when hard negatives are re-mined); score the trained model and the hybrid. Every
system's threshold is tuned on val and frozen for test, which is scored once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simlab.errors import ConfigError
from simlab.models.field_matcher import FieldMatcher
from simlab.tasks.base import RunSummary
from simlab.tasks.pairs.config import PairsConfig
from simlab.tasks.pairs.sets import build_pair_sets, check_split, pair_fields, regression_train_set
from simlab.tasks.pairs.systems import add_system, features, token_overlap
from simlab.tasks.skeleton import checkpoint_dir, note_resume


def pair_model(cfg: PairsConfig, n_fields: int = 1):
    """The model to train: `model.preload` or `model.name`, with a Dropout module when configured.

    With `model.fields_encoder` shared / separate the base model's StaticEmbedding becomes a
    `FieldFusion` over `n_fields` fields (one copy, or a copy per field); a preloaded FieldFusion
    model is kept as it is.
    """
    import copy

    from sentence_transformers import SentenceTransformer

    from simlab.config import ModelConfig
    from simlab.models import load_model
    from simlab.models.fields import FieldFusion

    mcfg = cfg.model
    if mcfg.fields_encoder != "joined" and mcfg.preload:  # may be a saved FieldFusion model (simlab's own class)
        model = SentenceTransformer(mcfg.preload, device="cpu", trust_remote_code=True)
    else:
        model = load_model(
            ModelConfig(name=mcfg.preload or mcfg.name, max_length=mcfg.max_length, normalize=mcfg.normalize)
        )
    if mcfg.fields_encoder != "joined" and not isinstance(model[0], FieldFusion):
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding

        if not isinstance(model[0], StaticEmbedding):
            raise ConfigError(
                f"model.fields_encoder: {mcfg.fields_encoder} needs a static embedding model (e.g. model.name: "
                f"wordllama), but {mcfg.preload or mcfg.name} starts with {type(model[0]).__name__}; "
                "use model.fields_encoder: joined for it"
            )
        n_text = n_fields - bool(cfg.data.image_field)
        copies = 1 if mcfg.fields_encoder == "shared" else n_text
        encoders = [copy.deepcopy(model[0]) for _ in range(copies)]
        field_encoders = [0 if copies == 1 else i for i in range(n_text)]
        if cfg.data.image_field:  # the last field: an image tower with the text encoders' dimension
            from simlab.models.image_tower import ImageTower

            dim = encoders[0].get_embedding_dimension()
            encoders.append(ImageTower(mcfg.image.backbone, dim, mcfg.image.image_size, mcfg.image.pretrained))
            field_encoders.append(len(encoders) - 1)
        fusion = FieldFusion(encoders, n_fields=n_fields, fusion=mcfg.fusion, field_encoders=field_encoders)
        model = SentenceTransformer(modules=[fusion, *list(model)[1:]], device="cpu")
    if not mcfg.dropout:
        return model
    from sentence_transformers.sentence_transformer.modules import Dropout

    return SentenceTransformer(modules=[*list(model)[:1], Dropout(mcfg.dropout), *list(model)[1:]], device="cpu")


def _rounds(cfg: PairsConfig) -> list[int]:
    """Epochs per training round: one round, or `remine_every` epochs between re-minings."""
    every = cfg.sampling.remine_every
    if not every:
        return [cfg.train.epochs]
    return [min(every, cfg.train.epochs - start) for start in range(0, cfg.train.epochs, every)]


def _train(cfg: PairsConfig, model, data, sets, summary: RunSummary, folder: Path):
    """Train `model` on `sets["train"]`, re-mining between rounds; returns the last round's result."""
    from simlab.training.pairs import train_pairs

    ckpt = checkpoint_dir(summary.folder)
    done, seconds = 0, 0.0
    for r, epochs in enumerate(_rounds(cfg)):
        if r > 0:  # re-mine the train pairs with the model as it is now
            sets["train"] = build_pair_sets(cfg, data, summary.notes, model, splits=("train",))["train"]
        round_cfg = cfg.train.model_copy(update={"epochs": epochs})
        result = train_pairs(
            model, sets["train"], sets["val"], round_cfg, ckpt / f"round-{r}", folder / "checkpoints", done
        )
        summary.history += result.history
        note_resume(result, summary)
        done, seconds = done + epochs, seconds + result.seconds
    if len(_rounds(cfg)) > 1:
        summary.notes.append(
            f"Hard negatives re-mined by the model every {cfg.sampling.remine_every} epochs; the weights kept "
            "are the best epoch of the last round."
        )
    summary.notes.append(
        f"{len(sets['train'])} training pairs, {cfg.train.epochs} epoch(s), {seconds:.1f} s "
        f"({seconds / cfg.train.epochs:.1f} s per epoch, validation included)."
    )
    return result


FIELDS_NOTE = (
    "fields: a logistic regression on per-field similarity features (word Jaccard, exact and contained "
    "alphanumerics, missing values), fitted on the dataset's labelled train pairs (the sampled ones for a "
    "records file); hybrid: the same with the trained "
    "model's similarity as one more feature. Both thresholds tuned on val and frozen for test."
)


def run(cfg: PairsConfig, summary: RunSummary, folder: Path) -> None:
    """All stages into the staging `folder` (see the module docstring)."""
    from simlab.data.matching import group_split, read_matching
    from simlab.evaluation.pairs import epoch_line
    from simlab.models.backends import with_backend
    from simlab.training.pairs import pair_scores

    d = cfg.data
    data = read_matching(Path(d.path), id_field=d.id_field, group_field=d.group_field, image_field=d.image_field)
    n_fields = len(pair_fields(cfg, data.left))
    if data.kind != "pairs":  # a records file: its group split must leave every split records, before the model
        check_split(group_split(data.left.groups, d.val_ratio, d.test_ratio, d.seed), data.left, cfg)
    model = pair_model(cfg, n_fields)
    sets = build_pair_sets(cfg, data, summary.notes, model)
    train, val, test = sets["train"], sets["val"], sets["test"]
    summary.n_test, by, dist = len(test), cfg.train.threshold_by, cfg.train.distance
    overlap = [token_overlap(pairs, image=bool(d.image_field)) for pairs in (val, test)]
    add_system(summary, "overlap", *overlap, val, test, by)
    matcher, fit = None, regression_train_set(cfg, data, train)
    if len(set(fit.labels)) == 2:  # the logistic regressions need both classes among their train pairs
        matcher = FieldMatcher(cfg.train.seed).fit(features(fit), fit.labels)
        add_system(summary, "fields", matcher.score(features(val)), matcher.score(features(test)), val, test, by)
    infer = with_backend(model, cfg.model.backend)  # evaluation encodes on model.backend, training on torch
    add_system(summary, "zeroshot", pair_scores(infer, val, dist), pair_scores(infer, test, dist), val, test, by)
    result = _train(cfg, model, data, sets, summary, folder)
    model.eval()
    infer = with_backend(model, cfg.model.backend)
    val_scores, test_scores = pair_scores(infer, val, dist), pair_scores(infer, test, dist)
    test_m = add_system(summary, "trained", val_scores, test_scores, val, test, by)
    summary.notes.append(
        f"Best epoch by val {cfg.train.best_by}: {result.best_epoch}; test scored once with its weights "
        f"and val's threshold {summary.metrics['trained']['threshold']:.3f}, frozen "
        f"(both thresholds come from val): "
        f"{epoch_line('test', result.best_epoch or 0, None, test_m, test_m['threshold'], optimised=False)}."
    )
    model.save(str(folder / "model"))
    fit = regression_train_set(cfg, data, sets["train"])  # re-mining may have replaced the train pairs
    scored = {"fit": fit, "val": val, "test": test} if matcher is not None else {"val": val, "test": test}
    # the hybrid's columns beside the field features: the trained model's similarity, the cross-encoder's logit
    columns = {
        "fit": [pair_scores(infer, fit, dist)] if matcher is not None else [],
        "val": [val_scores],
        "test": [test_scores],
    }
    if cfg.cross.model:
        names = [f for f in pair_fields(cfg, data.left) if f != d.image_field]
        for split, scores in _cross(cfg, fit, names, scored, summary, folder).items():
            columns[split].append(scores)
    if matcher is not None:
        hybrid = FieldMatcher(cfg.train.seed).fit(np.c_[(features(fit), *columns["fit"])], fit.labels)
        val_h, test_h = (hybrid.score(np.c_[(features(p), *columns[k])]) for k, p in (("val", val), ("test", test)))
        add_system(summary, "hybrid", val_h, test_h, val, test, by)
        with_cross = " With the cross system its logit is one more feature." if cfg.cross.model else ""
        summary.notes.append(FIELDS_NOTE + with_cross)


def _cross(cfg: PairsConfig, fit, names: list[str], scored: dict, summary: RunSummary, folder: Path) -> dict:
    """The `cross` system: a CrossEncoder (`cross.model`) fine-tuned on `fit` (the pairs the regressions fit on)
    with the text fields `names`, saved to `folder/cross-model`; its logits on the pair sets `scored` (by split)."""
    from transformers import set_seed

    from simlab.models import load_cross_encoder
    from simlab.training.cross import cross_scores, train_cross

    c = cfg.cross
    set_seed(cfg.train.seed)  # the new match layer's initial weights: the same in every run of this config
    model = load_cross_encoder(c.model, c.max_length)
    result = train_cross(model, fit, names, c, cfg.train.seed, checkpoint_dir(summary.folder) / "cross")
    scores = {split: cross_scores(model, pairs, names, c.field_tokens) for split, pairs in scored.items()}
    add_system(summary, "cross", scores["val"], scores["test"], scored["val"], scored["test"], cfg.train.threshold_by)
    summary.notes.append(
        f"cross: {c.model} reading both records together (a CrossEncoder, binary cross-entropy), fine-tuned on "
        f"{result.n_pairs} labelled train pairs for {c.epochs} epoch(s) in {result.seconds:.1f} s; "
        + (f"each field cut to {c.field_tokens} tokens, " if c.field_tokens else "")
        + f"each pair to {c.max_length} tokens; threshold tuned on val and frozen for test."
    )
    model.save(str(folder / "cross-model"))
    return scores
