"""BEIR, MS MARCO and TREC readers/writers, and the layout-detecting loader."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from simlab.data.beir import read_beir, write_beir
from simlab.data.loader import CONVERTERS, convert, load_collection
from simlab.data.msmarco import read_msmarco, read_triples
from simlab.data.trec import read_trec_qrels, read_trec_run, write_trec_qrels, write_trec_run
from simlab.errors import ConfigError, DataError, RunFolderError
from simlab.records import Collection, Corpus, Qrels, Queries, Run


def at(path: Path, line: int) -> str:
    """Regex for the `file:line` prefix of an error message."""
    return re.escape(f"{path}:{line}:")


@pytest.fixture
def collection() -> Collection:
    corpus = Corpus(
        ids=["d1", "d2", "d3", "d4"],
        texts=["the cat sat", "dogs bark loudly", 'héllo wörld "quoted"', ""],
        titles=["Cats", "", "Unicode", "Empty"],
    )
    queries = Queries(["q1", "q2", "q3"], ["where do cats sit", "loud dogs", "no judgements"])
    qrels = {
        "test": Qrels({"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 1}}),
        "dev": Qrels({"q2": {"d4": 1}}),
    }
    return Collection("tiny", corpus, queries, qrels)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def beir_folder(root: Path, corpus: list[str], queries: list[str], qrels: list[str]) -> Path:
    write_lines(root / "corpus.jsonl", corpus)
    write_lines(root / "queries.jsonl", queries)
    write_lines(root / "qrels" / "test.tsv", qrels)
    return root


DOCS = [json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) for i in (1, 2, 3)]
QUERIES = [json.dumps({"_id": "q1", "text": "one"}), json.dumps({"_id": "q2", "text": "two"})]


# ---------------------------------------------------------------- BEIR


def test_beir_round_trip(tmp_path: Path, collection: Collection) -> None:
    out = tmp_path / "beir"
    write_beir(collection, out)
    assert sorted(p.name for p in out.iterdir()) == [".simlab-files", "corpus.jsonl", "qrels", "queries.jsonl"]
    assert (out / "qrels" / "test.tsv").read_text().splitlines() == [
        "query-id\tcorpus-id\tscore",
        "q1\td1\t2",
        "q1\td3\t0",
        "q2\td2\t1",
    ]
    back = read_beir(out)
    assert back.name == "beir"
    assert back.corpus == collection.corpus
    assert back.queries == collection.queries
    assert {s: dict(q.judgements) for s, q in back.qrels.items()} == {
        s: dict(q.judgements) for s, q in collection.qrels.items()
    }
    assert back.notes == ()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_write_beir_refuses_existing_folder(tmp_path: Path, collection: Collection) -> None:
    out = tmp_path / "beir"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists.*overwrite=True"):
        write_beir(collection, out)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(RunFolderError, match="was not written by simlab"):  # a folder simlab did not write
        write_beir(collection, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    out.rmdir()
    write_beir(collection, out)
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="holds files simlab did not write: keep.txt"):
        write_beir(collection, out, overwrite=True)
    (out / "keep.txt").unlink()
    write_beir(collection, out, overwrite=True)  # simlab's own folder, nothing else in it: replaced
    assert len(read_beir(out).corpus) == 4


def test_beir_unknown_ids_are_left_out_with_a_note(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = beir_folder(
        tmp_path / "c",
        DOCS,
        QUERIES,
        ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td8\t1", "q2\td9\t1", "q2\td8\t2", "q7\td1\t1"],
    )
    with caplog.at_level(logging.WARNING, logger="simlab.data"):
        c = read_beir(root)
    assert c.qrels["test"].judgements == {"q1": {"d1": 1}}
    assert c.notes == (
        "qrels/test.tsv: 3 judgements name 2 unknown documents (d8, d9), "
        "1 judgement names 1 unknown query (q7); they were left out",
    )
    assert c.notes[0] in caplog.text


def test_beir_without_qrels_has_a_note(tmp_path: Path) -> None:
    root = tmp_path / "c"
    write_lines(root / "corpus.jsonl", DOCS)
    write_lines(root / "queries.jsonl", QUERIES)
    c = read_beir(root)
    assert c.qrels == {}
    assert "no qrels/<split>.tsv" in c.notes[0]


def test_beir_qrels_header_is_optional_and_ids_may_be_numbers(tmp_path: Path) -> None:
    docs, queries = ['{"_id": 7, "text": "seven"}'], ['{"_id": 1, "text": "q"}']
    root = beir_folder(tmp_path / "c", docs, queries, ["1\t7\t1"])
    c = read_beir(root)
    assert c.corpus.ids == ["7"] and c.corpus.titles == [""]
    assert c.qrels["test"].judgements == {"1": {"7": 1}}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"_id": "d2", "text": ', "invalid JSON"),
        ('{"title": "t", "text": "x"}', "missing key `_id`"),
        ('{"_id": "d2", "title": "t"}', "missing key `text`"),
        ('["d2", "x"]', "expected a JSON object"),
        ('{"_id": "d1", "text": "again"}', "document id 'd1' already appeared on line 1"),
        ('{"_id": "d2", "text": 5}', "key `text` must be a string"),
    ],
)
def test_beir_malformed_corpus_line(tmp_path: Path, line: str, message: str) -> None:
    root = beir_folder(tmp_path / "c", [DOCS[0], line], QUERIES, [])
    with pytest.raises(DataError, match=at(root / "corpus.jsonl", 2) + ".*" + re.escape(message)):
        read_beir(root)


def test_beir_malformed_qrels_line(tmp_path: Path) -> None:
    qrels = ["query-id\tcorpus-id\tscore", "q1\td1\t1", "", "q1 d2 1"]
    root = beir_folder(tmp_path / "c", DOCS, QUERIES, qrels)
    expected = at(root / "qrels" / "test.tsv", 4) + " expected 3 tab-separated fields .*got 1"
    with pytest.raises(DataError, match=expected):
        read_beir(root)
    write_lines(root / "qrels" / "test.tsv", ["q1\td1\thigh"])
    expected = at(root / "qrels" / "test.tsv", 1) + " expected an integer relevance grade"
    with pytest.raises(DataError, match=expected):
        read_beir(root)


def test_beir_missing_file_names_file_and_layout(tmp_path: Path) -> None:
    root = tmp_path / "c"
    write_lines(root / "corpus.jsonl", DOCS)
    with pytest.raises(DataError, match=r"missing queries\.jsonl; the BEIR layout"):
        read_beir(root)


# ---------------------------------------------------------------- TREC


def test_trec_run_round_trip_ranks_by_score_then_doc_id(tmp_path: Path) -> None:
    run = Run("bm25", {"q2": {"d3": 0.5, "d1": 2.0, "d2": 2.0}, "q1": {"d9": 1 / 3}})
    path = tmp_path / "runs" / "bm25.trec"
    write_trec_run(run, path)
    import math

    below = math.nextafter(2.0, -math.inf)  # the tie d1 = d2 is written one float step lower: one ranking
    assert path.read_text().splitlines() == [
        "q2 Q0 d2 1 2.0 bm25",
        f"q2 Q0 d1 2 {below!r} bm25",
        "q2 Q0 d3 3 0.5 bm25",
        f"q1 Q0 d9 1 {1 / 3!r} bm25",
    ]
    back = read_trec_run(path)
    assert back.scores == {"q2": {"d2": 2.0, "d1": below, "d3": 0.5}, "q1": {"d9": 1 / 3}}
    assert [d for d, _ in back.ranked("q2")] == [d for d, _ in run.ranked("q2")]
    assert read_trec_run(path, name="other").name == "other"


def test_trec_run_rejects_whitespace_in_names(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run name 'my run'.*whitespace"):
        write_trec_run(Run("my run", {"q1": {"d1": 1.0}}), tmp_path / "r.trec")


def test_trec_qrels_round_trip(tmp_path: Path) -> None:
    qrels = Qrels({"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}})
    path = tmp_path / "qrels.txt"
    write_trec_qrels(qrels, path)
    assert path.read_text() == "q1 0 d1 2\nq1 0 d2 0\nq2 0 d3 1\n"
    assert read_trec_qrels(path) == qrels


def test_trec_qrels_reads_crlf_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_bytes(b"1\t0\t7\t1\r\n1 0 8 2\r\n\r\n")
    assert read_trec_qrels(path).judgements == {"1": {"7": 1, "8": 2}}


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (["q1 0 d1 1", "q1 d2"], 2, "expected 4 whitespace-separated fields `qid 0 docid rel`, got 2"),
        (["q1 0 d1 yes"], 1, "expected an integer relevance grade, got 'yes'"),
        (
            ["q1 0 d1 1", "q1 0 d1 2"],
            2,
            "query 'q1' / document 'd1' is judged 2, but an earlier line judged it 1",
        ),
    ],
)
def test_trec_qrels_malformed(tmp_path: Path, lines: list[str], line: int, message: str) -> None:
    path = write_lines(tmp_path / "qrels.txt", lines)
    with pytest.raises(DataError, match=at(path, line) + " " + re.escape(message)):
        read_trec_qrels(path)


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (["q1 Q0 d1 1 2.5 t", "q1 Q0 d2 2 2.5"], 2, "expected 6 whitespace-separated fields"),
        (["q1 Q0 d1 1 high t"], 1, "expected a numeric score in column 5, got 'high'"),
        (["q1 Q0 d1 first 1.0 t"], 1, "expected an integer rank in column 4"),
        (["q1 Q0 d1 1 1.0 t", "q1 Q0 d1 2 0.5 t"], 2, "document 'd1' is listed twice for query 'q1'"),
    ],
)
def test_trec_run_malformed(tmp_path: Path, lines: list[str], line: int, message: str) -> None:
    path = write_lines(tmp_path / "run.trec", lines)
    with pytest.raises(DataError, match=at(path, line) + " " + re.escape(message)):
        read_trec_run(path)


def test_missing_trec_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.txt: file not found"):
        read_trec_qrels(tmp_path / "nope.txt")


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_bytes(b"q1 0 d1 1\nq1 0 d\xff 1\n")
    with pytest.raises(DataError, match=at(path, 2) + " not valid UTF-8"):
        read_trec_qrels(path)


# ---------------------------------------------------------------- MS MARCO


@pytest.fixture
def msmarco(tmp_path: Path) -> Path:
    root = tmp_path / "msmarco"
    write_lines(root / "collection.tsv", ["0\tthe first passage", "1\tsecond\twith a tab", "2\t"])
    write_lines(root / "queries.dev.tsv", ["10\twhat is first", "11\tsecond?"])
    write_lines(root / "queries.dev.small.tsv", ["10\twhat is first"])
    write_lines(root / "queries.train.tsv", ["20\ttrain query"])
    write_lines(root / "qrels.dev.tsv", ["10\t0\t0\t1", "11 0 1 1", "11 0 5 1"])
    write_lines(root / "qrels.train.tsv", ["20 0 2 1"])
    return root


def test_read_msmarco(msmarco: Path) -> None:
    c = read_msmarco(msmarco)
    assert c.corpus.ids == ["0", "1", "2"]
    assert c.corpus.texts == ["the first passage", "second\twith a tab", ""]
    assert c.queries.ids == ["10", "11", "20"]  # dev, dev.small (same query again), train
    assert {s: dict(q.judgements) for s, q in c.qrels.items()} == {
        "dev": {"10": {"0": 1}, "11": {"1": 1}},
        "train": {"20": {"2": 1}},
    }
    assert c.notes == ("qrels.dev.tsv: 1 judgement names 1 unknown document (5); they were left out",)


def test_msmarco_conflicting_query_text(msmarco: Path) -> None:
    write_lines(msmarco / "queries.train.tsv", ["10\tsomething else"])
    expected = at(msmarco / "queries.train.tsv", 1) + " query '10' has a different text"
    with pytest.raises(DataError, match=expected):
        read_msmarco(msmarco)


def test_msmarco_malformed_and_missing(msmarco: Path) -> None:
    write_lines(msmarco / "collection.tsv", ["0\tok", "1 no tab here"])
    expected = at(msmarco / "collection.tsv", 2) + " expected 2 tab-separated fields"
    with pytest.raises(DataError, match=expected):
        read_msmarco(msmarco)
    (msmarco / "collection.tsv").unlink()
    with pytest.raises(DataError, match=r"missing collection\.tsv; the MS MARCO layout"):
        read_msmarco(msmarco)


def test_read_triples(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "triples.train.tsv", ["q one\tpos one\tneg one", "", "q two\tpos\tneg"])
    assert read_triples(path) == [("q one", "pos one", "neg one"), ("q two", "pos", "neg")]
    write_lines(path, ["q\tpos\tneg", "q\tpos only"])
    with pytest.raises(DataError, match=at(path, 2) + " expected 3 tab-separated fields .* got 2"):
        read_triples(path)


def test_read_triples_on_msmarco_toy(shared_data: Path) -> None:
    triples = read_triples(shared_data / "msmarco-toy-splade" / "triplets" / "raw.tsv")
    assert len(triples) == 100
    assert all(len(t) == 3 and all(t) for t in triples)
    assert triples[0][0] == "is a little caffeine ok during pregnancy"


# ---------------------------------------------------------------- loader


def test_load_collection_detects_layouts(tmp_path: Path, collection: Collection, msmarco: Path) -> None:
    write_beir(collection, tmp_path / "beir")
    assert load_collection(tmp_path / "beir").corpus == collection.corpus
    assert load_collection(msmarco).queries.ids == ["10", "11", "20"]


def test_load_collection_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    with pytest.raises(
        DataError,
        match=r"stuff: no known dataset layout; looked for BEIR \(corpus\.jsonl\).*"
        r"MS MARCO \(collection\.tsv\).*Glasgow/SMART \(cran\.all\.1400 or CISI\.ALL",
    ):
        load_collection(tmp_path / "stuff")
    with pytest.raises(DataError, match="not a folder"):
        load_collection(tmp_path / "missing")


def test_convert_unknown_kind_lists_converters(tmp_path: Path) -> None:
    kinds = ["deepmatcher", "demo-topics", "digits", "glasgow", "oewn", "reuters21578", "wic", "wic-tsv"]
    assert sorted(CONVERTERS) == kinds
    with pytest.raises(ConfigError, match=r"unknown converter 'trec'; choose one of: " + ", ".join(kinds) + r"\."):
        convert("trec", tmp_path, tmp_path / "out")


def test_reuters_modapte_keeps_its_test_split_and_holds_out_a_tenth_of_training_as_val(tmp_path: Path) -> None:
    import json

    src = tmp_path / "reuters"
    (src / "training").mkdir(parents=True)
    (src / "test").mkdir()
    lines = []
    for i in range(1, 41):
        (src / "training" / str(i)).write_text(f"HEADLINE {i}\n  body text number {i}\n")
        lines.append(f"training/{i} {'earn' if i % 2 else 'acq grain'}")
    (src / "test" / "900").write_bytes(b"STRAY \xfc BYTE\n  text\n")  # one non-UTF-8 byte, as in test/17980
    lines.append("test/900 earn")
    (src / "cats.txt").write_text("\n".join(lines) + "\n")
    convert("reuters21578", src, tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "texts.jsonl").read_text().splitlines()]
    splits = [r["split"] for r in rows]
    assert splits.count("test") == 1 and splits.count("val") == 4 and splits.count("train") == 36
    assert rows[1]["labels"] == ["acq", "grain"] and rows[0]["text"] == "HEADLINE 1 body text number 1"
    assert "\ufffd" in rows[-1]["text"]
    (src / "cats.txt").write_text("training/1\n")
    with pytest.raises(DataError, match=r"cats.txt:1: expected"):
        convert("reuters21578", src, tmp_path / "out2")
