"""Writing the normalised matching layout: `convert_deepmatcher` and the CSV writers it shares.

`convert_deepmatcher` validates a DeepMatcher folder (`simlab.data.matching.read_deepmatcher`)
and writes the layout `simlab.data.matching.read_matching` reads back::

    tableA.csv         id,<field>,...       left records
    tableB.csv         id,<field>,...       right records
    pairs/train.csv    ltable_id,rtable_id,label
    pairs/val.csv      (same columns)
    pairs/test.csv     (same columns)
    meta.json          format name and version, source, table sizes, pair counts

`write_csv` and `write_table` are the writers of these files; the other converters to this
layout (`simlab.data.definitions`, `simlab.data.pca_filter`) use them too.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simlab.data.matching import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PAIR_COLUMNS,
    PAIRS_DIR,
    TABLE_A,
    TABLE_B,
    MatchingDataset,
    Records,
    read_deepmatcher,
)
from simlab.errors import DataError
from simlab.fsutil import staged_dir, write_json


def convert_deepmatcher(src: str | Path, out: str | Path, overwrite: bool = False) -> MatchingDataset:
    """Validate a DeepMatcher folder and write its normalised copy to `out`, atomically.

    Output: `tableA.csv`, `tableB.csv`, `pairs/{train,val,test}.csv` (UTF-8, `\\n` line ends,
    ids and labels stripped) and `meta.json` (format, version, source, pair counts).

    Returns:
        The dataset as read from `src`.

    Raises:
        DataError: `src` is invalid (see `read_deepmatcher`), or `out` exists and `overwrite`
            is False.
    """
    out = Path(out)
    refuse = DataError(f"{out} already exists; pass overwrite=True (`--overwrite`) or choose another folder.")
    if out.exists() and not overwrite:
        raise refuse
    data = read_deepmatcher(src)
    try:
        with staged_dir(out, overwrite=overwrite) as tmp:
            write_table(tmp / TABLE_A, data.left)
            write_table(tmp / TABLE_B, data.right)
            (tmp / PAIRS_DIR).mkdir()
            for split, pairs in data.pairs.items():
                rows = zip(pairs.left_ids, pairs.right_ids, pairs.labels)
                write_csv(tmp / PAIRS_DIR / f"{split}.csv", PAIR_COLUMNS, rows)
            meta = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "source": str(src),
                "tables": {TABLE_A: len(data.left), TABLE_B: len(data.right)},
                "pairs": {s: p.counts() for s, p in data.pairs.items()},
            }
            write_json(tmp / "meta.json", meta)
    except FileExistsError:  # `out` appeared while we were writing
        raise refuse from None
    return data


def write_table(path: Path, records: Records) -> None:
    """Write `records` as a CSV table: an `id` column, then one column per field."""
    header = ("id", *records.fields)
    write_csv(path, header, zip(records.ids, *records.fields.values()))


def write_csv(path: Path, header: Sequence[str], rows: Any) -> None:
    """Write a header line and `rows` as UTF-8 CSV with `\\n` line ends."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
