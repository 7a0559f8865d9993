"""The pairs of a definitions run: each split's labelled (context, definition) pairs, with the
context's target word and span, as texts for the encoder."""

from __future__ import annotations

from simlab.data.matching import MatchingDataset, Records
from simlab.data.synthetic import ContextPairs
from simlab.errors import ConfigError
from simlab.tasks.definitions.config import DefinitionsConfig
from simlab.training.pairs import PairSet


def _ints(records: Records, name: str, i: int) -> int | None:
    value = records.fields.get(name, [""] * len(records))[i].strip()
    return int(value) if value.lstrip("-").isdigit() else None


def text_fields(cfg: DefinitionsConfig, data: MatchingDataset) -> tuple[list[str], list[str]]:
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


def context_pairs(cfg: DefinitionsConfig, data: MatchingDataset, split: str) -> ContextPairs:
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
