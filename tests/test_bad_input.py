"""Bad input, every reader, converter, command and artifact: one clear error, nothing left behind.

Each case is one small builder that writes a bad input into its own folder and returns the
command line and the words the message must hold (the file, its line or the config field,
and the fix). Every case must end with exit code 2 (a `SimlabError` of `exit_code` 2, never a
traceback), a message holding those words, and nothing new on disk in the case's folder (the
`--out` parent). A few cases also run as a real `python -m simlab` process.

`python tests/test_bad_input.py` runs every case and rewrites the table of docs/RELIABILITY.md.

Runs the cases need (a retrieval run with a trained model and a flat index, a pairs run) are
made once per module, tiny and offline (wordllama, one epoch).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DENSE = ROOT / "examples" / "dense.yaml"
MATCHING = ROOT / "examples" / "matching.yaml"
DEMO = ROOT / "examples" / "demo"
FAST = ["--set", "eval.systems=[bm25]", "--set", "tracking.mlflow=false"]
BAD_UTF8 = b"caf\xe9 au lait\n"


@dataclass
class Case:
    """A bad input: the command line, and the words its error message must hold."""

    argv: list[str]
    expect: list[str]
    process: bool = False  # also run it as `python -m simlab` (exit 2, no traceback on stderr)
    call: Callable[[], object] | None = None  # a library reader no command reaches: called instead of argv


@dataclass(frozen=True)
class Spec:
    name: str
    group: str
    what: str  # the input, in words
    build: Callable[[Path, Runs], Case]
    fixed: bool = False  # needed a code fix (gave a traceback, exit 1, or was accepted)


SPECS: list[Spec] = []


def case(group: str, what: str, fixed: bool = False):
    def add(fn: Callable[[Path, Runs], Case]) -> Callable[[Path, Runs], Case]:
        SPECS.append(Spec(fn.__name__.removeprefix("c_"), group, what, fn, fixed))
        return fn

    return add


# ------------------------------------------------------------------ shared runs


@dataclass
class Runs:
    """Finished run folders shared by the cases, made on first use."""

    base: Path
    made: dict[str, Path] = field(default_factory=dict)

    def _make(self, name: str, config: Path, overrides: list[str]) -> Path:
        if name not in self.made:
            from simlab.experiments.runner import run_experiment
            from simlab.tasks import load_config

            cfg = load_config(config, [*overrides, "tracking.mlflow=false"])
            run_experiment(cfg, self.base / name)
            self.made[name] = self.base / name
        return self.made[name]

    @property
    def retrieval(self) -> Path:
        """Demo collection, BM25 + a one-epoch trained model with a flat index (`indexes/trained.flat`)."""
        overrides = [f"data.path={DEMO}", "eval.systems=[bm25,trained]", "train.epochs=1", "index.approximate=[]"]
        return self._make("retrieval", DENSE, [*overrides, "train.hard_negatives.source=none"])

    @property
    def pairs(self) -> Path:
        """A records file with groups (tests/test_pairs_run.py), one epoch."""
        from test_pairs_run import grouped_overrides, write_records

        if "pairs" not in self.made:
            write_records(self.base / "records.csv")
        return self._make("pairs", MATCHING, [*grouped_overrides(self.base), "train.epochs=1"])

    def copy(self, name: str, to: Path, drop: tuple[str, ...] = ()) -> Path:
        """A copy of run `name` at `to` (its model linked, not copied), without the entries `drop`."""
        src = getattr(self, name)
        to.mkdir(parents=True)
        for entry in src.iterdir():
            if entry.name in drop:
                continue
            if entry.name == "model":
                (to / "model").symlink_to(entry, target_is_directory=True)
            elif entry.is_dir():
                shutil.copytree(entry, to / entry.name)
            else:
                shutil.copy2(entry, to / entry.name)
        return to


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("runs"))


# ------------------------------------------------------------------ helpers for the builders


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def run_argv(tmp: Path, config: Path = DENSE, *sets: str, fast: bool = True) -> list[str]:
    """`simlab run CONFIG --out tmp/out/run --set ...`."""
    argv = ["run", str(config), "--out", str(tmp / "out" / "run")]
    for s in sets:
        argv += ["--set", s]
    return argv + (FAST if fast else [])


def beir(tmp: Path, corpus: str | bytes | None = None, queries: str | None = None, qrels: str | None = None) -> Path:
    """A tiny BEIR folder, with any of its three files replaced."""
    folder = tmp / "beir"
    default_corpus = "".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"text {i}"}) + "\n" for i in range(3))
    write(folder / "corpus.jsonl", default_corpus if corpus is None else corpus)
    write(folder / "queries.jsonl", queries if queries is not None else '{"_id": "q1", "text": "text"}\n')
    write(folder / "qrels" / "test.tsv", qrels if qrels is not None else "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return folder


def beir_run(tmp: Path, **files) -> list[str]:
    return run_argv(tmp, DENSE, f"data.path={beir(tmp, **files)}")


def msmarco(tmp: Path, collection: str = "1\tfirst passage\n2\tsecond passage\n", qrels: str = "q1 0 1 1\n") -> Path:
    folder = tmp / "msmarco"
    write(folder / "collection.tsv", collection)
    write(folder / "queries.test.tsv", "q1\tfirst\n")
    write(folder / "qrels.test.tsv", qrels)
    return folder


def cranfield(tmp: Path, docs: str = ".I 1\n.T\ntitle\n.W\nbody\n", qry: str = ".I 1\n.W\nquestion\n", rel="1 1 1\n"):
    folder = tmp / "cran"
    write(folder / "cran.all.1400", docs)
    write(folder / "cran.qry", qry)
    write(folder / "cranqrel", rel)
    return folder


def wic(tmp: Path, data: str | bytes = "run\tV\t0-1\trun fast\twe run\n", gold: str = "T\n", drop: str = "") -> Path:
    """The original WiC layout: train/, dev/, test/ with <split>.data.txt and <split>.gold.txt."""
    folder = tmp / "wic"
    for split in ("train", "dev", "test"):
        if split == drop:
            continue
        write(folder / split / f"{split}.data.txt", data if split == "train" else "run\tV\t0-1\trun fast\twe run\n")
        write(folder / split / f"{split}.gold.txt", gold if split == "train" else "T\n")
    return folder


def wic_tsv(
    tmp: Path, examples: str | bytes = "spring\t1\tmy spring holidays\n", labels: str = "T\n", drop: str = ""
) -> Path:
    """The WiC-TSV layout: Training/ and Development/ with line-aligned examples, definitions, labels."""
    folder = tmp / "wictsv"
    for sub, prefix in (("Training", "train"), ("Development", "dev")):
        if sub == drop:
            continue
        d = folder / sub
        write(d / f"{prefix}_examples.txt", examples if prefix == "train" else "rains\t1\tit rains today\n")
        write(d / f"{prefix}_definitions.txt", "the season of growth\n")
        write(d / f"{prefix}_labels.txt", labels if prefix == "train" else "T\n")
    return folder


def oewn(tmp: Path, text: str | bytes) -> Path:
    folder = tmp / "oewn"
    write(folder / "src" / "yaml" / "verb.motion.yaml", text)
    return folder


def convert(kind: str, src: Path | None, tmp: Path) -> list[str]:
    return ["data", "convert", kind, *([str(src)] if src else []), "--out", str(tmp / "out" / "converted")]


def deepmatcher(
    tmp: Path,
    table_a: str | bytes = "id,name,price\n1,acme kettle,10\n2,zeta lamp,20\n",
    table_b: str = "id,name,price\n1,acme kettle steel,10\n2,zeta desk lamp,20\n",
    train: str = "ltable_id,rtable_id,label\n1,1,1\n2,1,0\n",
    drop: str = "",
) -> Path:
    folder = tmp / "dm"
    write(folder / "tableA.csv", table_a)
    write(folder / "tableB.csv", table_b)
    for name in ("train.csv", "valid.csv", "test.csv"):
        if name != drop:
            write(folder / name, train if name == "train.csv" else "ltable_id,rtable_id,label\n1,1,1\n2,2,1\n")
    return folder


def multilabel_run(tmp: Path, name: str, text: str | bytes) -> list[str]:
    path = write(tmp / name, text)
    return run_argv(tmp, ROOT / "examples" / "multilabel-text.yaml", f"data.path={path}", "train.epochs=1", fast=False)


def ml_rows(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def records_run(tmp: Path, text: str, *sets: str) -> list[str]:
    path = write(tmp / "records.csv", text)
    base = [f"data.path={path}", "train.epochs=1", "tracking.mlflow=false"]
    return run_argv(tmp, MATCHING, *base, *sets, fast=False)


def config(tmp: Path, text: str | bytes, *sets: str) -> list[str]:
    path = write(tmp / "exp.yaml", text)
    return run_argv(tmp, path, *sets)


def search(run: Path, *extra: str) -> list[str]:
    return ["search", str(run), "boundary layer", *extra]


def match(tmp: Path, run: Path, left: str = "id,name\nr1,acme kettle\n", *extra: str) -> list[str]:
    write(tmp / "left.csv", left)
    write(tmp / "right.csv", "id,name\nr9,acme kettle x100\n")
    argv = ["match", str(run), "--left", str(tmp / "left.csv"), "--right", str(tmp / "right.csv")]
    return [*argv, "--out", str(tmp / "out" / "matches.csv"), *extra]


def reseal(folder: Path) -> Path:
    """Make `folder/.simlab-files` agree with the files as they are now (a checksum line gets the new sha256,
    a missing file's line goes), so that the reader of the damaged file, not the manifest check, is tried."""
    import hashlib
    import re

    manifest = folder / ".simlab-files"
    lines = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"[0-9a-f]{64}  (.+)", line)
        path = folder / (m[1] if m else line)
        if not path.is_file():
            continue
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {m[1]}" if m else line)
    manifest.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    return folder


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# ================================================================== converters


@case("converters", "wic: train.data.txt not UTF-8", fixed=True)
def c_wic_not_utf8(tmp, runs):
    src = wic(tmp, data=b"run\tV\t0-1\tcaf\xe9 run\twe run\n")
    return Case(convert("wic", src, tmp), ["train.data.txt:1", "not valid UTF-8", "re-encode"], process=True)


@case("converters", "wic: a data line with 3 columns")
def c_wic_three_columns(tmp, runs):
    src = wic(tmp, data="run\tV\trun fast\n")
    return Case(convert("wic", src, tmp), ["train.data.txt:1", "expected word, POS, i-j token indices"])


@case("converters", "wic: gold label X")
def c_wic_bad_gold(tmp, runs):
    return Case(convert("wic", wic(tmp, gold="X\n"), tmp), ["train.gold.txt:1", "is not T or F", "write T"])


@case("converters", "wic: 1 data line, 2 gold lines")
def c_wic_not_aligned(tmp, runs):
    return Case(convert("wic", wic(tmp, gold="T\nF\n"), tmp), ["train.data.txt", "must be line-aligned"])


@case("converters", "wic: token index beyond the sentence")
def c_wic_index_outside(tmp, runs):
    src = wic(tmp, data="run\tV\t0-7\trun fast\twe run\n")
    return Case(convert("wic", src, tmp), ["train.data.txt:1", "token index 7 is outside"])


@case("converters", "wic: no dev/ folder")
def c_wic_no_dev(tmp, runs):
    return Case(convert("wic", wic(tmp, drop="dev"), tmp), ["dev.data.txt: file not found", "the WiC layout has"])


@case("converters", "wic-tsv: train_examples.txt not UTF-8", fixed=True)
def c_wictsv_not_utf8(tmp, runs):
    src = wic_tsv(tmp, examples=b"spring\t1\tmy spr\xefng holidays\n")
    return Case(convert("wic-tsv", src, tmp), ["train_examples.txt:1", "not valid UTF-8", "re-encode"])


@case("converters", "wic-tsv: an example line with 2 columns")
def c_wictsv_two_columns(tmp, runs):
    src = wic_tsv(tmp, examples="spring\tmy spring holidays\n")
    return Case(convert("wic-tsv", src, tmp), ["train_examples.txt:1", "expected word, token index, context"])


@case("converters", "wic-tsv: token index not a number")
def c_wictsv_bad_index(tmp, runs):
    src = wic_tsv(tmp, examples="spring\tone\tmy spring holidays\n")
    return Case(convert("wic-tsv", src, tmp), ["train_examples.txt:1", "token index 'one'"])


@case("converters", "wic-tsv: label maybe")
def c_wictsv_bad_label(tmp, runs):
    return Case(
        convert("wic-tsv", wic_tsv(tmp, labels="maybe\n"), tmp), ["train_labels.txt:1", "is not T or F", "write T"]
    )


@case("converters", "wic-tsv: 1 example, 2 labels")
def c_wictsv_not_aligned(tmp, runs):
    return Case(convert("wic-tsv", wic_tsv(tmp, labels="T\nF\n"), tmp), ["Training", "must be line-aligned"])


@case("converters", "wic-tsv: no Development/ folder")
def c_wictsv_no_dev(tmp, runs):
    src = wic_tsv(tmp, drop="Development")
    return Case(convert("wic-tsv", src, tmp), ["dev_examples.txt: file not found", "WiC-TSV layout"])


@case("converters", "oewn: a YAML file not UTF-8", fixed=True)
def c_oewn_not_utf8(tmp, runs):
    src = oewn(tmp, b"00001-v:\n  definition: [caf\xe9]\n")
    return Case(convert("oewn", src, tmp), ["verb.motion.yaml:2", "not valid UTF-8", "re-encode"])


@case("converters", "oewn: malformed YAML", fixed=True)
def c_oewn_bad_yaml(tmp, runs):
    src = oewn(tmp, "00001-v:\n  definition: [run\n  members: [run]\n")
    return Case(convert("oewn", src, tmp), ["verb.motion.yaml:", "not valid YAML", "Open English WordNet"])


@case("converters", "oewn: a YAML list instead of synsets", fixed=True)
def c_oewn_not_mapping(tmp, runs):
    src = oewn(tmp, "- run\n- walk\n")
    return Case(convert("oewn", src, tmp), ["verb.motion.yaml", "synset id -> synset", "Open English WordNet"])


@case("converters", "oewn: a synset that is a string", fixed=True)
def c_oewn_synset_not_mapping(tmp, runs):
    src = oewn(tmp, "00001-v: run fast\n")
    return Case(convert("oewn", src, tmp), ["verb.motion.yaml", "synset '00001-v'", "definition, example, members"])


@case("converters", "oewn: members a string, not a list", fixed=True)
def c_oewn_field_not_list(tmp, runs):
    src = oewn(tmp, "00001-v:\n  definition: [move fast]\n  example: [they run]\n  members: run\n")
    return Case(convert("oewn", src, tmp), ["verb.motion.yaml", "members is a str", "write members: [...]"])


@case("converters", "oewn: no *.yaml file")
def c_oewn_no_yaml(tmp, runs):
    (tmp / "oewn").mkdir()
    return Case(convert("oewn", tmp / "oewn", tmp), ["oewn: no *.yaml files"])


@case("converters", "oewn: synsets without examples", fixed=True)
def c_oewn_no_examples(tmp, runs):
    src = oewn(tmp, "00001-v:\n  definition: [move fast]\n  members: [run]\n")
    return Case(convert("oewn", src, tmp), ["verb.motion.yaml", "no usage example holds one of its synset's lemmas"])


@case("converters", "an unknown converter name")
def c_unknown_converter(tmp, runs):
    return Case(convert("wikipedia", tmp, tmp), ["unknown converter 'wikipedia'", "choose one of", "wic-tsv"])


@case("converters", "a converter that needs SRC, without it")
def c_converter_without_src(tmp, runs):
    return Case(convert("deepmatcher", None, tmp), ["converter 'deepmatcher' needs SRC"])


@case("converters", "glasgow: text before the first .I")
def c_glasgow_no_record_start(tmp, runs):
    src = cranfield(tmp, docs="hello\n.I 1\n.W\nbody\n")
    return Case(convert("glasgow", src, tmp), ["cran.all.1400:1", "`.I <id>`"])


@case("converters", "glasgow: relevance code 9")
def c_glasgow_bad_code(tmp, runs):
    return Case(convert("glasgow", cranfield(tmp, rel="1 1 9\n"), tmp), ["cranqrel:1", "relevance code 1, 2, 3, 4"])


@case("converters", "glasgow: an empty cranqrel", fixed=True)
def c_glasgow_empty_qrels(tmp, runs):
    src = cranfield(tmp, rel="")
    return Case(convert("glasgow", src, tmp), ["cranqrel: the file is empty", "one `query doc code` line"])


@case("converters", "glasgow: one stray line in position-numbered qrels", fixed=True)
def c_glasgow_stray_position(tmp, runs):
    docs = "".join(f".I {i}\n.W\ndoc {i}\n" for i in range(1, 4))
    qry = "".join(f".I {i}\n.W\nquestion {i}\n" for i in (1, 2, 5, 7))  # ids with gaps; the qrels number 1..4
    rel = "".join(f"{q} {d} 1\n" for q in (1, 2, 3, 4) for d in (1, 2, 3)) + "9 1 1\n"
    src = cranfield(tmp, docs=docs, qry=qry, rel=rel)
    return Case(convert("glasgow", src, tmp), ["1-based positions in cran.qry", "cranqrel:13", "fix or remove"])


@case("converters", "glasgow: no cran.qry")
def c_glasgow_no_queries(tmp, runs):
    src = cranfield(tmp)
    (src / "cran.qry").unlink()
    return Case(convert("glasgow", src, tmp), ["missing cran.qry", "Glasgow cranfield layout"])


@case("converters", "glasgow: an id starting two records")
def c_glasgow_repeated_id(tmp, runs):
    src = cranfield(tmp, docs=".I 1\n.W\na\n.I 1\n.W\nb\n")
    return Case(convert("glasgow", src, tmp), ["cran.all.1400:4", "already started a record on line 1"])


# ================================================================== DeepMatcher folders


@case("deepmatcher", "tableB's columns differ from tableA's (convert)", fixed=True)
def c_dm_columns_differ(tmp, runs):
    src = deepmatcher(tmp, table_b="id,title,cost\n1,acme kettle,10\n2,zeta lamp,20\n")
    return Case(
        convert("deepmatcher", src, tmp), ["tableA.csv", "tableB.csv", "name, price", "title, cost", "Rename or add"]
    )


@case("deepmatcher", "tableB's columns differ from tableA's (run)", fixed=True)
def c_dm_columns_differ_run(tmp, runs):
    src = deepmatcher(tmp, table_b="id,name,colour\n1,acme kettle,red\n2,zeta lamp,blue\n")
    argv = run_argv(tmp, MATCHING, f"data.path={src}", "tracking.mlflow=false", fast=False)
    return Case(argv, ["tableA.csv", "tableB.csv", "price", "colour", "same columns"], process=True)


@case("deepmatcher", "tableA.csv with a header only", fixed=True)
def c_dm_empty_table(tmp, runs):
    src = deepmatcher(tmp, table_a="id,name,price\n", train="ltable_id,rtable_id,label\n")
    return Case(convert("deepmatcher", src, tmp), ["tableA.csv: no rows below the header", "at least one"])


@case("deepmatcher", "train.csv with a header only", fixed=True)
def c_dm_empty_pairs(tmp, runs):
    src = deepmatcher(tmp, train="ltable_id,rtable_id,label\n")
    return Case(convert("deepmatcher", src, tmp), ["train.csv: no rows below the header", "at least one"])


@case("deepmatcher", "train.csv label 'yes'")
def c_dm_bad_label(tmp, runs):
    src = deepmatcher(tmp, train="ltable_id,rtable_id,label\n1,1,yes\n")
    return Case(convert("deepmatcher", src, tmp), ["train.csv:2", "label 'yes' is not 0 or 1", "write 1 for a match"])


@case("deepmatcher", "train.csv names an id not in tableA")
def c_dm_unknown_id(tmp, runs):
    src = deepmatcher(tmp, train="ltable_id,rtable_id,label\n7,1,1\n")
    return Case(
        convert("deepmatcher", src, tmp), ["train.csv:2", "ltable_id '7' is not an id in tableA.csv", "fix the id"]
    )


@case("deepmatcher", "one pair labelled 1 and 0")
def c_dm_conflicting_labels(tmp, runs):
    src = deepmatcher(tmp, train="ltable_id,rtable_id,label\n1,1,1\n1,1,0\n")
    return Case(convert("deepmatcher", src, tmp), ["train.csv:3", "line 2 labels it 1", "keep one label per pair"])


@case("deepmatcher", "no valid.csv")
def c_dm_no_valid(tmp, runs):
    src = deepmatcher(tmp, drop="valid.csv")
    return Case(convert("deepmatcher", src, tmp), ["missing valid.csv", "the layout needs"])


@case("deepmatcher", "tableA.csv not UTF-8")
def c_dm_not_utf8(tmp, runs):
    src = deepmatcher(tmp, table_a=b"id,name,price\n1,caf\xe9,10\n")
    return Case(convert("deepmatcher", src, tmp), ["tableA.csv:2", "not valid UTF-8", "re-encode"])


@case("deepmatcher", "tableA.csv row with an unquoted comma")
def c_dm_short_row(tmp, runs):
    src = deepmatcher(tmp, table_a="id,name,price\n1,acme, kettle,10\n")
    return Case(convert("deepmatcher", src, tmp), ["tableA.csv:2", "4 fields, but the header has 3", "quote"])


@case("deepmatcher", "tableA.csv id twice")
def c_dm_duplicate_id(tmp, runs):
    src = deepmatcher(tmp, table_a="id,name,price\n1,a,1\n1,b,2\n")
    return Case(
        convert("deepmatcher", src, tmp), ["tableA.csv:3", "id '1' already appeared on line 2", "ids must be unique"]
    )


# ================================================================== retrieval datasets (simlab run)


@case("datasets", "BEIR: corpus.jsonl line 2 not JSON")
def c_beir_bad_json(tmp, runs):
    corpus = '{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": \n'
    return Case(beir_run(tmp, corpus=corpus), ["corpus.jsonl:2", "invalid JSON", "one document object per line"])


@case("datasets", "BEIR: a document without `text`")
def c_beir_no_text(tmp, runs):
    return Case(
        beir_run(tmp, corpus='{"_id": "d1", "title": "a"}\n'), ["corpus.jsonl:1", "missing key `text`", "add it"]
    )


@case("datasets", "BEIR: empty corpus.jsonl", fixed=True)
def c_beir_empty_corpus(tmp, runs):
    return Case(
        beir_run(tmp, corpus=""),
        ["corpus.jsonl", "the file is empty", "one JSON object per document line"],
        process=True,
    )


@case("datasets", "BEIR: corpus.jsonl not UTF-8")
def c_beir_not_utf8(tmp, runs):
    return Case(
        beir_run(tmp, corpus=b'{"_id": "d1", "text": "caf\xe9"}\n'), ["corpus.jsonl:1", "not valid UTF-8", "re-encode"]
    )


@case("datasets", "BEIR: a document id twice")
def c_beir_duplicate_doc(tmp, runs):
    corpus = '{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n'
    return Case(beir_run(tmp, corpus=corpus), ["corpus.jsonl:2", "already appeared on line 1", "ids must be unique"])


@case("datasets", "BEIR: a qrels line with 2 fields")
def c_beir_qrels_fields(tmp, runs):
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\n"
    return Case(beir_run(tmp, qrels=qrels), ["test.tsv:2", "expected 3 tab-separated fields"])


@case("datasets", "BEIR: a qrels grade 'high'")
def c_beir_qrels_grade(tmp, runs):
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\thigh\n"
    return Case(beir_run(tmp, qrels=qrels), ["test.tsv:2", "integer relevance grade"])


@case("datasets", "BEIR: no queries.jsonl")
def c_beir_no_queries(tmp, runs):
    folder = beir(tmp)
    (folder / "queries.jsonl").unlink()
    return Case(run_argv(tmp, DENSE, f"data.path={folder}"), ["missing queries.jsonl", "BEIR layout"])


@case("datasets", "MS MARCO: a collection line without a tab")
def c_msmarco_no_tab(tmp, runs):
    folder = msmarco(tmp, collection="1 first passage\n")
    return Case(run_argv(tmp, DENSE, f"data.path={folder}"), ["collection.tsv:1", "expected 2 tab-separated fields"])


@case("datasets", "MS MARCO: no queries.<split>.tsv")
def c_msmarco_no_queries(tmp, runs):
    folder = msmarco(tmp)
    (folder / "queries.test.tsv").unlink()
    return Case(run_argv(tmp, DENSE, f"data.path={folder}"), ["no queries.<split>.tsv file", "MS MARCO layout"])


@case("datasets", "TREC qrels: a line with 3 fields")
def c_trec_qrels_fields(tmp, runs):
    folder = msmarco(tmp, qrels="q1 1 1\n")
    return Case(run_argv(tmp, DENSE, f"data.path={folder}"), ["qrels.test.tsv:1", "expected 4 whitespace-separated"])


@case("datasets", "TREC qrels: grade 'x'")
def c_trec_qrels_grade(tmp, runs):
    folder = msmarco(tmp, qrels="q1 0 1 x\n")
    return Case(run_argv(tmp, DENSE, f"data.path={folder}"), ["qrels.test.tsv:1", "integer relevance grade"])


@case("datasets", "TREC qrels: one pair judged twice, differently")
def c_trec_qrels_twice(tmp, runs):
    folder = msmarco(tmp, qrels="q1 0 1 1\nq1 0 1 2\n")
    return Case(run_argv(tmp, DENSE, f"data.path={folder}"), ["qrels.test.tsv:2", "q1", "keep one judgement per pair"])


@case("datasets", "Glasgow: a qrels line with 2 fields (run)")
def c_glasgow_run_bad_qrels(tmp, runs):
    folder = cranfield(tmp, rel="1 1\n")
    return Case(run_argv(tmp, DENSE, f"data.path={folder}"), ["cranqrel:1", "expected 3 whitespace-separated fields"])


@case("datasets", "data.path a folder of no known layout")
def c_unknown_layout(tmp, runs):
    write(tmp / "data" / "notes.txt", "nothing")
    argv = run_argv(tmp, DENSE, f"data.path={tmp / 'data'}")
    return Case(argv, ["no known dataset layout", "BEIR (corpus.jsonl)", "MS MARCO"])


@case("datasets", "data.path does not exist")
def c_missing_data(tmp, runs):
    return Case(run_argv(tmp, DENSE, f"data.path={tmp / 'nowhere'}"), ["nowhere", "folder"])


@case("datasets", "TREC run: a line with 5 fields (read_trec_run)")
def c_trec_run_fields(tmp, runs):
    from simlab.data.trec import read_trec_run

    path = write(tmp / "bm25.trec", "q1 Q0 d1 1 0.5 bm25\nq1 Q0 d2 2 0.4\n")
    return Case(["simlab.data.trec.read_trec_run"], ["bm25.trec:2", "expected 6"], call=lambda: read_trec_run(path))


@case("datasets", "TREC run: score 'high' (read_trec_run)")
def c_trec_run_score(tmp, runs):
    from simlab.data.trec import read_trec_run

    path = write(tmp / "bm25.trec", "q1 Q0 d1 1 high bm25\n")
    return Case(["simlab.data.trec.read_trec_run"], ["bm25.trec:1", "numeric score"], call=lambda: read_trec_run(path))


@case("datasets", "MS MARCO triples: a line with 2 fields (sparse run)")
def c_msmarco_triples(tmp, runs):
    folder = msmarco(tmp, collection="1\tfirst passage\n2\tsecond passage\n", qrels="q1 0 1 1\n")
    write(folder / "triples.tsv", "what is first\tfirst passage\tsecond passage\nonly a query\tfirst passage\n")
    sets = [f"data.path={folder}", "data.triples=triples.tsv", "data.test_split=test", "tracking.mlflow=false"]
    sets += ["model.sparse.scratch={vocab_size: 100, hidden_size: 16, layers: 1, heads: 1}", "train.epochs=1"]
    return Case(run_argv(tmp, ROOT / "examples" / "splade.yaml", *sets, fast=False), ["triples.tsv:2", "3"])


# ================================================================== configs


@case("config", "unknown field train.epochz")
def c_config_unknown_field(tmp, runs):
    return Case(run_argv(tmp, DENSE, f"data.path={DEMO}", "train.epochz=2"), ["train.epochz"], process=True)


@case("config", "train.epochs=many")
def c_config_bad_value(tmp, runs):
    return Case(run_argv(tmp, DENSE, f"data.path={DEMO}", "train.epochs=many"), ["train.epochs"])


@case("config", "eval.metrics=[ndcg@ten]")
def c_config_bad_metric(tmp, runs):
    return Case(run_argv(tmp, DENSE, f"data.path={DEMO}", "eval.metrics=[ndcg@ten]"), ["ndcg@ten"])


@case("config", "task: ranking")
def c_config_unknown_task(tmp, runs):
    return Case(config(tmp, f"task: ranking\ndata: {{path: {DEMO}}}\n"), ["ranking", "retrieval", "pairs"])


@case("config", "a key given twice")
def c_config_duplicate_key(tmp, runs):
    text = f"task: retrieval\ndata:\n  path: {DEMO}\ntrain:\n  epochs: 1\n  epochs: 2\n"
    return Case(config(tmp, text), ["exp.yaml:6", "duplicate key 'epochs'"])


@case("config", "a config file not UTF-8")
def c_config_not_utf8(tmp, runs):
    return Case(config(tmp, b"task: retrieval\nname: caf\xe9\n"), ["exp.yaml:2", "save the config as UTF-8"])


@case("config", "no data.path")
def c_config_no_data_path(tmp, runs):
    return Case(config(tmp, "task: retrieval\ntrain: {epochs: 1}\n"), ["data.path"])


@case("config", "--set without =")
def c_config_set_syntax(tmp, runs):
    return Case(run_argv(tmp, DENSE, f"data.path={DEMO}", "train.epochs"), ["train.epochs", "key=value"])


@case("config", "malformed YAML")
def c_config_bad_yaml(tmp, runs):
    return Case(config(tmp, "task: retrieval\ndata: {path: [x\n"), ["exp.yaml"])


@case("config", "a YAML list, not a mapping")
def c_config_not_mapping(tmp, runs):
    return Case(config(tmp, "- task\n- retrieval\n"), ["exp.yaml"])


@case("config", "the config file does not exist")
def c_config_missing(tmp, runs):
    return Case(run_argv(tmp, tmp / "nope.yaml"), ["nope.yaml"])


@case("config", "a sweep with one bad grid value")
def c_config_sweep_bad_point(tmp, runs):
    argv = run_argv(tmp, DENSE, f"data.path={DEMO}", "train.epochs=[1,many]")
    return Case(argv, ["[epochs=many]", "train.epochs", "'many'"])


@case("config", "--nproc 2 with a task that runs on one process")
def c_nproc_one_process_task(tmp, runs):
    argv = [*run_argv(tmp, MATCHING, f"data.path={tmp}", fast=False), "--nproc", "2"]
    return Case(argv, ["task: pairs runs on one process", "without --nproc"])


@case("config", "--nproc 2 with a sweep")
def c_nproc_sweep(tmp, runs):
    argv = [*run_argv(tmp, DENSE, f"data.path={DEMO}", "train.epochs=[1,2]"), "--nproc", "2"]
    return Case(argv, ["a sweep does not run on several processes"])


# ================================================================== multi-label items


@case("multilabel", "an id twice", fixed=True)
def c_ml_duplicate_id(tmp, runs):
    rows = ml_rows({"id": "a", "text": "x", "labels": ["p"]}, {"id": "a", "text": "y", "labels": ["q"]})
    return Case(
        multilabel_run(tmp, "items.jsonl", rows),
        ["items.jsonl:2", "id 'a' already appeared on line 1", "ids must be unique"],
    )


@case("multilabel", "an id given as a list", fixed=True)
def c_ml_id_list(tmp, runs):
    rows = ml_rows({"id": ["a"], "text": "x", "labels": ["p"]})
    return Case(multilabel_run(tmp, "items.jsonl", rows), ["items.jsonl:1", "id ['a']", "string or a number"])


@case("multilabel", "a CSV row without its labels column", fixed=True)
def c_ml_csv_short_row(tmp, runs):
    text = "id,text,labels\na,first text,p|q\nb,second text\n"
    return Case(
        multilabel_run(tmp, "items.csv", text), ["items.csv:3", "2 fields, but the header has 3", "quote values"]
    )


@case("multilabel", "a CSV row with an extra column", fixed=True)
def c_ml_csv_long_row(tmp, runs):
    text = "id,text,labels\na,first, text,p|q\n"
    return Case(multilabel_run(tmp, "items.csv", text), ["items.csv:2", "4 fields, but the header has 3"])


@case("multilabel", "labels '[\"p\"' (bad JSON)")
def c_ml_bad_labels_json(tmp, runs):
    rows = ml_rows({"id": "a", "text": "x", "labels": '["p"'})
    return Case(multilabel_run(tmp, "items.jsonl", rows), ["items.jsonl:1", "not valid JSON", "JSON list"])


@case("multilabel", "a soft label of 1.5")
def c_ml_soft_label_range(tmp, runs):
    rows = ml_rows({"id": "a", "text": "x", "labels": {"p": 1.5}})
    return Case(multilabel_run(tmp, "items.jsonl", rows), ["items.jsonl:1", "probability 1.5", "[0, 1]"])


@case("multilabel", "a row without text")
def c_ml_no_text(tmp, runs):
    rows = ml_rows({"id": "a", "text": "x", "labels": ["p"]}, {"id": "b", "labels": ["p"]})
    return Case(multilabel_run(tmp, "items.jsonl", rows), ["items.jsonl:2", "no text in field 'text'"])


@case("multilabel", "split 'holdout'")
def c_ml_bad_split(tmp, runs):
    rows = ml_rows({"id": "a", "text": "x", "labels": ["p"], "split": "holdout"})
    return Case(multilabel_run(tmp, "items.jsonl", rows), ["items.jsonl:1", "split 'holdout'"])


@case("multilabel", "a CSV file not UTF-8", fixed=True)
def c_ml_csv_not_utf8(tmp, runs):
    return Case(
        multilabel_run(tmp, "items.csv", b"id,text,labels\na,caf\xe9,p\n"), ["items.csv:2", "UTF-8", "re-encode"]
    )


@case("multilabel", "an empty items file")
def c_ml_empty(tmp, runs):
    return Case(multilabel_run(tmp, "items.jsonl", ""), ["items.jsonl: no rows"])


@case("multilabel", "an items.parquet file")
def c_ml_file_type(tmp, runs):
    return Case(multilabel_run(tmp, "items.parquet", "x"), ["items.parquet", "unknown file type", ".jsonl, .csv"])


# ================================================================== pairs records


@case("pairs", "a records file whose group split leaves val empty", fixed=True)
def c_pairs_split_empty(tmp, runs):
    text = "id,group,name\n" + "".join(f"r{i},g{i // 2},item {i}\n" for i in range(8))
    argv = records_run(tmp, text, "data.val_ratio=0.05", "data.test_ratio=0.3")
    return Case(argv, ["records.csv", "the val split", "no records", "data.val_ratio", "more groups"], process=True)


@case("pairs", "a records file whose group split leaves test empty", fixed=True)
def c_pairs_test_split_empty(tmp, runs):
    text = "id,group,name\n" + "".join(f"r{i},g{i // 2},item {i}\n" for i in range(8))
    argv = records_run(tmp, text, "data.val_ratio=0.3", "data.test_ratio=0.05")
    return Case(argv, ["records.csv", "the test split has no records", "raise data.val_ratio / data.test_ratio"])


@case("pairs", "cross.model: a hub name, the hub unreachable")
def c_pairs_cross_offline(tmp, runs):
    text = "id,group,name\n" + "".join(f"r{i},g{i // 2},item {i}\n" for i in range(40))
    argv = records_run(tmp, text, "cross.model=acme/matcher")
    return Case(argv, ["cross.model: 'acme/matcher'", "hub is unreachable", "cross.model: minilm"])


@case("config", "data.senses: a folder that does not exist (definitions)")
def c_config_senses_missing(tmp, runs):
    data = wic_tsv(tmp)
    sets = [f"data.path={data}", f"data.senses={tmp / 'nowhere'}", "tracking.mlflow=false"]
    argv = run_argv(tmp, ROOT / "examples" / "definitions.yaml", *sets, fast=False)
    return Case(argv, ["data.senses:", "nowhere: no such folder", "set data.senses: wordnet"])


@case("pairs", "a records file with a header only", fixed=True)
def c_pairs_records_empty(tmp, runs):
    return Case(records_run(tmp, "id,group,name\n"), ["records.csv: no records below the header", "add one line"])


@case("pairs", "a JSONL record whose field is an object")
def c_pairs_jsonl_nested(tmp, runs):
    path = write(tmp / "records.jsonl", ml_rows({"id": "a", "group": "g", "name": {"first": "x"}}))
    argv = run_argv(tmp, MATCHING, f"data.path={path}", "tracking.mlflow=false", fast=False)
    return Case(argv, ["records.jsonl:1", "key `name` must be a string or a number"])


@case("pairs", "a records file without its group column")
def c_pairs_no_group(tmp, runs):
    return Case(records_run(tmp, "id,name\nr1,a\nr2,b\n"), ["records.csv", "no `group` column", "or add the column"])


@case("pairs", "a record with an empty id")
def c_pairs_empty_id(tmp, runs):
    return Case(records_run(tmp, "id,group,name\nr1,g1,a\n,g1,b\n"), ["records.csv:3", "empty `id`"])


@case("pairs", "data.fields names a missing column")
def c_pairs_unknown_field(tmp, runs):
    argv = records_run(tmp, "id,group,name\nr1,g1,a\nr2,g1,b\n", "data.fields=[title]")
    return Case(argv, ["records.csv", "title", "fields are ['name']", "set data.fields"])


# ================================================================== run folders and saved indexes


@case("artifacts", "search: a folder that is not a run")
def c_search_not_a_run(tmp, runs):
    (tmp / "empty").mkdir()
    return Case(search(tmp / "empty"), ["empty", "not a simlab run folder", "simlab run"])


@case("artifacts", "search: a pairs run")
def c_search_pairs_run(tmp, runs):
    return Case(search(runs.pairs), ["is a pairs run", "`simlab search` takes runs of task retrieval"])


@case("artifacts", "search: a run without model/ (.simlab-files made to match)", fixed=True)
def c_search_no_model(tmp, runs):
    run = runs.copy("retrieval", tmp / "run", drop=("model",))
    return Case(search(reseal(run)), ["model", "missing", "re-run"])


@case("artifacts", "search: a truncated index.faiss (.simlab-files made to match)", fixed=True)
def c_search_truncated_faiss(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    faiss_file = run / "indexes" / "trained.flat" / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    return Case(search(reseal(run)), ["index.faiss", "cannot be read", "rebuild"], process=True)


@case("artifacts", "search: index.faiss cut short, .simlab-files left as the run wrote it")
def c_search_changed_faiss(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    faiss_file = run / "indexes" / "trained.flat" / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    return Case(search(run), ["index.faiss", "re-run"])


@case("artifacts", "search: ids.json not JSON (.simlab-files made to match)", fixed=True)
def c_search_ids_not_json(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    write(run / "indexes" / "trained.flat" / "ids.json", '["d1", "d2"')
    return Case(search(reseal(run)), ["ids.json", "invalid JSON", "rebuild"])


@case("artifacts", "search: the index's meta.json not JSON (.simlab-files made to match)", fixed=True)
def c_search_index_meta_not_json(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    write(run / "indexes" / "trained.flat" / "meta.json", "{format: flat")
    return Case(search(reseal(run)), ["trained.flat/meta.json", "invalid JSON", "rebuild"])


@case("artifacts", "search: an index of another dimension (.simlab-files made to match)", fixed=True)
def c_search_index_other_dim(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    edit_json(run / "indexes" / "trained.flat" / "meta.json", dim=384)
    return Case(search(reseal(run)), ["trained.flat", "384", "256", "rebuild the index"])


@case("artifacts", "search: an index built with another model (.simlab-files made to match)", fixed=True)
def c_search_index_other_model(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    edit_json(run / "indexes" / "trained.flat" / "meta.json", model_id="bert-base-uncased+trained:other")
    return Case(search(reseal(run)), ["trained.flat", "bert-base-uncased", "wordllama", "rebuild"])


@case("artifacts", "search: an index of a newer format version (.simlab-files made to match)", fixed=True)
def c_search_index_new_version(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    edit_json(run / "indexes" / "trained.flat" / "meta.json", format_version=9)
    return Case(search(reseal(run)), ["trained.flat/meta.json", "format version 9", "rebuild"])


@case("artifacts", "search: --index that the run does not have")
def c_search_unknown_index(tmp, runs):
    return Case(
        search(runs.retrieval, "--index", "trained.hnsw"),
        ["trained.hnsw: no such index", "trained.flat", "pass --index"],
    )


@case("artifacts", "search: an empty query")
def c_search_empty_query(tmp, runs):
    return Case(["search", str(runs.retrieval), "  "], ["the query is empty"])


@case("artifacts", "search: the run's meta.json not JSON")
def c_search_run_meta_not_json(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    write(run / "meta.json", "{")
    return Case(search(run), ["meta.json", "not valid JSON", "re-run"])


@case("artifacts", "match: a folder that is not a run")
def c_match_not_a_run(tmp, runs):
    (tmp / "empty").mkdir()
    return Case(match(tmp, tmp / "empty"), ["not a simlab run folder", "make one with `simlab run`"])


@case("artifacts", "match: a retrieval run")
def c_match_retrieval_run(tmp, runs):
    return Case(match(tmp, runs.retrieval), ["is a retrieval run", "`simlab match` takes runs of task"])


@case("artifacts", "match: a run without model/ (.simlab-files made to match)")
def c_match_no_model(tmp, runs):
    run = runs.copy("pairs", tmp / "run", drop=("model",))
    return Case(match(tmp, reseal(run)), ["model is missing", "re-run"])


@case("artifacts", "match: a left table lacking the run's fields")
def c_match_left_lacks_fields(tmp, runs):
    return Case(
        match(tmp, runs.pairs, "id,title\nr1,acme kettle\n"),
        ["left.csv", "name", "columns found: id, title", "Add the column"],
    )


@case("artifacts", "match: a left table without the id column")
def c_match_left_no_id(tmp, runs):
    return Case(
        match(tmp, runs.pairs, "key,name\nr1,acme kettle\n"), ["left.csv", "no `id` column", "or add the column"]
    )


@case("artifacts", "match: --labels with an unknown id (read before matches.csv is written)", fixed=True)
def c_match_bad_labels(tmp, runs):
    labels = write(tmp / "labels.csv", "ltable_id,rtable_id,label\nr1,zz,1\n")
    argv = match(tmp, runs.pairs, "id,name\nr1,acme kettle\n", "--labels", str(labels))
    return Case(argv, ["labels.csv:2", "rtable_id 'zz' is not an id in", "fix the id"])


@case("artifacts", "match: a run whose metrics.json is corrupt")
def c_match_corrupt_metrics(tmp, runs):
    run = runs.copy("pairs", tmp / "run")
    write(run / "metrics.json", "{")
    return Case(match(tmp, run), ["metrics.json", "re-run"])


@case("artifacts", "match: --index annoy")
def c_match_unknown_index(tmp, runs):
    return Case(match(tmp, runs.pairs, "id,name\nr1,acme kettle\n", "--index", "annoy"), ["annoy", "flat", "hnsw"])


@case("artifacts", "match: -k 0", fixed=True)
def c_match_k_zero(tmp, runs):
    return Case(match(tmp, runs.pairs, "id,name\nr1,acme kettle\n", "-k", "0"), ["-k 0", "at least 1"])


@case("artifacts", "search: -k 0", fixed=True)
def c_search_k_zero(tmp, runs):
    return Case(search(runs.retrieval, "-k", "0"), ["-k 0", "at least 1"])


@case("artifacts", "inspect: a dense retrieval run")
def c_inspect_dense_run(tmp, runs):
    return Case(["inspect", str(runs.retrieval), "flow"], ["is a retrieval run", "`simlab inspect` takes runs of task"])


@case("artifacts", "inspect: a folder that is not a run")
def c_inspect_not_a_run(tmp, runs):
    (tmp / "empty").mkdir()
    return Case(["inspect", str(tmp / "empty"), "flow"], ["not a simlab run folder", "make one with `simlab run`"])


@case("artifacts", "report: metrics.json not JSON", fixed=True)
def c_report_corrupt_metrics(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    write(run / "metrics.json", '{"bm25": ')
    return Case(
        ["report", str(run), "--out", str(tmp / "out" / "r.html")], ["metrics.json:1", "not valid JSON", "re-run"]
    )


@case("artifacts", "report: perquery.tsv with a text value")
def c_report_corrupt_perquery(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    write(run / "perquery.tsv", "system\tquery_id\tmetric\tvalue\nbm25\tq1\tndcg@10\thigh\n")
    return Case(
        ["report", str(run), "--out", str(tmp / "out" / "r.html")], ["perquery.tsv:2", "is not a number", "re-run"]
    )


@case("artifacts", "report: a folder that is not a run")
def c_report_not_a_run(tmp, runs):
    (tmp / "empty").mkdir()
    return Case(["report", str(tmp / "empty"), "--out", str(tmp / "out" / "r.html")], ["is not a run folder"])


@case("artifacts", "compare: metrics.json not JSON")
def c_compare_corrupt_metrics(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    write(run / "metrics.json", "[1, 2")
    return Case(["compare", str(run)], ["metrics.json:1", "not valid JSON", "re-run"])


@case("artifacts", "compare: perquery.tsv with 3 fields on a line")
def c_compare_corrupt_perquery(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    write(run / "perquery.tsv", "system\tquery_id\tmetric\tvalue\nbm25\tq1\t0.5\n")
    return Case(["compare", str(run)], ["perquery.tsv:2", "3 tab-separated fields, not 4", "re-run"])


@case("artifacts", "compare: perquery.tsv not UTF-8", fixed=True)
def c_compare_perquery_not_utf8(tmp, runs):
    run = runs.copy("retrieval", tmp / "run")
    write(run / "perquery.tsv", b"system\tquery_id\tmetric\tvalue\nbm25\tq\xe9\tndcg@10\t0.5\n")
    return Case(["compare", str(run)], ["perquery.tsv:2", "UTF-8", "re-run"])


@case("artifacts", "compare: --baseline that is not a system")
def c_compare_unknown_baseline(tmp, runs):
    return Case(["compare", str(runs.retrieval), "--baseline", "bm99"], ["bm99", "bm25"])


@case("artifacts", "compare: --metrics ndcg@7")
def c_compare_unknown_metric(tmp, runs):
    return Case(["compare", str(runs.retrieval), "--metrics", "ndcg@7"], ["ndcg@7", "ndcg@10"])


@case("artifacts", "compare: --test ttest")
def c_compare_unknown_test(tmp, runs):
    return Case(["compare", str(runs.retrieval), "--test", "ttest"], ["ttest", "fisher"])


@case("artifacts", "compare: --correction sidak")
def c_compare_unknown_correction(tmp, runs):
    return Case(["compare", str(runs.retrieval), "--correction", "sidak"], ["sidak", "holm"])


@case("artifacts", "compare: --alpha 5")
def c_compare_alpha(tmp, runs):
    return Case(["compare", str(runs.retrieval), "--alpha", "5"], ["alpha", "(0, 1)"])


@case("artifacts", "compare: one run folder given twice")
def c_compare_same_run_twice(tmp, runs):
    return Case(["compare", str(runs.retrieval), str(runs.retrieval)], ["given twice"])


@case("artifacts", "report: --baseline that is not a system")
def c_report_unknown_baseline(tmp, runs):
    argv = ["report", str(runs.retrieval), "--out", str(tmp / "out" / "r.html"), "--baseline", "bm99"]
    return Case(argv, ["--baseline 'bm99' is not a system", "bm25"])


@case("artifacts", "report: a sweep folder whose sweep.json is not JSON")
def c_report_sweep_json(tmp, runs):
    write(tmp / "sweep" / "sweep.json", "{")
    return Case(
        ["report", str(tmp / "sweep"), "--out", str(tmp / "out" / "r.html")], ["sweep.json:1", "not valid JSON"]
    )


@case("artifacts", "compare: a folder that is not a run")
def c_compare_not_a_run(tmp, runs):
    (tmp / "empty").mkdir()
    return Case(["compare", str(tmp / "empty")], ["is not a run folder", "simlab run"])


# ================================================================== data filter-pca


def filter_pca(tmp: Path, src: Path, *extra: str) -> list[str]:
    argv = ["data", "filter-pca", str(src), "--label1-max", "90", "--label0-min", "10"]
    return [*argv, "--out", str(tmp / "out" / "filtered"), *extra]


def converted(tmp: Path) -> Path:
    """A labelled-pairs folder (tableA.csv, tableB.csv, pairs/<split>.csv), as `data convert wic-tsv` writes it."""
    folder = tmp / "data"
    write(folder / "tableA.csv", "id,text,target,char_start,char_end\nc0,my spring holidays,spring,3,9\n")
    write(folder / "tableB.csv", "id,text,target,hypernyms\nd0,the season of growth,spring,season\n")
    for split in ("train", "val", "test"):
        write(folder / "pairs" / f"{split}.csv", "ltable_id,rtable_id,label\nc0,d0,1\n")
    return folder


@case("filter-pca", "--units centimetres")
def c_pca_units(tmp, runs):
    return Case(filter_pca(tmp, converted(tmp), "--units", "centimetres"), ["units 'centimetres'", "percentile"])


@case("filter-pca", "--label1-max 150 (a percentile)")
def c_pca_percentile_range(tmp, runs):
    argv = filter_pca(tmp, converted(tmp))
    argv[argv.index("90")] = "150"
    return Case(argv, ["150", "0", "100"])


@case("filter-pca", "--splits holdout")
def c_pca_unknown_split(tmp, runs):
    return Case(filter_pca(tmp, converted(tmp), "--splits", "holdout"), ["holdout", "splits are train, val, test"])


@case("filter-pca", "a records file (groups, no labelled pairs)")
def c_pca_records(tmp, runs):
    src = write(tmp / "records.csv", "id,group,name\nr1,g1,a\n")
    return Case(filter_pca(tmp, src), ["records.csv", "the PCA filter needs labelled pairs"])


@case("filter-pca", "a folder that is not a dataset")
def c_pca_not_a_dataset(tmp, runs):
    (tmp / "src").mkdir()
    return Case(filter_pca(tmp, tmp / "src"), ["src", "not a matching dataset", "Expected a records file"])


# ================================================================== the checks


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under `folder`, a file with its size and modification time: a new, lost or rewritten file shows.

    (A folder's own time changes when a lock file comes and goes in it; only its presence counts.)
    """
    out = {}
    for p in folder.rglob("*"):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (0, 0) if p.is_dir() and not p.is_symlink() else (st.st_size, st.st_mtime_ns)
    return out


def _invoke(built: Case) -> tuple[str, int]:
    """Run the CLI in-process: (the error message, or what went wrong instead; the exit code)."""
    from typer.testing import CliRunner

    from simlab.cli import app
    from simlab.errors import SimlabError

    if built.call is not None:
        try:
            built.call()
        except SimlabError as e:
            return str(e), e.exit_code
        except Exception as e:  # noqa: BLE001 - the test reports it
            return repr(e), 1
        return "accepted", 0
    result = CliRunner().invoke(app, built.argv)
    if not isinstance(result.exception, SimlabError):
        return f"{result.exception!r}\n{result.output}", result.exit_code
    return str(result.exception), result.exception.exit_code


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_bad_input_exits_2_naming_the_fault_and_leaves_nothing(spec, tmp_path, runs, monkeypatch):
    if spec.group == "artifacts":  # the shared runs first, outside tmp_path
        _ = runs.retrieval, runs.pairs
    monkeypatch.chdir(tmp_path)  # anything written to the working directory would count as new
    (tmp_path / "out").mkdir()  # the --out parent of every case
    built = spec.build(tmp_path, runs)
    before = _snapshot(tmp_path)
    message, code = _invoke(built)
    assert code == 2, message
    for words in built.expect:
        assert words in message, f"{words!r} not in: {message}"
    assert "Traceback" not in message
    assert _snapshot(tmp_path) == before, sorted(_snapshot(tmp_path).items() ^ before.items())
    if built.process:
        proc = subprocess.run(
            [sys.executable, "-m", "simlab", *built.argv],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=os.environ | {"HF_HUB_OFFLINE": "1"},
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and built.expect[0] in proc.stderr, proc.stderr
        assert _snapshot(tmp_path) == before, sorted(_snapshot(tmp_path).items() ^ before.items())


def test_a_failed_run_leaves_no_out_parent_it_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = c_pairs_split_empty(tmp_path, None)
    out = built.argv.index("--out") + 1
    built.argv[out] = str(tmp_path / "new" / "parent" / "run")
    message, code = _invoke(built)
    assert code == 2, message
    assert not (tmp_path / "new").exists()


def test_the_suite_covers_every_group_with_enough_cases():
    assert {s.group for s in SPECS} == set(GROUPS)
    assert len(SPECS) >= 80 and len({s.name for s in SPECS}) == len(SPECS)


def test_docs_reliability_lists_every_case():
    page = (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    missing = [s.name for s in SPECS if f"| `{s.name}` |" not in page]
    assert not missing, f"regenerate the table of docs/RELIABILITY.md (python tests/test_bad_input.py): {missing}"


GROUPS = {
    "converters": "`simlab data convert`: WiC, WiC-TSV, OEWN, Glasgow sources",
    "deepmatcher": "DeepMatcher folders (convert and run)",
    "datasets": "retrieval datasets read by `simlab run` (BEIR, MS MARCO, TREC, Glasgow) and TREC run files",
    "config": "experiment configs, `--set`, `--nproc`",
    "multilabel": "multi-label items (`task: multilabel`)",
    "pairs": "records files with groups (`task: pairs`)",
    "artifacts": "run folders and saved indexes: `search`, `match`, `inspect`, `report`, `compare`",
    "filter-pca": "`simlab data filter-pca` options",
}


def _table() -> str:
    """The tables of docs/RELIABILITY.md, one per group: every case, its input, command and outcome."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="simlab-bad-input-"))
    runs = Runs(base / "runs")
    (base / "runs").mkdir()
    out: list[str] = []
    for group, title in GROUPS.items():
        out += ["", f"#### {title}", "", "| case | input | command | outcome |", "|---|---|---|---|"]
        for spec in (s for s in SPECS if s.group == group):
            tmp = base / spec.name
            (tmp / "out").mkdir(parents=True)
            built = spec.build(tmp, runs)
            message, code = _invoke(built)
            command = (
                built.argv[0]
                if built.call
                else "simlab " + " ".join(built.argv[:2] if built.argv[0] == "data" else built.argv[:1])
            )
            if built.argv[0] == "data":
                command += f" {built.argv[2]}" if built.argv[1] == "convert" else ""
            text = message.replace(str(tmp) + "/", "").replace(str(base) + "/", "").replace(str(ROOT) + "/", "")
            text = text.splitlines()[0].replace("|", "\\|")
            text = text if len(text) <= 150 else text[:147] + "..."
            fixed = " (fixed)" if spec.fixed else ""
            out.append(f"| `{spec.name}` | {spec.what} | `{command}` | exit {code}{fixed}: {text} |")
    shutil.rmtree(base)
    return "\n".join(out[1:])


TABLE_START, TABLE_END = "<!-- bad-input cases: start -->", "<!-- bad-input cases: end -->"

if __name__ == "__main__":  # rewrite the table of docs/RELIABILITY.md between its two markers
    sys.path.insert(0, str(Path(__file__).parent))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    doc = ROOT / "docs" / "RELIABILITY.md"
    head, rest = doc.read_text(encoding="utf-8").split(TABLE_START)
    tail = rest.split(TABLE_END)[1]
    doc.write_text(f"{head}{TABLE_START}\n{_table()}\n{TABLE_END}{tail}", encoding="utf-8")
    print(f"{doc}: {len(SPECS)} cases")
