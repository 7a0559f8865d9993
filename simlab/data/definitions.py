"""Usage examples vs definitions (workload B): converters to the labelled-pairs matching layout.

Every converter writes the layout `simlab.data.matching.read_matching` reads, so `task:
pairs` with `sampling.mode: given` reuses loading, thresholds, evaluation and reporting:

    tableA.csv   id,text,target,char_start,char_end   usage contexts; text[char_start:char_end]
                                                      is the target word as it occurs
    tableB.csv   id,text,target,hypernyms             definitions (`convert_wic`: contexts again)
    pairs/{train,val,test}.csv   ltable_id,rtable_id,label
    meta.json    format simlab-matching v1, kind "definitions", source, counts, notes

- `convert_wic_tsv`: the WiC-TSV layout (`Training/`, `Development/`; per split line-aligned
  `*_examples.txt` = `word<TAB>token index<TAB>tokenised context`, `*_definitions.txt`,
  `*_hypernyms.txt`, `*_labels.txt` T/F). Test labels are withheld, so Development becomes
  the `test` split, and `val` is a held-out share of Training split by target word (no word on
  both sides), used for thresholds and epoch choice; the unlabelled Test is not written.
- `convert_wic`: the original Word-in-Context layout (`train/train.data.txt` =
  `word<TAB>POS<TAB>i-j<TAB>sentence 1<TAB>sentence 2`, `train/train.gold.txt` T/F; `dev`,
  `test` alike): a pair is two usages of one word, label 1 = same sense. `dev` becomes `val`.
- `build_oewn_pairs`: positive pairs (usage example -> its synset's definition) from the Open
  English WordNet YAML files, and negatives (the same example -> the definition of another
  synset sharing the lemma). Split by lemma into train/val/test.

A target span is a character span of the context text (`char_start`, `char_end`); the model
side marks it with `TARGET_OPEN` / `TARGET_CLOSE` (see `simlab.models.context_pooling`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simlab.data.matching import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PAIR_COLUMNS,
    PAIRS_DIR,
    SPLITS,
    TABLE_A,
    TABLE_B,
    MatchingDataset,
    group_split,
    read_matching,
)
from simlab.data.matching_convert import write_csv
from simlab.errors import DataError
from simlab.fsutil import staged_dir, write_json

SPAN_COLUMNS = ("char_start", "char_end")
"""Columns of a context table that locate the target word; never part of a record's text."""
CONTEXT_COLUMNS = ("text", "target", *SPAN_COLUMNS)
DEFINITION_COLUMNS = ("text", "target", "hypernyms")


@dataclass
class _Builder:
    """Accumulates deduplicated contexts (table A), definitions (table B) and pairs per split."""

    left_columns: Sequence[str] = CONTEXT_COLUMNS
    right_columns: Sequence[str] = DEFINITION_COLUMNS
    left: dict[tuple, str] = field(default_factory=dict)
    right: dict[tuple, str] = field(default_factory=dict)
    pairs: dict[str, list[tuple[str, str, int]]] = field(default_factory=lambda: {s: [] for s in SPLITS})

    @staticmethod
    def _id(table: dict[tuple, str], row: tuple, prefix: str) -> str:
        if row not in table:
            table[row] = f"{prefix}{len(table)}"
        return table[row]

    def add(self, split: str, left_row: tuple, right_row: tuple, label: int, right_prefix: str = "d") -> None:
        lid = self._id(self.left, tuple(str(v) for v in left_row), "c")
        rid = self._id(self.right, tuple(str(v) for v in right_row), right_prefix)
        self.pairs[split].append((lid, rid, label))

    def write(self, out: Path, overwrite: bool, source: Path, notes: list[str]) -> MatchingDataset:
        if out.exists() and not overwrite:
            raise DataError(f"{out} already exists; pass --overwrite or choose another folder.")
        for split, rows in self.pairs.items():
            if not rows:
                raise DataError(
                    f"{source}: the {split} split came out empty; check the source files, or give more of them "
                    "(splits are made by target word, so each split needs words of its own)."
                )
        with staged_dir(out, overwrite=overwrite) as tmp:
            write_csv(tmp / TABLE_A, ("id", *self.left_columns), ((i, *row) for row, i in self.left.items()))
            write_csv(tmp / TABLE_B, ("id", *self.right_columns), ((i, *row) for row, i in self.right.items()))
            (tmp / PAIRS_DIR).mkdir()
            for split, rows in self.pairs.items():
                write_csv(tmp / PAIRS_DIR / f"{split}.csv", PAIR_COLUMNS, rows)
            counts = {
                s: {"pos": sum(r[2] for r in rows), "neg": sum(1 - r[2] for r in rows)}
                for s, rows in self.pairs.items()
            }
            write_json(
                tmp / "meta.json",
                {
                    "format": FORMAT_NAME,
                    "version": FORMAT_VERSION,
                    "kind": "definitions",
                    "source": str(source),
                    "tables": {TABLE_A: len(self.left), TABLE_B: len(self.right)},
                    "pairs": counts,
                    "notes": notes,
                },
            )
        return read_matching(out)


def token_span(tokens: Sequence[str], index: int) -> tuple[int, int]:
    """Character span of `tokens[index]` in `" ".join(tokens)`.

    Example:
        >>> token_span(["I", "spent", "my", "spring"], 3)
        (11, 17)
    """
    start = sum(len(t) + 1 for t in tokens[:index])
    return start, start + len(tokens[index])


def _lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, trailing blank lines dropped (a line not UTF-8 names `file:line`)."""
    from simlab.data.lines import iter_lines

    if not path.is_file():
        raise DataError(f"{path}: file not found; the WiC-TSV layout has <split>_examples/definitions/labels.txt.")
    lines = [line for _, line in iter_lines(path)]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _label(raw: str, where: str) -> int:
    value = raw.strip().upper()
    if value not in ("T", "F"):
        raise DataError(f"{where}: label {raw!r} is not T or F; write T (same sense, a match) or F.")
    return int(value == "T")


def _read_wic_tsv_split(src: Path, folder: str, prefix: str) -> list[tuple[tuple, tuple, int, str]]:
    """(context row, definition row, label, target word) per line of one WiC-TSV split."""
    base = src / folder
    examples = _lines(base / f"{prefix}_examples.txt")
    definitions = _lines(base / f"{prefix}_definitions.txt")
    labels = _lines(base / f"{prefix}_labels.txt")
    hyp_path = base / f"{prefix}_hypernyms.txt"
    hypernyms = _lines(hyp_path) if hyp_path.is_file() else [""] * len(examples)
    if not (len(examples) == len(definitions) == len(labels) == len(hypernyms)):
        raise DataError(
            f"{base}: {len(examples)} examples, {len(definitions)} definitions, {len(hypernyms)} hypernym lines "
            f"and {len(labels)} labels; the files must be line-aligned."
        )
    out = []
    for i, (ex, gloss, hyp, lab) in enumerate(zip(examples, definitions, hypernyms, labels), start=1):
        where = f"{base / (prefix + '_examples.txt')}:{i}"
        parts = ex.split("\t")
        if len(parts) != 3:
            raise DataError(f"{where}: {len(parts)} tab-separated columns; expected word, token index, context.")
        word, index, context = parts
        tokens = context.split(" ")
        if not index.strip().isdigit() or int(index) >= len(tokens):
            raise DataError(f"{where}: token index {index!r} is not a position in a {len(tokens)}-token context.")
        start, end = token_span(tokens, int(index))
        hyps = ", ".join(h.replace("_", " ") for h in hyp.split("\t") if h.strip())
        where_label = f"{base / (prefix + '_labels.txt')}:{i}"
        out.append(((context, word, start, end), (gloss.strip(), word, hyps), _label(lab, where_label), word))
    return out


def _balanced_val(split: dict[str, list[int]], words: list[str], labels: list[int]) -> dict[str, list[int]]:
    """Move whole words from val to train until val's labels are balanced (within one word's pairs).

    Only words all of whose val pairs carry the surplus label move, smallest first, so no word
    ends up on both sides. In WiC-TSV Training, words seen once are mostly positive and frequent
    words mostly negative, so a plain word split gives a skewed val; Development is balanced.
    """
    val = list(split["val"])
    groups: dict[str, list[int]] = {}
    for i in val:
        groups.setdefault(words[i], []).append(i)
    moved: list[int] = []
    for word in sorted(groups, key=lambda w: (len(groups[w]), val.index(groups[w][0]))):
        pos = sum(labels[i] for i in val if i not in moved)
        neg = len(val) - len(moved) - pos
        surplus = 1 if pos > neg else 0
        gap = abs(pos - neg)
        members = groups[word]
        if gap <= 1:
            break
        if all(labels[i] == surplus for i in members) and len(members) <= gap:
            moved.extend(members)
    gone = set(moved)
    return {"train": sorted(split["train"] + moved), "val": [i for i in val if i not in gone], "test": split["test"]}


def convert_wic_tsv(
    src: str | Path, out: str | Path, overwrite: bool = False, val_ratio: float = 0.1, seed: int = 42
) -> MatchingDataset:
    """Convert a WiC-TSV folder (see the module docstring) to the matching layout in `out`, atomically."""
    src, out = Path(src), Path(out)
    train = _read_wic_tsv_split(src, "Training", "train")
    dev = _read_wic_tsv_split(src, "Development", "dev")
    split = _balanced_val(
        group_split([r[3].lower() for r in train], val_ratio=val_ratio, test_ratio=0.0, seed=seed),
        [r[3].lower() for r in train],
        [r[2] for r in train],
    )
    b = _Builder()
    for name, idx in (("train", split["train"]), ("val", split["val"])):
        for i in idx:
            b.add(name, train[i][0], train[i][1], train[i][2])
    for left, right, label, _ in dev:
        b.add("test", left, right, label)
    notes = [
        f"val = {len(split['val'])} Training pairs held out by target word (val_ratio {val_ratio}, seed {seed}; "
        "words whose pairs all carry the over-represented label moved back to train until val is balanced, as "
        "Development is); "
        f"train = the other {len(split['train'])}; test = Development ({len(dev)} pairs). The Test split has no "
        "labels and is not written."
    ]
    return b.write(out, overwrite, src, notes)


def convert_wic(src: str | Path, out: str | Path, overwrite: bool = False) -> MatchingDataset:
    """Convert an original WiC folder (see the module docstring): both tables hold contexts."""
    src, out = Path(src), Path(out)
    b = _Builder(right_columns=CONTEXT_COLUMNS)
    for name, split in (("train", "train"), ("dev", "val"), ("test", "test")):
        data = src / name / f"{name}.data.txt"
        gold = src / name / f"{name}.gold.txt"
        for p in (data, gold):
            if not p.is_file():
                raise DataError(f"{p}: file not found; the WiC layout has <split>/<split>.data.txt and .gold.txt.")
        rows, golds = _lines(data), _lines(gold)
        if len(rows) != len(golds):
            raise DataError(f"{data}: {len(rows)} lines but {gold.name} has {len(golds)}; they must be line-aligned.")
        for i, (row, g) in enumerate(zip(rows, golds), start=1):
            parts = row.split("\t")
            if len(parts) != 5 or not re.fullmatch(r"\d+-\d+", parts[2]):
                raise DataError(f"{data}:{i}: expected word, POS, i-j token indices, sentence 1, sentence 2 (tabs).")
            word, _pos, idx, s1, s2 = parts
            sides = []
            for sent, j in zip((s1, s2), (int(x) for x in idx.split("-"))):
                tokens = sent.split(" ")
                if j >= len(tokens):
                    raise DataError(f"{data}:{i}: token index {j} is outside the {len(tokens)}-token sentence.")
                sides.append((sent, word, *token_span(tokens, j)))
            b.add(split, sides[0], sides[1], _label(g, f"{gold}:{i}"), right_prefix="e")
    return b.write(out, overwrite, src, ["val = the WiC dev split; a pair is two usages of one word (same sense?)."])


def _find_lemma(text: str, lemmas: Sequence[str]) -> tuple[str, int, int] | None:
    """The first synset lemma found in `text` as a word prefix (`rain` finds `rains`): (lemma, start, end)."""
    for lemma in sorted(lemmas, key=len, reverse=True):
        m = re.search(rf"\b{re.escape(lemma)}\w*", text, flags=re.IGNORECASE)
        if m:
            return lemma, m.start(), m.end()
    return None


def _read_oewn_yaml(path: Path) -> dict[str, dict]:
    """One Open English WordNet YAML file: synset id -> synset (a mapping), checked.

    Raises:
        DataError: the file is not UTF-8 or not YAML (names `file:line`), or it is not a mapping
            of synset ids to synsets.
    """
    import yaml

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 ({e.reason}); re-encode the file as UTF-8.") from None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DataError(
            f"{where}: not valid YAML ({problem}); an Open English WordNet file maps synset ids to synsets."
        ) from None
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: a YAML {type(data).__name__}, not a mapping synset id -> synset; an Open English WordNet "
            "file maps each synset id to its definition, example and members."
        )
    for sid, synset in data.items():
        if not isinstance(synset, dict):
            raise DataError(
                f"{path}: synset {sid!r} is a {type(synset).__name__}, not a mapping; a synset has the keys "
                "definition, example, members (lists)."
            )
        for key in ("definition", "example", "members", "hypernym"):
            if not isinstance(synset.get(key, []), list):
                value = synset[key]
                raise DataError(
                    f"{path}: synset {sid!r}: {key} is a {type(value).__name__} ({value!r}), not a list; write "
                    f"{key}: [...]."
                )
    return data


def build_oewn_pairs(
    src: str | Path,
    out: str | Path,
    overwrite: bool = False,
    negatives: int = 1,
    val_ratio: float = 0.1,
    test_ratio: float = 0.1,
    seed: int = 42,
    max_examples: int | None = None,
) -> MatchingDataset:
    """Pairs from Open English WordNet YAML files (`src/yaml/*.yaml` under `src`), see the module docstring.

    An example becomes a context when one of its synset's lemmas occurs in it (its span is the
    target); it is paired with its synset's definition (label 1) and with up to `negatives`
    definitions of other synsets sharing that lemma (label 0). Examples are split by lemma.
    """
    src, out = Path(src), Path(out)
    files = sorted((src / "src" / "yaml").glob("*.yaml")) or sorted(src.glob("*.yaml"))
    if not files:
        raise DataError(f"{src}: no *.yaml files (looked in {src / 'src' / 'yaml'} and {src}).")
    synsets: dict[str, dict] = {}
    for f in files:
        synsets |= _read_oewn_yaml(f)
    senses: dict[str, list[str]] = {}
    for sid, s in synsets.items():
        for lemma in s.get("members", []):
            senses.setdefault(lemma.lower(), []).append(sid)
    rng = random.Random(seed)
    items = []  # (lemma, context row, synset id)
    for sid, s in synsets.items():
        for ex in s.get("example", []):
            text = (ex.get("text", "") if isinstance(ex, dict) else str(ex)).strip()
            found = _find_lemma(text, s.get("members", [])) if text else None
            if found:
                lemma, start, end = found
                items.append((lemma.lower(), (text, lemma, start, end), sid))
    if not items:
        raise DataError(
            f"{src}: no usage example holds one of its synset's lemmas in {', '.join(f.name for f in files)} "
            f"({len(synsets)} synsets); give Open English WordNet files whose synsets have `example` and `members`."
        )
    if max_examples and len(items) > max_examples:
        items = rng.sample(items, max_examples)
    split = group_split([lemma for lemma, _, _ in items], val_ratio, test_ratio, seed)
    which = {i: name for name, idx in split.items() for i in idx}

    def definition(sid: str, lemma: str) -> tuple:
        s = synsets[sid]
        hyps = ", ".join(synsets[h]["members"][0] for h in s.get("hypernym", []) if h in synsets)
        return ("; ".join(s.get("definition", [])), lemma, hyps)

    b = _Builder()
    seen: set[tuple] = set()  # an example may occur in several synsets: keep the first label of a pair
    for i, (lemma, row, sid) in enumerate(items):
        if (row, definition(sid, lemma)) not in seen:
            seen.add((row, definition(sid, lemma)))
            b.add(which[i], row, definition(sid, lemma), 1)
    n_neg = 0
    for i, (lemma, row, sid) in enumerate(items):
        others = [o for o in senses.get(lemma, []) if o != sid]
        for o in rng.sample(others, min(negatives, len(others))):
            if (row, definition(o, lemma)) not in seen:
                seen.add((row, definition(o, lemma)))
                b.add(which[i], row, definition(o, lemma), 0)
                n_neg += 1
    notes = [
        f"{len(items)} examples whose synset lemma occurs in the text (positives), {n_neg} negatives "
        f"(definitions of other senses of the lemma, up to {negatives} each); split by lemma "
        f"(val_ratio {val_ratio}, test_ratio {test_ratio}, seed {seed})."
    ]
    return b.write(out, overwrite, src, notes)
