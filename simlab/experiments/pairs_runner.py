"""`simlab run` for `task: pairs`: a siamese matcher with a val-tuned, frozen threshold.

Stages: read the records and pairs; build train pairs (sampled from the train matches with
`pos_neg_ratio` / `hard_soft_ratio`, or the given ones) and the val/test pairs (the given
labelled pairs, or sampled per split for a group-id layout); score two reference systems
(token overlap, and the untrained model) and train the model; every system's threshold is
tuned on val and frozen for test, which is scored once. Written like the retrieval runner:
a staged folder that becomes the run folder only when everything succeeded.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np

from simlab import fsutil
from simlab.config import PairsConfig
from simlab.data.matching import MatchingDataset, Records
from simlab.errors import ConfigError, RunFolderError
from simlab.experiments.runner import RunSummary, checkpoint_dir, write_summary
from simlab.models.field_matcher import FieldMatcher, field_features
from simlab.training.pairs import REPORTED, PairSet


def record_sep(cfg: PairsConfig) -> str:
    """The separator `Records.text` joins fields with for this config's model (see simlab.models.fields)."""
    from simlab.models.fields import FIELD_SEP

    return " " if cfg.model.fields_encoder == "joined" else FIELD_SEP


def token_overlap(pairs: PairSet, image: bool = False) -> np.ndarray:
    """Jaccard overlap of lower-cased word sets: the model-free baseline, scored like the model.
    With `image`, the texts' last field (the image path of `data.image_field`) is left out."""
    from simlab.models.fields import FIELD_SEP

    def words(t: str) -> set[str]:
        return set(re.findall(r"\w+", (t.rpartition(FIELD_SEP)[0] if image else t).lower()))

    out = []
    for a, b in zip(pairs.left, pairs.right):
        wa, wb = words(a), words(b)
        out.append(len(wa & wb) / len(wa | wb) if wa | wb else 0.0)
    return np.array(out)


def _fields(cfg: PairsConfig, records: Records) -> list[str]:
    """The model's fields in order: the text fields, then the image field (`data.image_field`) if any."""
    image = cfg.data.image_field
    spans = ("char_start", "char_end")  # a context's target span (simlab.data.definitions), not text
    names = cfg.data.fields or [f for f in records.fields if f != cfg.data.group_field and f not in spans]
    missing = [f for f in names if f not in records.fields]
    if missing:
        raise ConfigError(f"data.fields: {missing} not in {records.source}; fields are {sorted(records.fields)}")
    if image and cfg.model.fields_encoder == "joined":
        raise ConfigError(
            "data.image_field needs an encoder per field: set model.fields_encoder: shared (one text encoder for "
            "the text fields) or separate (one each); the image field gets the image tower of model.image"
        )
    return [f for f in names if f != image] + ([image] if image else [])


def field_values(records: Records, i: int, fields: list[str], image: str | None = None) -> tuple[str, ...]:
    """A record's text field values (the image path field left out)."""
    return tuple(records.fields[f][i] for f in fields if f != image)


def _labelled_set(data: MatchingDataset, split: str, limit: int | None, cfg: PairsConfig, fields: list[str]) -> PairSet:
    from simlab.data.sampling import limit_labelled_pairs

    seed, sep, image = cfg.train.seed, record_sep(cfg), cfg.data.image_field

    pairs = data.pairs[split]
    if limit:
        pairs = limit_labelled_pairs(pairs, limit_pos_pairs_per_query=limit, limit_queries=None, seed=seed)
    lpos, rpos = data.left.position, data.right.position
    return PairSet(
        [data.left.text(lpos[i], fields, sep) for i in pairs.left_ids],
        [data.right.text(rpos[i], fields, sep) for i in pairs.right_ids],
        list(pairs.labels),
        [f"{a}|{b}" for a, b in zip(pairs.left_ids, pairs.right_ids)],
        [field_values(data.left, lpos[i], fields, image) for i in pairs.left_ids],
        [field_values(data.right, rpos[i], fields, image) for i in pairs.right_ids],
    )


def _sampled_set(
    records: Records, indices, cfg: PairsConfig, split: str, fields: list[str], notes: list[str], model=None
):
    from simlab.data.sampling import SamplingConfig, bm25_miner, model_miner, sample_pairs

    s = cfg.sampling
    scfg = SamplingConfig(
        pos_neg_ratio=s.pos_neg_ratio,
        hard_soft_ratio=s.hard_soft_ratio,
        limit_pos_pairs_per_query=getattr(s.limit_pos_pairs_per_query, split),
        limit_queries=s.limit_queries if split == "train" else None,
        seed=cfg.train.seed,
    )
    sep = record_sep(cfg)
    texts = [records.text(i, fields, sep) for i in range(len(records))]
    miner = None
    if s.hard_soft_ratio > 0 and s.hard_miner == "model" and sep != " ":  # the per-field texts it trains on
        miner = model_miner(Records(records.ids, {"text": texts}, records.groups), model, ["text"])
    elif s.hard_soft_ratio > 0:
        text_fields = [f for f in fields if f != cfg.data.image_field]
        miner = model_miner(records, model, fields) if s.hard_miner == "model" else bm25_miner(records, text_fields)
    sampled = sample_pairs(records, indices, scfg, miner)
    counts = sampled.counts()
    notes.append(
        f"{split} pairs sampled: {counts['pos']} positive, {counts['hard']} hard negatives ({s.hard_miner}), "
        f"{counts['random']} random negatives; {counts['false_negatives_skipped']} mined candidates were in "
        f"fact matches and were skipped (false negatives avoided)."
    )
    return PairSet(
        [texts[i] for i in sampled.left_idx],
        [texts[i] for i in sampled.right_idx],
        list(sampled.labels),
        [f"{records.ids[a]}|{records.ids[b]}" for a, b in zip(sampled.left_idx, sampled.right_idx)],
        [field_values(records, i, fields, cfg.data.image_field) for i in sampled.left_idx],
        [field_values(records, i, fields, cfg.data.image_field) for i in sampled.right_idx],
    )


def build_pair_sets(
    cfg: PairsConfig, data: MatchingDataset, notes: list[str], model=None, splits=("train", "val", "test")
) -> dict[str, PairSet]:
    """The `PairSet`s of `splits` following the module docstring (`model` mines when hard_miner: model)."""
    from simlab.data.matching import group_split, groups_from_pairs

    limits = cfg.sampling.limit_pos_pairs_per_query
    sets: dict[str, PairSet] = {}
    if data.kind == "pairs":
        fields = _fields(cfg, data.left)
        for s in splits:
            if s != "train":
                sets[s] = _labelled_set(data, s, getattr(limits, s), cfg, fields)
            elif cfg.sampling.mode == "given":
                sets[s] = _labelled_set(data, "train", limits.train, cfg, fields)
                notes.append(f"train pairs: the {len(sets['train'])} given labelled pairs (sampling.mode: given).")
            else:
                records = groups_from_pairs(data, splits=("train",))
                train_pairs = data.pairs["train"]
                pool = sorted(
                    {records.position[f"A:{i}"] for i in train_pairs.left_ids}
                    | {records.position[f"B:{i}"] for i in train_pairs.right_ids}
                )
                sets[s] = _sampled_set(records, pool, cfg, "train", fields, notes, model)
        if set(splits) - {"train"}:
            notes.append("val and test pairs: the given labelled pairs of the dataset.")
        return sets
    records = data.left
    fields = _fields(cfg, records)
    split = group_split(records.groups, cfg.data.val_ratio, cfg.data.test_ratio, cfg.data.seed)
    return {name: _sampled_set(records, split[name], cfg, name, fields, notes, model) for name in splits}


def _pair_model(cfg: PairsConfig, n_fields: int = 1):
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


def _features(pairs: PairSet) -> np.ndarray:
    """The per-field similarity features of `simlab.models.field_matcher`, `[n, n_fields * 5]`."""
    return field_features(pairs.left_values, pairs.right_values)


def _rounds(cfg: PairsConfig) -> list[int]:
    """Epochs per training round: one round, or `remine_every` epochs between re-minings."""
    every = cfg.sampling.remine_every
    if not every:
        return [cfg.train.epochs]
    return [min(every, cfg.train.epochs - start) for start in range(0, cfg.train.epochs, every)]


def _system(scores_val: np.ndarray, scores_test: np.ndarray, val: PairSet, test: PairSet, by: str = "f1"):
    from simlab.evaluation.pairs import best_threshold, pair_metrics

    thr, _ = best_threshold(scores_val, val.labels, by)
    val_m = pair_metrics(scores_val, val.labels, thr)
    test_m = pair_metrics(scores_test, test.labels, thr)  # val's threshold, frozen
    return (
        {
            **{k: float(test_m[k]) for k in REPORTED},
            "threshold": float(thr),
            **{f"val_{k}": float(val_m[k]) for k in REPORTED},
        },
        scores_test,
        test_m,
    )


def run_pairs(cfg: PairsConfig, out: Path, overwrite: bool = False) -> RunSummary:
    """Run a pair-matching experiment into `out`; see the module docstring."""
    from simlab.data.matching import read_matching
    from simlab.experiments.plots import learning_curves
    from simlab.training.pairs import pair_scores, train_pairs

    out = Path(out)
    if cfg.head is not None:  # example-vs-definition matching with a classifier head (workload B)
        from simlab.experiments.head_runner import run_head

        return run_head(cfg, out, overwrite)
    if cfg.sampling.remine_every and (cfg.sampling.hard_miner != "model" or cfg.sampling.mode != "sampled"):
        raise ConfigError(
            "sampling.remine_every re-mines with the model being trained: it needs sampling.hard_miner: model "
            "and sampling.mode: sampled"
        )
    if cfg.sampling.remine_every and cfg.train.resume is not False:
        raise ConfigError("train.resume cannot continue a run with sampling.remine_every; start it afresh")
    if out.exists() and not overwrite:
        raise RunFolderError(f"{out} already exists; choose another --out or pass --overwrite")
    t0 = time.perf_counter()
    data = read_matching(
        Path(cfg.data.path),
        id_field=cfg.data.id_field,
        group_field=cfg.data.group_field,
        image_field=cfg.data.image_field,
    )
    summary = RunSummary(folder=out, config=cfg)
    model = _pair_model(cfg, len(_fields(cfg, data.left)))
    sets = build_pair_sets(cfg, data, summary.notes, model)
    val, test = sets["val"], sets["test"]
    summary.n_test_queries = len(test)
    per_item: dict[str, np.ndarray] = {}
    with fsutil.staged_dir(out, overwrite=overwrite) as tmp:
        fsutil.write_text(tmp / "config.yaml", cfg.to_yaml())
        summary.metrics["overlap"], per_item["overlap"], _ = _system(
            *(token_overlap(pairs, image=bool(cfg.data.image_field)) for pairs in (val, test)),
            val,
            test,
            cfg.train.threshold_by,
        )
        train_labels = sets["train"].labels
        matcher = None
        if len(set(train_labels)) == 2:  # the logistic regressions need both classes among the train pairs
            matcher = FieldMatcher(cfg.train.seed).fit(_features(sets["train"]), train_labels)
            summary.metrics["fields"], per_item["fields"], _ = _system(
                matcher.score(_features(val)), matcher.score(_features(test)), val, test, cfg.train.threshold_by
            )
        d = cfg.train.distance
        summary.metrics["zeroshot"], per_item["zeroshot"], _ = _system(
            pair_scores(model, val, d), pair_scores(model, test, d), val, test, cfg.train.threshold_by
        )
        ckpt = checkpoint_dir(out)
        done, train_seconds = 0, 0.0
        for r, epochs in enumerate(_rounds(cfg)):
            if r > 0:  # re-mine the train pairs with the model as it is now
                sets["train"] = build_pair_sets(cfg, data, summary.notes, model, splits=("train",))["train"]
            round_cfg = cfg.train.model_copy(update={"epochs": epochs})
            result = train_pairs(model, sets["train"], val, round_cfg, ckpt / f"round-{r}", tmp / "checkpoints", done)
            summary.history += result.history
            done, train_seconds = done + epochs, train_seconds + result.seconds
        if len(_rounds(cfg)) > 1:
            summary.notes.append(
                f"Hard negatives re-mined by the model every {cfg.sampling.remine_every} epochs; the weights kept "
                "are the best epoch of the last round."
            )
        model.eval()
        val_scores, test_scores = pair_scores(model, val, d), pair_scores(model, test, d)
        summary.metrics["trained"], per_item["trained"], test_m = _system(
            val_scores, test_scores, val, test, cfg.train.threshold_by
        )
        if matcher is not None:
            train = sets["train"]
            hybrid = FieldMatcher(cfg.train.seed).fit(
                np.c_[_features(train), pair_scores(model, train, d)], train.labels
            )
            summary.metrics["hybrid"], per_item["hybrid"], _ = _system(
                hybrid.score(np.c_[_features(val), val_scores]),
                hybrid.score(np.c_[_features(test), test_scores]),
                val,
                test,
                cfg.train.threshold_by,
            )
            summary.notes.append(
                "fields: a logistic regression on per-field similarity features (word Jaccard, exact and contained "
                "alphanumerics, missing values), fitted on the train pairs; hybrid: the same with the trained "
                "model's similarity as one more feature. Both thresholds tuned on val and frozen for test."
            )
        from simlab.evaluation.pairs import epoch_line, per_item_rows

        summary.notes.append(
            f"Best epoch by val {cfg.train.best_by}: {result.best_epoch}; test scored once with its weights "
            f"and val's threshold {summary.metrics['trained']['threshold']:.3f}, frozen "
            f"(both thresholds come from val): "
            f"{epoch_line('test', result.best_epoch or 0, None, test_m, test_m['threshold'], optimised=False)}."
        )
        summary.notes.append(
            f"{len(sets['train'])} training pairs, {cfg.train.epochs} epochs, {train_seconds:.1f} s "
            f"({train_seconds / cfg.train.epochs:.1f} s per epoch, validation included)."
        )
        model.save(str(tmp / "model"))
        fsutil.write_text(tmp / "history.jsonl", "".join(json.dumps(h) + "\n" for h in summary.history))
        learning_curves(summary.history, tmp / "curves.png", cfg.train.best_by, prefix="val")
        rows = ["system\tquery_id\tmetric\tvalue\n"]
        for system, scores in per_item.items():
            rows += per_item_rows(system, test.ids, test.labels, scores, summary.metrics[system]["threshold"])
        fsutil.write_text(tmp / "perquery.tsv", "".join(rows))
        summary.seconds = time.perf_counter() - t0
        write_summary(tmp, summary, n_test_pairs=len(test))
    shutil.rmtree(ckpt, ignore_errors=True)
    if cfg.tracking.mlflow:
        from simlab.experiments.tracking import log_run

        log_run(summary)
    return summary
