"""Records with several text fields, and what says which of them match (workload A).

Two ways to say what matches:

- **Group ids**: one records file (CSV or JSONL) whose `group` column gives each record a
  group; records of one group match. Pairs are sampled later (`simlab.data.sampling`), and a
  train/val/test split comes from `group_split` when the data gives none.
- **Labelled pairs** (DeepMatcher layout): two tables and labelled pair files per split::

      tableA.csv    id,<field>,<field>,...          left records
      tableB.csv    id,<field>,<field>,...          right records
      train.csv     ltable_id,rtable_id,label        label 1 = match, 0 = non-match
      valid.csv     (same columns)                   becomes split "val"
      test.csv      (same columns)

`simlab.data.matching_convert.convert_deepmatcher` validates such a folder and writes the
normalised layout that `read_matching` reads back (tables as above, `pairs/train.csv`,
`pairs/val.csv`, `pairs/test.csv` and a `meta.json` with the format name and version).
CSV and JSONL files are read row by row by `simlab.data.table_rows`.

Every reader error is a `DataError` naming `file:line` (or the file and the columns found)
and the fix.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from simlab.data.table_rows import csv_rows, jsonl_rows
from simlab.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
DEEPMATCHER_FILES = {"train": "train.csv", "val": "valid.csv", "test": "test.csv"}
PAIR_COLUMNS = ("ltable_id", "rtable_id", "label")
TABLE_A, TABLE_B, PAIRS_DIR = "tableA.csv", "tableB.csv", "pairs"
RECORDS_FILES = ("records.csv", "records.jsonl")
FORMAT_NAME, FORMAT_VERSION = "simlab-matching", 1


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class Records:
    """Records with named text fields: parallel lists, one entry per record.

    Attributes:
        ids: Unique record ids.
        fields: Field name -> one value per record (`""` when a record lacks the field). An
            image path is just another field.
        groups: Group id per record (records of one group match), or None when matches are
            given as labelled pairs.
        source: Where the records came from (a file path), for messages.
    """

    ids: list[str]
    fields: dict[str, list[str]]
    groups: list[str] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name, values in self.fields.items():
            if len(values) != n:
                raise DataError(f"{self.source or 'Records'}: field {name!r} has {len(values)} values for {n} ids.")
        if self.groups is not None and len(self.groups) != n:
            raise DataError(f"{self.source or 'Records'}: {len(self.groups)} group ids for {n} records.")
        if len(set(self.ids)) != n:
            seen: set[str] = set()
            dup = next(i for i in self.ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise DataError(f"{self.source or 'Records'}: id {dup!r} occurs more than once; ids must be unique.")

    def __len__(self) -> int:
        return len(self.ids)

    def text(self, i: int, fields: list[str], sep: str = " ") -> str:
        """Record `i`'s field values joined by `sep`: spaces skip empty fields; another separator (the
        `FIELD_SEP` of `simlab.models.fields`) keeps them as empty strings, so each field keeps its position."""
        if sep == " ":
            return " ".join(v for f in fields if (v := self.fields[f][i].strip()))
        return sep.join(self.fields[f][i].strip().replace(sep, " ") for f in fields)

    @cached_property
    def position(self) -> dict[str, int]:
        """Record id -> index."""
        return {rid: i for i, rid in enumerate(self.ids)}

    def texts(self, fields: Sequence[str] | None = None, sep: str = " ") -> list[str]:
        """One string per record: the non-empty values of `fields` (default: all) joined by `sep`.

        Raises:
            DataError: a field name is unknown (the message lists the fields there are).
        """
        names = list(self.fields) if fields is None else list(fields)
        for name in names:
            if name not in self.fields:
                raise DataError(f"{self.source or 'Records'}: no field {name!r}; fields are {', '.join(self.fields)}.")
        columns = [self.fields[name] for name in names]
        return [sep.join(v for v in values if v) for values in zip(*columns)] if columns else [""] * len(self)

    def subset(self, indices: Sequence[int]) -> Records:
        """The records at `indices`, in that order."""
        return Records(
            [self.ids[i] for i in indices],
            {name: [values[i] for i in indices] for name, values in self.fields.items()},
            None if self.groups is None else [self.groups[i] for i in indices],
            self.source,
        )


@dataclass(frozen=True)
class LabelledPairs:
    """Labelled (left id, right id) pairs of one split; label 1 = match, 0 = non-match."""

    left_ids: list[str]
    right_ids: list[str]
    labels: list[int]
    split: str
    source: str = ""

    def __post_init__(self) -> None:
        if not (len(self.left_ids) == len(self.right_ids) == len(self.labels)):
            raise DataError(
                f"{self.source or 'LabelledPairs'}: {len(self.left_ids)} left ids, {len(self.right_ids)} "
                f"right ids and {len(self.labels)} labels; the three lists must have the same length."
            )
        bad = next((y for y in self.labels if y not in (0, 1)), None)
        if bad is not None:
            raise DataError(f"{self.source or 'LabelledPairs'}: label {bad!r} is not 0 or 1.")

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """{"pos": number of label-1 pairs, "neg": number of label-0 pairs}."""
        pos = sum(self.labels)
        return {"pos": pos, "neg": len(self.labels) - pos}


@dataclass(frozen=True)
class MatchingDataset:
    """Left and right records and the labelled pairs per split.

    For the group-id layout `left` and `right` are the same `Records` (with `groups`) and
    `pairs` is empty: pairs are sampled by `simlab.data.sampling.sample_pairs`.
    """

    name: str
    left: Records
    right: Records
    pairs: Mapping[str, LabelledPairs] = field(default_factory=dict)
    source: str = ""

    @property
    def kind(self) -> str:
        """`"pairs"` (labelled pairs given) or `"groups"` (group ids given)."""
        return "pairs" if self.pairs else "groups"


# ---------------------------------------------------------------- reading records


def read_records(
    path: str | Path,
    id_field: str = "id",
    group_field: str | None = None,
    fields: Sequence[str] | None = None,
    image_field: str | None = None,
) -> Records:
    """Read records from a CSV file (with a header) or a JSONL file (`.jsonl`, one object a line).

    Args:
        path: The file; UTF-8, a leading BOM is ignored.
        id_field: Column (key) holding the unique record id.
        group_field: Column holding the group id, or None (no groups).
        fields: Text fields to keep, in this order; None keeps every column except the id
            and group columns. JSON numbers become strings; missing or null values become `""`.
        image_field: A column holding image paths, relative to the file's folder (or absolute);
            they are made absolute, and each must exist (an empty value: no image).

    Raises:
        DataError: the file is missing or malformed; the id, group or a named field column is
            missing (the message lists the columns found); an id is empty or repeated, a group
            id is empty (messages name `file:line`).
    """
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        columns, rows = jsonl_rows(path)
    else:
        columns, rows = csv_rows(path)
    for key, what in ((id_field, "id_field"), (group_field, "group_field"), (image_field, "image_field")):
        if key is not None and key not in columns:
            raise DataError(
                f"{path}: no `{key}` column; columns found: {', '.join(columns) or '(none)'}. "
                f"Pass {what}=<one of them>, or add the column."
            )
    if fields is None:
        fields = [c for c in columns if c not in (id_field, group_field)]
    else:
        fields = list(fields)
        missing = [f for f in fields if f not in columns]
        if missing:
            raise DataError(
                f"{path}: field(s) {', '.join(missing)} not found; columns found: {', '.join(columns)}. "
                "Add the column(s), or choose fields among those found."
            )
    fields = [f for f in fields if f != image_field]  # the image column comes last, as a path
    ids: list[str] = []
    values: dict[str, list[str]] = {f: [] for f in [*fields, *([image_field] if image_field else [])]}
    groups: list[str] | None = None if group_field is None else []
    seen: dict[str, int] = {}
    for lineno, row in rows:
        where = f"{path}:{lineno}"
        rid = row.get(id_field, "").strip()
        if not rid:
            raise DataError(f"{where}: empty `{id_field}`; every record needs a unique id.")
        if rid in seen:
            raise DataError(f"{where}: id {rid!r} already appeared on line {seen[rid]}; ids must be unique.")
        seen[rid] = lineno
        ids.append(rid)
        for f in fields:
            values[f].append(row.get(f, ""))
        if image_field is not None:
            values[image_field].append(_image_path(path, where, row.get(image_field, "").strip(), image_field))
        if groups is not None:
            group = row.get(group_field, "").strip()  # type: ignore[arg-type]
            if not group:
                raise DataError(
                    f"{where}: empty `{group_field}`; give every record a group id "
                    "(a record that matches nothing gets a group of its own)."
                )
            groups.append(group)
    return Records(ids, values, groups, str(path))


def _image_path(path: Path, where: str, value: str, field: str) -> str:
    """The absolute path of a record's image (`""` stays: no image); it must exist."""
    if not value:
        return ""
    image = (path.parent / value).resolve()
    if not image.is_file():
        raise DataError(f"{where}: {field} {value!r}: no such image file ({image}); fix the path or leave it empty.")
    return str(image)


# ---------------------------------------------------------------- labelled pairs


def read_pairs(path: Path, split: str, left: Records, right: Records, left_file: str, right_file: str) -> LabelledPairs:
    columns, rows = csv_rows(path)
    missing = [c for c in PAIR_COLUMNS if c not in columns]
    if missing:
        raise DataError(
            f"{path}: no {', '.join(f'`{c}`' for c in missing)} column; columns found: {', '.join(columns)}. "
            f"A pair file needs the columns {', '.join(PAIR_COLUMNS)}."
        )
    lefts, rights, labels = [], [], []
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    for lineno, row in rows:
        where = f"{path}:{lineno}"
        lid, rid, raw = row["ltable_id"].strip(), row["rtable_id"].strip(), row["label"].strip()
        for value, col, records, file in (
            (lid, "ltable_id", left, left_file),
            (rid, "rtable_id", right, right_file),
        ):
            if value not in records.position:
                raise DataError(
                    f"{where}: {col} {value!r} is not an id in {file} ({len(records)} records); "
                    f"fix the id or add the record to {file}."
                )
        label = _parse_label(raw, where)
        old = seen.get((lid, rid))
        if old is not None and old[0] != label:
            raise DataError(
                f"{where}: pair ({lid!r}, {rid!r}) is labelled {label}, but line {old[1]} labels it "
                f"{old[0]}; keep one label per pair."
            )
        seen[(lid, rid)] = (label, lineno)
        lefts.append(lid)
        rights.append(rid)
        labels.append(label)
    return LabelledPairs(lefts, rights, labels, split, str(path))


def _parse_label(raw: str, where: str) -> int:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if value in (0.0, 1.0):
        return int(value)
    raise DataError(f"{where}: label {raw!r} is not 0 or 1; write 1 for a match and 0 for a non-match.")


def read_deepmatcher(folder: str | Path, image_field: str | None = None) -> MatchingDataset:
    """Read a DeepMatcher folder: tableA.csv, tableB.csv, train.csv, valid.csv, test.csv.

    The tables are read with `read_records` (id column `id`, every other column a field);
    `valid.csv` becomes split `"val"`.

    Raises:
        DataError: a file is missing, the tables' columns differ, a pair names an unknown record,
            a label is not 0/1, or a pair is labelled twice with different labels (messages name
            `file:line`).
    """
    folder = Path(folder)
    files = [TABLE_A, TABLE_B, *DEEPMATCHER_FILES.values()]
    data = _read_tables_and_pairs(folder, {s: folder / f for s, f in DEEPMATCHER_FILES.items()}, files, image_field)
    check_same_columns(data)
    return data


def check_same_columns(data: MatchingDataset) -> None:
    """Both tables hold the same fields (a record's text is built alike on both sides), else a `DataError`."""
    left, right = list(data.left.fields), list(data.right.fields)
    if set(left) != set(right):
        only_a, only_b = ", ".join(c for c in left if c not in right), ", ".join(c for c in right if c not in left)
        raise DataError(
            f"{data.left.source} and {data.right.source}: the tables must have the same columns; only in "
            f"{TABLE_A}: {only_a or '(none)'}; only in {TABLE_B}: {only_b or '(none)'}. "
            "Rename or add the columns so both tables have the same ones."
        )


def _check_rows(parts: Mapping[Path, Records | LabelledPairs]) -> None:
    for path in (path for path, rows in parts.items() if not len(rows)):
        raise DataError(f"{path}: no rows below the header; every table and pair file needs at least one.")


def _read_tables_and_pairs(
    folder: Path, pair_files: dict[str, Path], files: list[str], image_field: str | None = None
) -> MatchingDataset:
    for path in [folder / TABLE_A, folder / TABLE_B, *pair_files.values()]:
        if not path.is_file():
            raise DataError(f"{folder}: missing {path.relative_to(folder)}; the layout needs {', '.join(files)}.")
    left = read_records(folder / TABLE_A, image_field=image_field)
    right = read_records(folder / TABLE_B, image_field=image_field)
    _check_rows({folder / TABLE_A: left, folder / TABLE_B: right})
    pairs = {s: read_pairs(p, s, left, right, TABLE_A, TABLE_B) for s, p in pair_files.items()}
    _check_rows({pair_files[s]: p for s, p in pairs.items()})
    return MatchingDataset(folder.name, left, right, pairs, str(folder))


def read_matching(
    path: str | Path,
    *,
    id_field: str = "id",
    group_field: str = "group",
    fields: Sequence[str] | None = None,
    image_field: str | None = None,
) -> MatchingDataset:
    """Read a matching dataset in any supported layout.

    - a records file (CSV or JSONL), or a folder holding `records.csv` / `records.jsonl`:
      group-id layout, read with `read_records(path, id_field, group_field, fields)`;
    - a folder written by `convert_deepmatcher` (`pairs/<split>.csv`);
    - a raw DeepMatcher folder (`train.csv`, `valid.csv`, `test.csv`).

    Raises:
        DataError: nothing recognisable at `path` (the message lists the layouts looked for),
            or the layout's reader fails.
    """
    path = Path(path)
    if path.is_file():
        records = read_records(path, id_field, group_field, fields, image_field)
        if not len(records):
            raise DataError(f"{path}: no records below the header; add one line per record.")
        return MatchingDataset(path.stem, records, records, {}, str(path))
    if path.is_dir():
        if (path / PAIRS_DIR).is_dir():
            _check_meta(path / "meta.json")
            pair_files = {s: path / PAIRS_DIR / f"{s}.csv" for s in SPLITS}
            files = [TABLE_A, TABLE_B, *(f"{PAIRS_DIR}/{s}.csv" for s in SPLITS)]
            return _read_tables_and_pairs(path, pair_files, files, image_field)
        if (path / DEEPMATCHER_FILES["train"]).is_file():
            return read_deepmatcher(path, image_field)
        for name in RECORDS_FILES:
            if (path / name).is_file():
                return read_matching(
                    path / name, id_field=id_field, group_field=group_field, fields=fields, image_field=image_field
                )
    raise DataError(
        f"{path}: not a matching dataset. Expected a records file (CSV/JSONL with `{id_field}` and "
        f"`{group_field}` columns), a folder with {' or '.join(RECORDS_FILES)}, a DeepMatcher folder "
        f"({TABLE_A}, {TABLE_B}, {', '.join(DEEPMATCHER_FILES.values())}), or a converted folder "
        f"({TABLE_A}, {TABLE_B}, {PAIRS_DIR}/<split>.csv)."
    )


def groups_from_pairs(data: MatchingDataset, splits: Sequence[str] = SPLITS) -> Records:
    """Both tables as one `Records` whose groups are the connected components of the matches.

    This turns a labelled-pair dataset into the group-id layout, so that group splits and
    pair sampling apply to it. Ids become `A:<id>` (left table) and `B:<id>` (right table);
    fields are the union of both tables' fields (`""` where a table lacks one). Records in no
    label-1 pair of `splits` form groups of one; a group is named after its first record.
    """
    ids = [f"A:{i}" for i in data.left.ids] + [f"B:{i}" for i in data.right.ids]
    names = list(dict.fromkeys([*data.left.fields, *data.right.fields]))
    fields = {
        f: data.left.fields.get(f, [""] * len(data.left)) + data.right.fields.get(f, [""] * len(data.right))
        for f in names
    }
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    offset = len(data.left)
    for split in splits:
        pairs = data.pairs.get(split)
        if pairs is None:
            raise DataError(f"{data.source}: no split {split!r}; splits are {', '.join(data.pairs) or '(none)'}.")
        for lid, rid, label in zip(pairs.left_ids, pairs.right_ids, pairs.labels):
            if label == 1:
                a, b = root(data.left.position[lid]), root(offset + data.right.position[rid])
                parent[max(a, b)] = min(a, b)
    groups = [ids[root(i)] for i in range(len(ids))]
    return Records(ids, fields, groups, data.source)


def _check_meta(meta_path: Path) -> None:
    """A converted folder's `meta.json`, when present, must be a version this code reads."""
    if not meta_path.is_file():
        return
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{meta_path}:{e.lineno}: invalid JSON ({e.msg}).") from None
    meta = meta if isinstance(meta, dict) else {}
    version = meta.get("version")
    if meta.get("format") != FORMAT_NAME or not isinstance(version, int) or version > FORMAT_VERSION:
        raise DataError(
            f"{meta_path}: format {meta.get('format')!r} version {version!r}; this simlab reads "
            f"{FORMAT_NAME!r} up to version {FORMAT_VERSION}; convert the source again "
            "(convert_deepmatcher)."
        )


# ---------------------------------------------------------------- splits


def group_split(groups: Sequence[str], val_ratio: float, test_ratio: float, seed: int) -> dict[str, list[int]]:
    """Split record indices into train/val/test so that no group is on two sides.

    Target sizes are `round(n * test_ratio)` and `round(n * val_ratio)` records, train gets the
    rest. Groups are shuffled with `seed`, then placed largest first, each into the split that
    is furthest below its target (ties: train, val, test). Each split ends within one group's
    size of its target; with groups of one record the sizes are exact.

    Args:
        groups: The group id of every record.
        val_ratio: Share of records for validation, in [0, 1).
        test_ratio: Share of records for test, in [0, 1); `val_ratio + test_ratio < 1`.
        seed: Random seed; the same seed gives the same split.

    Returns:
        `{"train": [...], "val": [...], "test": [...]}`, record indices in ascending order.

    Raises:
        ConfigError: a ratio is out of range.

    Example:
        >>> group_split(["a", "a", "b", "c"], val_ratio=0.25, test_ratio=0.25, seed=0)["train"]
        [0, 1]
    """
    for name, value in (("val_ratio", val_ratio), ("test_ratio", test_ratio)):
        if not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ConfigError(f"{name}={value!r} must be a number in [0, 1).")
    if val_ratio + test_ratio >= 1:
        raise ConfigError(
            f"val_ratio={val_ratio} + test_ratio={test_ratio} leave nothing for training; their sum must be < 1."
        )
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    order = list(members)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda g: -len(members[g]))  # stable: the shuffle breaks size ties
    n = len(groups)
    targets = {"test": round(n * test_ratio), "val": round(n * val_ratio)}
    targets = {"train": n - targets["test"] - targets["val"], **targets}
    filled = dict.fromkeys(SPLITS, 0)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for g in order:
        split = max(SPLITS, key=lambda s: targets[s] - filled[s])  # first of equal deficits wins
        out[split].extend(members[g])
        filled[split] += len(members[g])
    return {s: sorted(out[s]) for s in SPLITS}
