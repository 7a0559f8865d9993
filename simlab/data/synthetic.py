"""Synthetic negatives for example-vs-definition training (workload B, the seed's data changes).

Both rules replace label-0 train pairs; positives stay as they are. With `n_neg` label-0
pairs, `half_up(replace_share * n_neg)` are replaced by templates and the next
`half_up(swap_share * n_neg)` (of one seeded permutation, so never the same pair twice) by
swapped contexts:

- **template**: one of the `templates` (a context with a `{target}` slot), chosen at random,
  filled with the target word of a positive pair (a positive of the replaced pair's word when
  there is one, else any), paired with that positive's definition. Seed example: positive
  ("the mouse gnaws the grain", "mouse: a rodent"), template "from the hill {target} can be
  seen" -> negative ("from the hill mouse can be seen", "mouse: a rodent").
- **swap** (the "opposite index" scheme): the j-th swapped negative takes positive i = j mod P
  and its opposite o = P - 1 - i (the next one down with another target word when they share
  it); the context of o with its target word replaced by i's target word, paired with i's
  definition. Seed example: ("Elbrus gnaws the grain", "Elbrus: the highest mountain").

`add_synthetic` returns the new pairs and the count per rule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from simlab.data.sampling import half_up
from simlab.errors import DataError


@dataclass(frozen=True)
class ContextPairs:
    """(context, definition) pairs with labels; the context's target word and span when known.

    `spans[i]` is the character span of `targets[i]` as it occurs in `left[i]`, or None.
    """

    left: list[str]
    right: list[str]
    labels: list[int]
    ids: list[str]
    targets: list[str | None]
    spans: list[tuple[int, int] | None]

    def __len__(self) -> int:
        return len(self.labels)


def _needs_spans(pairs: ContextPairs, rule: str) -> None:
    if any(s is None for s, y in zip(pairs.spans, pairs.labels) if y == 1):
        raise DataError(
            f"synthetic.{rule} needs the target word and its span for every positive context (columns target, "
            "char_start, char_end of tableA.csv, as the wic-tsv / wic / oewn converters write)"
        )


def add_synthetic(
    pairs: ContextPairs, replace_share: float, swap_share: float, templates: list[str], seed: int = 42
) -> tuple[ContextPairs, dict[str, int]]:
    """Replace label-0 pairs by template and swap negatives; see the module docstring.

    Returns:
        The new pairs (positives and kept negatives in their order, then the template
        negatives, then the swap negatives) and counts `{"positives", "negatives_kept",
        "template", "swap"}`.
    """
    pos = [i for i, y in enumerate(pairs.labels) if y == 1]
    neg = [i for i, y in enumerate(pairs.labels) if y == 0]
    n_t, n_s = half_up(replace_share * len(neg)), half_up(swap_share * len(neg))
    if n_t + n_s > len(neg):  # rounding both up can overshoot by one
        n_s = len(neg) - n_t
    if (n_t or n_s) and not pos:
        raise DataError("synthetic negatives are built from positive pairs, but the train split has none")
    rng = random.Random(seed)
    order = neg[:]
    rng.shuffle(order)
    to_template, to_swap = order[:n_t], order[n_t : n_t + n_s]
    replaced = set(to_template) | set(to_swap)
    left, right, labels, ids, targets, spans = [], [], [], [], [], []

    def add(i_left: str, i_right: str, label: int, pid: str, target, span) -> None:
        left.append(i_left)
        right.append(i_right)
        labels.append(label)
        ids.append(pid)
        targets.append(target)
        spans.append(span)

    for i in range(len(pairs)):
        if i not in replaced:
            add(pairs.left[i], pairs.right[i], pairs.labels[i], pairs.ids[i], pairs.targets[i], pairs.spans[i])
    if to_template:
        _needs_spans(pairs, "replace_share")
        by_word: dict[str, list[int]] = {}
        for p in pos:
            by_word.setdefault((pairs.targets[p] or "").lower(), []).append(p)
        for i in to_template:
            p = rng.choice(by_word.get((pairs.targets[i] or "").lower()) or pos)
            word = pairs.targets[p] or ""
            template = rng.choice(templates)
            start = template.index("{target}")
            text = template.replace("{target}", word, 1).replace("{target}", word)
            add(text, pairs.right[p], 0, f"template:{pairs.ids[i]}", word, (start, start + len(word)))
    if to_swap:
        _needs_spans(pairs, "swap_share")
        n = len(pos)
        for j, i_neg in enumerate(to_swap):
            i = j % n
            o = n - 1 - i
            for step in range(n):  # the opposite must be another pair, with another target word
                cand = (n - 1 - i - step) % n
                if cand != i and (pairs.targets[pos[cand]] or "").lower() != (pairs.targets[pos[i]] or "").lower():
                    o = cand
                    break
            pi, po = pos[i], pos[o]
            a, b = pairs.spans[pi]
            word = pairs.left[pi][a:b]
            oa, ob = pairs.spans[po]
            text = pairs.left[po][:oa] + word + pairs.left[po][ob:]
            add(text, pairs.right[pi], 0, f"swap:{pairs.ids[i_neg]}", pairs.targets[pi], (oa, oa + len(word)))
    counts = {"positives": len(pos), "negatives_kept": len(neg) - n_t - n_s, "template": n_t, "swap": n_s}
    return replace(pairs, left=left, right=right, labels=labels, ids=ids, targets=targets, spans=spans), counts
