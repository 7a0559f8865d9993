"""Load any supported dataset folder, and convert raw collections to the BEIR layout.

`load_collection` recognises a folder by its marker file (first match wins):

- BEIR: `corpus.jsonl` (`simlab.data.beir`)
- MS MARCO: `collection.tsv` (`simlab.data.msmarco`)
- Glasgow / SMART: `cran.all.1400`, `CISI.ALL`, `cacm.all` or `MED.ALL` (`simlab.data.glasgow`)
- SPLADE toy data: `full_collection/raw.tsv` (`simlab.data.splade_toy`)

`CONVERTERS` maps a converter name to `convert_<name>(src, out, overwrite) -> Collection`;
`convert` dispatches through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simlab.data.beir import CORPUS_FILE, read_beir
from simlab.data.glasgow import SPECS, convert_glasgow, detect_glasgow, read_glasgow
from simlab.data.msmarco import COLLECTION_FILE, read_msmarco
from simlab.data.splade_toy import MARKER as SPLADE_TOY_MARKER
from simlab.data.splade_toy import read_splade_toy
from simlab.errors import ConfigError, DataError
from simlab.records import Collection


@dataclass(frozen=True)
class Layout:
    """A dataset layout: its name, the marker files that identify it, and its reader."""

    name: str
    markers: str
    detect: Callable[[Path], bool]
    read: Callable[[Path], Collection]


LAYOUTS: tuple[Layout, ...] = (
    Layout("BEIR", CORPUS_FILE, lambda p: (p / CORPUS_FILE).is_file(), read_beir),
    Layout("MS MARCO", COLLECTION_FILE, lambda p: (p / COLLECTION_FILE).is_file(), read_msmarco),
    Layout(
        "Glasgow/SMART",
        " or ".join(spec.docs for spec in SPECS),
        lambda p: detect_glasgow(p) is not None,
        read_glasgow,
    ),
    Layout("SPLADE toy", SPLADE_TOY_MARKER, lambda p: (p / SPLADE_TOY_MARKER).is_file(), read_splade_toy),
)


def _convert_deepmatcher(src: Path, out: Path, overwrite: bool):
    from simlab.data.matching import convert_deepmatcher

    return convert_deepmatcher(src, out, overwrite)


CONVERTERS: dict[str, Callable[[Path, Path, bool], Any]] = {
    "glasgow": convert_glasgow,  # SMART test collections -> BEIR retrieval layout
    "deepmatcher": _convert_deepmatcher,  # tableA/tableB + labelled pair files -> simlab matching layout
}


def describe(dataset: Any) -> list[str]:
    """Lines summarising a converted dataset (a retrieval `Collection` or a `MatchingDataset`)."""
    if isinstance(dataset, Collection):
        qrels = {s: len(q) for s, q in dataset.qrels.items()}
        lines = [f"{len(dataset.corpus)} documents, {len(dataset.queries)} queries, qrels {qrels}"]
        return lines + [f"note: {n}" for n in dataset.notes]
    pairs = {s: p.counts() for s, p in dataset.pairs.items()}
    return [f"tables {len(dataset.left)} x {len(dataset.right)} records; pairs {pairs}"]


def load_collection(path: Path) -> Collection:
    """Read the dataset in folder `path`, whatever its layout.

    Raises:
        DataError: `path` is not a folder, no layout's marker file is in it (the message lists
            the layouts looked for), or the detected reader fails.
    """
    path = Path(path)
    looked_for = "; ".join(f"{layout.name} ({layout.markers})" for layout in LAYOUTS)
    if not path.is_dir():
        raise DataError(f"{path}: not a folder; a dataset is a folder in one of these layouts: {looked_for}.")
    for layout in LAYOUTS:
        if layout.detect(path):
            return layout.read(path)
    raise DataError(f"{path}: no known dataset layout; looked for {looked_for}.")


def convert(kind: str, src: Path, out: Path, overwrite: bool = False) -> Any:
    """Convert the raw dataset in `src` to the BEIR layout in `out` with converter `kind`.

    Raises:
        ConfigError: `kind` is not a key of `CONVERTERS` (the message lists the valid names).
        DataError: the source is unreadable, or `out` exists and `overwrite` is False.
    """
    if kind not in CONVERTERS:
        raise ConfigError(f"unknown converter {kind!r}; choose one of: {', '.join(sorted(CONVERTERS))}.")
    return CONVERTERS[kind](Path(src), Path(out), overwrite)
