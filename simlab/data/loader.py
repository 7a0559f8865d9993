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
    from simlab.data.matching_convert import convert_deepmatcher

    return convert_deepmatcher(src, out, overwrite)


def _convert_digits(src: Path | None, out: Path, overwrite: bool):
    from simlab.data.multilabel_convert import convert_digits

    return convert_digits(src, out, overwrite)


def _convert_demo_topics(src: Path | None, out: Path, overwrite: bool):
    from simlab.data.multilabel_convert import convert_demo_topics

    return convert_demo_topics(src or Path(__file__).resolve().parents[2] / "examples" / "demo", out, overwrite)


def _convert_reuters(src: Path, out: Path, overwrite: bool):
    from simlab.data.multilabel_convert import convert_reuters21578

    return convert_reuters21578(src, out, overwrite)


def _convert_definitions(name: str) -> Callable[[Path, Path, bool], Any]:
    def convert(src: Path, out: Path, overwrite: bool):
        from simlab.data import definitions

        return getattr(definitions, name)(src, out, overwrite)

    return convert


CONVERTERS: dict[str, Callable[[Path, Path, bool], Any]] = {
    "glasgow": convert_glasgow,  # SMART test collections -> BEIR retrieval layout
    "deepmatcher": _convert_deepmatcher,  # tableA/tableB + labelled pair files -> simlab matching layout
    "digits": _convert_digits,  # scikit-learn's bundled digits -> PNG images + attribute labels (no SRC)
    "demo-topics": _convert_demo_topics,  # examples/demo texts -> multi-label topic/theme tags (SRC optional)
    "reuters21578": _convert_reuters,  # Reuters-21578 ModApte (NLTK layout) -> multi-label texts with splits
    "wic-tsv": _convert_definitions("convert_wic_tsv"),  # WiC-TSV contexts vs definitions -> matching layout
    "wic": _convert_definitions("convert_wic"),  # Word-in-Context sentence pairs -> matching layout
    "oewn": _convert_definitions("build_oewn_pairs"),  # Open English WordNet examples vs glosses -> pairs
}

NO_SOURCE = ("digits", "demo-topics")  # converters whose SRC is optional


def describe(dataset: Any) -> list[str]:
    """Lines summarising a converted dataset (a retrieval `Collection` or a `MatchingDataset`)."""
    if isinstance(dataset, dict):  # the multi-label converters: {"items", "labels", "path"}
        return [f"{dataset['items']} items, labels: {', '.join(dataset['labels'])}; wrote {dataset['path']}"]
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


def register_converter(name: str):
    """Decorator: register `convert(src, out, overwrite)` as `simlab data convert <name>` (and `convert(name, ...)`).

    The function reads the raw dataset in `src` and writes one of simlab's layouts to `out`.
    """

    def add(fn: Callable[[Path, Path, bool], Any]) -> Callable[[Path, Path, bool], Any]:
        CONVERTERS[name] = fn
        return fn

    return add


def convert(kind: str, src: Path | None, out: Path, overwrite: bool = False) -> Any:
    """Convert the raw dataset in `src` to the BEIR layout in `out` with converter `kind`.

    Raises:
        ConfigError: `kind` is not a key of `CONVERTERS` (the message lists the valid names).
        DataError: the source is unreadable, or `out` exists and `overwrite` is False.
    """
    if kind not in CONVERTERS:
        raise ConfigError(f"unknown converter {kind!r}; choose one of: {', '.join(sorted(CONVERTERS))}.")
    if src is None and kind not in NO_SOURCE:
        raise ConfigError(f"converter {kind!r} needs SRC, the folder with the source files.")
    return CONVERTERS[kind](None if src is None else Path(src), Path(out), overwrite)
