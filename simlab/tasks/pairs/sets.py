"""The pairs of a pairs run: records in, `PairSet`s of train, val and test out.

Train pairs are sampled from the train matches (`sampling.pos_neg_ratio`,
`sampling.hard_soft_ratio` of mined hard negatives) or given (`sampling.mode: given`); val and
test are the dataset's labelled pairs, or sampled per split for a records file with groups.
"""

from __future__ import annotations

from simlab.data.matching import MatchingDataset, Records
from simlab.errors import ConfigError, DataError
from simlab.tasks.pairs.config import PairsConfig
from simlab.training.pairs import PairSet


def record_sep(cfg: PairsConfig) -> str:
    """The separator `Records.text` joins fields with for this config's model (see simlab.models.fields)."""
    from simlab.models.fields import FIELD_SEP

    return " " if cfg.model.fields_encoder == "joined" else FIELD_SEP


def pair_fields(cfg: PairsConfig, records: Records) -> list[str]:
    """The model's fields in order: the text fields, then the image field (`data.image_field`) if any."""
    image = cfg.data.image_field
    spans = ("char_start", "char_end")  # a context's target span (simlab.data.definitions), not text
    names = cfg.data.fields or [f for f in records.fields if f != cfg.data.group_field and f not in spans]
    missing = [f for f in names if f not in records.fields]
    if missing:
        raise ConfigError(
            f"data.fields: {missing} not in {records.source}; fields are {sorted(records.fields)}; "
            "set data.fields to some of them, or null for all"
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
    from simlab.data.sampling import SamplingConfig, sample_pairs
    from simlab.training.mining import bm25_miner, model_miner

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
        fields = pair_fields(cfg, data.left)
        absent = [f for f in fields if f not in data.right.fields]
        if absent:
            raise DataError(
                f"{data.right.source}: no column {', '.join(absent)}, which {data.left.source} has; both tables "
                "need the fields a record's text is made of: add the columns, or set data.fields to fields of both"
            )
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
    fields = pair_fields(cfg, records)
    split = group_split(records.groups, cfg.data.val_ratio, cfg.data.test_ratio, cfg.data.seed)
    check_split(split, records, cfg)
    return {name: _sampled_set(records, split[name], cfg, name, fields, notes, model) for name in splits}


def regression_train_set(cfg: PairsConfig, data: MatchingDataset, train: PairSet) -> PairSet:
    """The pairs the `fields` and `hybrid` regressions are fitted on: the dataset's labelled train pairs when it
    has them, since they are drawn like val and test (sampled pairs are not: a regression fitted on them
    learns the sampler's mix of easy and hard negatives); otherwise the train pairs the model trains on."""
    if data.kind != "pairs" or cfg.sampling.mode == "given":
        return train
    limit = cfg.sampling.limit_pos_pairs_per_query.train
    return _labelled_set(data, "train", limit, cfg, pair_fields(cfg, data.left))


def check_split(split: dict[str, list[int]], records: Records, cfg: PairsConfig) -> None:
    """Every split of a group split holds records, checked before any pair is sampled or model trained.

    Raises:
        DataError: a split came out empty (the message names the file, the split and the fix).
    """
    n_groups = len(set(records.groups or ()))
    for name in ("train", "val", "test"):
        if not split[name]:
            d = cfg.data
            raise DataError(
                f"{records.source}: the {name} split has no records ({len(records)} records in {n_groups} groups, "
                f"data.val_ratio {d.val_ratio}, data.test_ratio {d.test_ratio}; no group is split across sides); "
                "give more groups, or raise data.val_ratio / data.test_ratio"
            )
