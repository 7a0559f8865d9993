"""Multi-label data: texts or images with a set of labels (or a probability per label) each.

Layouts `read_items` accepts (`data.path`):

- one JSONL or CSV file: a row has an id, a text or an image path, and labels; images are
  relative to the file's folder. A `split` column (train/val/test) gives the split; without it
  the rows are split by ratio and seed (`split_items`).
- a folder with `train.*`, `val.*` (or `dev.*`) and `test.*` files (`.jsonl` or `.csv`).
- an image folder with `labels.csv` (image path relative to the folder, labels).

Labels are a JSON list (`["even", "prime"]`), one string joined by `label_sep` (`even|prime`),
or soft labels, a JSON object label -> probability (`{"even": 1.0, "prime": 0.3}`). A row
whose labels cannot be parsed, whose image file is missing, or that lacks its text fails with
a `DataError` naming `file:line`.

The label vocabulary comes from the training split; labels seen only in val/test are
reported (`Splits.notes`) and dropped from those targets.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simlab.errors import DataError

if TYPE_CHECKING:
    from simlab.config import MultilabelDataConfig

log = logging.getLogger("simlab")

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "dev": "val", "validation": "val", "test": "test"}
IMAGE_FOLDER_FILE = "labels.csv"


@dataclass
class Items:
    """Labelled items of one kind (`text` or `image`): ids, inputs, and per-item label weights.

    `labels[i]` maps a label to its probability (1.0 for a hard label); `split[i]` is the
    row's given split or "" when the file gives none.
    """

    kind: str
    ids: list[str]
    inputs: list[str]  # texts, or absolute image paths
    labels: list[dict[str, float]]
    split: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx) -> Items:
        idx = list(idx)
        return Items(
            self.kind,
            [self.ids[i] for i in idx],
            [self.inputs[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.split[i] for i in idx],
            self.source,
        )

    def targets(self, vocab: list[str]) -> np.ndarray:
        """(n_items, n_labels) float32 probabilities over `vocab`; labels outside it are dropped."""
        pos = {lab: j for j, lab in enumerate(vocab)}
        y = np.zeros((len(self), len(vocab)), dtype=np.float32)
        for i, labs in enumerate(self.labels):
            for lab, p in labs.items():
                if lab in pos:
                    y[i, pos[lab]] = p
        return y

    @property
    def soft(self) -> bool:
        """True when some label probability is strictly between 0 and 1."""
        return any(0.0 < p < 1.0 for labs in self.labels for p in labs.values())


@dataclass
class Splits:
    """train/val/test `Items`, the label vocabulary (from train), and notes for the report."""

    train: Items
    val: Items
    test: Items
    vocab: list[str]
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Items:
        return getattr(self, name)


# --------------------------------------------------------------------------- parsing


def parse_labels(value: Any, sep: str, where: str) -> dict[str, float]:
    """One row's labels as label -> probability; see the module docstring for the accepted forms.

    Raises:
        DataError: not a list, string or object; invalid JSON; a probability outside [0, 1].
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{")):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{where}: labels {text!r} are not valid JSON ({e.msg} at column {e.colno}); write a JSON list "
                    f'(["a", "b"]), an object ({{"a": 0.7}}), or labels joined by {sep!r}.'
                ) from None
        else:
            return {lab.strip(): 1.0 for lab in text.split(sep) if lab.strip()}
    if isinstance(value, list):
        if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
            raise DataError(f"{where}: labels {value!r}: a label list holds strings (or integers) only.")
        return {str(v).strip(): 1.0 for v in value if str(v).strip()}
    if isinstance(value, dict):
        out = {}
        for k, p in value.items():
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
                raise DataError(f"{where}: label {k!r} has probability {p!r}; soft labels are numbers in [0, 1].")
            out[str(k)] = float(p)
        return out
    if value is None:
        return {}
    raise DataError(
        f"{where}: labels {value!r} ({type(value).__name__}) are not a list, a {sep!r}-joined string or an object "
        "label -> probability."
    )


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(`file:line`, row) of a JSONL or CSV file."""
    from simlab.data.lines import iter_jsonl

    if path.suffix.lower() in (".jsonl", ".json"):
        return list(iter_jsonl(path, "item"))
    if path.suffix.lower() in (".csv", ".tsv"):
        from simlab.data.table_rows import csv_rows

        _, rows = csv_rows(path, "\t" if path.suffix.lower() == ".tsv" else ",")  # a short or long row names its line
        return [(f"{path}:{lineno}", row) for lineno, row in rows]
    raise DataError(f"{path}: unknown file type {path.suffix!r}; use .jsonl, .csv or .tsv.")


def _kind(cfg: MultilabelDataConfig, rows: list[tuple[str, dict]], path: Path) -> str:
    if cfg.input != "auto":
        return cfg.input
    if rows and cfg.image_field in rows[0][1]:
        return "image"
    if rows and cfg.text_field in rows[0][1]:
        return "text"
    where = rows[0][0] if rows else str(path)
    raise DataError(
        f"{where}: a row has neither a {cfg.text_field!r} nor an {cfg.image_field!r} field; set "
        "data.text_field or data.image_field to the column holding the input."
    )


def _item_id(value: Any, field: str, where: str, seen: dict[str, str]) -> str:
    """A row's id as a string ("" when it has none), unique in its file (`seen`: id -> line)."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DataError(
            f"{where}: id {value!r} ({type(value).__name__}) in field {field!r}; an id is a string or a number."
        )
    rid = str(value).strip()
    if rid in seen:
        raise DataError(f"{where}: id {rid!r} already appeared on line {seen[rid]}; ids must be unique.")
    seen[rid] = where.rsplit(":", 1)[1]
    return rid


def read_file(path: Path, cfg: MultilabelDataConfig, split: str = "") -> Items:
    """The items of one JSONL/CSV file (`split` forces every row's split)."""
    path = Path(path)
    rows = _rows(path)
    if not rows:
        raise DataError(f"{path}: no rows.")
    kind = _kind(cfg, rows, path)
    column = cfg.image_field if kind == "image" else cfg.text_field
    ids, inputs, labels, splits = [], [], [], []
    seen: dict[str, str] = {}
    for n, (where, row) in enumerate(rows):
        value = row.get(column)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: no {kind} in field {column!r}; every row needs one.")
        if kind == "image":
            img = Path(value)
            img = img if img.is_absolute() else path.parent / img
            if not img.is_file():
                raise DataError(f"{where}: image file {value!r} not found (looked at {img}).")
            value = str(img)
        if cfg.labels_field not in row:
            raise DataError(f"{where}: no {cfg.labels_field!r} field; set data.labels_field to the labels column.")
        labels.append(parse_labels(row[cfg.labels_field], cfg.label_sep, where))
        raw_split = str(row.get(cfg.split_field) or split).strip().lower()
        if raw_split and raw_split not in SPLIT_ALIASES:
            raise DataError(f"{where}: split {raw_split!r} is not one of {', '.join(sorted(SPLIT_ALIASES))}.")
        splits.append(SPLIT_ALIASES.get(raw_split, ""))
        ids.append(_item_id(row.get(cfg.id_field), cfg.id_field, where, seen) or f"{path.stem}:{n + 1}")
        inputs.append(value)
    return Items(kind, ids, inputs, labels, splits, str(path))


def _split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for stem, split in SPLIT_ALIASES.items():
        for ext in (".jsonl", ".csv", ".tsv"):
            if (folder / f"{stem}{ext}").is_file() and split not in found:
                found[split] = folder / f"{stem}{ext}"
    return found


def read_items(cfg: MultilabelDataConfig) -> Items:
    """All items of `cfg.path` (see the module docstring for the layouts)."""
    path = Path(cfg.path)
    if path.is_file():
        return read_file(path, cfg)
    if not path.is_dir():
        raise DataError(f"data.path: {path} does not exist; give a JSONL/CSV file or a folder.")
    files = _split_files(path)
    if files:
        parts = [read_file(p, cfg, split) for split, p in files.items()]
        kinds = {p.kind for p in parts}
        if len(kinds) > 1:
            raise DataError(f"{path}: split files mix texts and images ({', '.join(p.source for p in parts)}).")
        return Items(
            parts[0].kind,
            [i for p in parts for i in p.ids],
            [x for p in parts for x in p.inputs],
            [lab for p in parts for lab in p.labels],
            [s for p in parts for s in p.split],
            str(path),
        )
    if (path / IMAGE_FOLDER_FILE).is_file():
        return read_file(path / IMAGE_FOLDER_FILE, cfg.model_copy(update={"input": "image"}))
    raise DataError(
        f"{path}: no train.jsonl/.csv (with val and test), nor {IMAGE_FOLDER_FILE}; give a file or such a folder."
    )


# --------------------------------------------------------------------------- splitting


def split_items(items: Items, val_ratio: float, test_ratio: float, seed: int) -> tuple[dict[str, list[int]], list[str]]:
    """Indices of train/val/test and warnings: the given splits, else iterative stratification.

    Iterative stratification (Sechidis et al. 2011, the `iterative-stratification` package)
    keeps every label's share about equal across splits, so rare labels reach val and test when
    they have enough items; a label with too few items for every split is named in a warning.
    """
    n = len(items)
    if any(items.split):
        given = {s: [i for i in range(n) if items.split[i] == s] for s in SPLITS}
        unassigned = sum(1 for s in items.split if not s)
        if unassigned:
            raise DataError(f"{items.source}: {unassigned} rows have no split while others have one; give all or none.")
        missing = [s for s in SPLITS if not given[s]]
        if missing:
            raise DataError(f"{items.source}: no row in split {', '.join(missing)}; every split needs rows.")
        return given, []
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    vocab = sorted({lab for labs in items.labels for lab in labs})
    y = (items.targets(vocab) >= 0.5).astype(int)
    idx = np.arange(n)
    out: dict[str, list[int]] = {}
    rest = idx
    for name, ratio, base in (("test", test_ratio, n), ("val", val_ratio, n)):
        share = ratio * base / len(rest)
        if ratio <= 0 or round(share * len(rest)) < 1:
            raise DataError(
                f"{items.source}: data.{name}_ratio {ratio} leaves no {name} item among {n}; raise it or give a "
                f"'split' column."
            )
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed)
        keep, take = next(splitter.split(rest.reshape(-1, 1), y[rest]))
        out[name] = sorted(rest[take].tolist())
        rest = rest[keep]
    out["train"] = sorted(rest.tolist())
    warnings = []
    for j, lab in enumerate(vocab):
        absent = [s for s in SPLITS if not y[out[s], j].any()]
        if absent:
            warnings.append(
                f"label {lab!r} ({int(y[:, j].sum())} items) is in no {'/'.join(absent)} item: too rare to reach "
                "every split."
            )
    return out, warnings


def make_splits(items: Items, cfg: MultilabelDataConfig) -> Splits:
    """Split `items`, take the label vocabulary from train, and report labels unseen in train."""
    idx, warnings = split_items(items, cfg.val_ratio, cfg.test_ratio, cfg.seed)
    for w in warnings:
        log.warning("warning: %s", w)
    parts = {s: items.subset(idx[s]) for s in SPLITS}
    vocab = sorted({lab for labs in parts["train"].labels for lab, p in labs.items() if p > 0})
    if not vocab:
        raise DataError(f"{items.source}: the training split has no label; nothing to learn.")
    how = "given in the data" if any(items.split) else f"iterative stratification, seed {cfg.seed}"
    notes = [
        f"{len(items)} {items.kind} items: {len(parts['train'])} train, {len(parts['val'])} val, "
        f"{len(parts['test'])} test ({how}); {len(vocab)} labels from train"
        + (", soft labels" if items.soft else "")
        + "."
    ]
    notes += [f"Split warning: {w}" for w in warnings]
    for s in ("val", "test"):
        unknown: dict[str, int] = {}
        for labs in parts[s].labels:
            for lab in labs:
                if lab not in vocab:
                    unknown[lab] = unknown.get(lab, 0) + 1
        if unknown:
            text = ", ".join(f"{k} ({v})" for k, v in sorted(unknown.items()))
            log.warning("warning: %s labels not in train, dropped: %s", s, text)
            notes.append(f"{s} labels not seen in train (dropped from its targets): {text}.")
    return Splits(parts["train"], parts["val"], parts["test"], vocab, notes)


# --------------------------------------------------------------------------- images


def load_images(paths: list[str], size: int) -> np.ndarray:
    """(n, 3, size, size) uint8 RGB pixels of image files, resized with PIL (bilinear).

    Raises:
        DataError: a file is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"{p}: not a readable image ({e}).") from None
        out[i] = np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
    return out
