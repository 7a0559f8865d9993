"""The SMART/Glasgow parser and converter: tiny hand-checkable fixtures, then the real data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simlab.data.beir import read_beir
from simlab.data.glasgow import convert_glasgow, parse_records, read_glasgow
from simlab.data.loader import convert, load_collection
from simlab.errors import DataError

# Four documents: 1 normal (its .W repeats the title, as in Cranfield), 2 normal,
# 3 with an empty .W (text falls back to the title), 4 with neither title nor text.
CRAN_DOCS = """\
.I 1
.T
wing flutter
.A
smith,j.
.B
j. ae. scs. 25, 1958, 324.
.W
wing flutter
  tests of wing flutter at high speed .
.I 2
.T
heat slabs
.W
heat conduction in
composite slabs .
.I 3
.T
boundary layer
.W
.I 4
.T
.A
.B
.W
"""

# `.I` ids are zero-padded and not consecutive: 001, 002, 005, 007 (ids 1, 2, 5, 7).
CRAN_QUERIES = """\
.I 001
.W
what is wing flutter .
.I 002
.W
how is heat conducted in slabs .
.I 005
.W
what is a boundary
layer .
.I 007
.W
a query nobody judged .
"""

# Query numbers are POSITIONS 1..3 in cran.qry: 3 means `.I 005`. Doc 9 does not exist.
CRAN_QRELS = """\
1 1 2
1 4 -1
2 2 1 
3 3 4
3 9 3
"""


def write_crlf(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", "\r\n").encode())
    return path


@pytest.fixture
def cran(tmp_path: Path) -> Path:
    root = tmp_path / "cran"
    write_crlf(root / "cran.all.1400", CRAN_DOCS)
    write_crlf(root / "cran.qry", CRAN_QUERIES)
    write_crlf(root / "cranqrel", CRAN_QRELS)
    return root


def test_tiny_cranfield(cran: Path) -> None:
    c = read_glasgow(cran)
    assert c.name == "cranfield"
    assert c.corpus.ids == ["1", "2", "3", "4"]
    assert c.corpus.titles == ["wing flutter", "heat slabs", "boundary layer", ""]
    assert c.corpus.texts == [
        "wing flutter tests of wing flutter at high speed .",
        "heat conduction in composite slabs .",
        "boundary layer",
        "",
    ]
    assert c.queries.ids == ["1", "2", "5", "7"]
    assert c.queries.texts[2] == "what is a boundary layer ."
    assert not any("\r" in t for t in c.corpus.texts + c.corpus.titles + c.queries.texts)
    # gain = 5 - code; the -1 row and the unknown doc are gone; query 7 has no qrels.
    assert c.qrels["test"].judgements == {"1": {"1": 3}, "2": {"2": 4}, "5": {"3": 1}}
    assert list(c.qrels) == ["test"]
    assert c.notes == (
        "cran.all.1400: 2 documents with an empty .W use the title as text; "
        "1 of them also has no title and stay empty (4)",
        "cranqrel: query numbers are 1-based positions in cran.qry, not its .I ids "
        "(1 of 3 numbers are not .I ids, all lie within 1..4); mapped positions to ids (e.g. 3 -> 5)",
        "cranqrel: 1 judgement with code -1 (not relevant) left out; codes 1..4 became gains 4..1 (gain = 5 - code)",
        "cranqrel: 1 judgement names 1 unknown document (9); they were left out",
    )


def test_qrels_numbered_by_id_are_not_remapped(cran: Path) -> None:
    write_crlf(cran / "cranqrel", "1 1 1\n5 3 2\n7 2 3\n")
    c = read_glasgow(cran)
    assert c.qrels["test"].judgements == {"1": {"1": 4}, "5": {"3": 3}, "7": {"2": 2}}
    assert not any("positions" in note for note in c.notes)


def test_query_numbers_beyond_the_query_count_are_unknown_not_positions(cran: Path) -> None:
    write_crlf(cran / "cranqrel", "1 1 1\n9 3 2\n")
    c = read_glasgow(cran)
    assert c.qrels["test"].judgements == {"1": {"1": 4}}
    assert "1 judgement names 1 unknown query (9)" in c.notes[-1]


def test_cisi_like_binary_qrels_and_case_insensitive_names(tmp_path: Path) -> None:
    root = tmp_path / "cisi"
    root.mkdir()
    (root / "cisi.all").write_text(
        ".I 1\n.T \nLibraries\n.A \nDoe, J.\n.A\nRoe, K.\n.W\n   About libraries.\n.X\n1\t5\t1\n"
        ".I 2\n.T\nIndexing\n.W\nHow to index.\n.X\n2\t5\t2\n"
    )
    (root / "Cisi.Qry").write_text(".I 1\n.W\nWhat about libraries?\n.I 2\n.T\nA title\n.W\nIndex?\n")
    (root / "CISI.rel").write_text("     1     1\t0\t0.000000\n     1     2\t0\t0.000000\n")
    c = read_glasgow(root)
    assert c.name == "cisi"
    assert c.corpus.texts == ["About libraries.", "How to index."]
    assert c.queries.texts == ["What about libraries?", "Index?"]
    assert c.qrels["test"].judgements == {"1": {"1": 1, "2": 1}}
    assert c.notes == ()


def test_med_trec_qrels_and_documents_without_title(tmp_path: Path) -> None:
    root = tmp_path / "med"
    root.mkdir()
    (root / "MED.ALL").write_text(".I 1\n.W\ncorrelation of blood.\n.I 2\n.W\nkidney stones.\n")
    (root / "MED.QRY").write_text(".I 1\n.W\nblood\n")
    (root / "MED.REL").write_text("1 0 2 1\n1 0 1 1\n")
    c = load_collection(root)
    assert c.name == "med"
    assert c.corpus.titles == ["", ""]
    assert c.qrels["test"].judgements == {"1": {"2": 1, "1": 1}}


def test_convert_glasgow_writes_beir(cran: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "cranfield"
    written = convert("glasgow", cran, out)
    back = read_beir(out)
    assert back.corpus == written.corpus
    assert back.queries == written.queries
    assert back.qrels["test"].judgements == written.qrels["test"].judgements
    with pytest.raises(DataError, match="already exists"):
        convert_glasgow(cran, out)
    convert_glasgow(cran, out, overwrite=True)


@pytest.mark.parametrize(
    ("qrels", "line", "message"),
    [
        ("1 1 2\n1 2\n", 2, "expected 3 whitespace-separated fields `query doc code`, got 2"),
        ("1 1 2\n\n1 2 7\n", 3, "expected relevance code 1, 2, 3, 4 or -1 in column 3, got '7'"),
    ],
)
def test_malformed_qrels_line(cran: Path, qrels: str, line: int, message: str) -> None:
    write_crlf(cran / "cranqrel", qrels)
    with pytest.raises(DataError, match=re.escape(f"{cran / 'cranqrel'}:{line}: {message}")):
        read_glasgow(cran)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("stray text\n.I 1\n.W\nx\n", 1, "expected a `.I <id>` line to start the first record"),
        (".I 1\n.W\nx\n.I\n.W\ny\n", 4, "expected `.I <id>`"),
        (".I 1\n.W\nx\n.I 01\n.W\ny\n", 4, "id 1 already started a record on line 1"),
        (".I 1\norphan text\n", 2, "text before any field marker"),
    ],
)
def test_malformed_records(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "x.all"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(f"{path}:{line}: {message}")):
        parse_records(path)


def test_missing_files(cran: Path, tmp_path: Path) -> None:
    (cran / "cran.qry").unlink()
    with pytest.raises(DataError, match=r"missing cran\.qry; the Glasgow cranfield layout"):
        read_glasgow(cran)
    with pytest.raises(DataError, match="no Glasgow collection found"):
        read_glasgow(tmp_path)


# ---------------------------------------------------------------- real data (skips without ../shared/data)


def test_real_cranfield(shared_data: Path) -> None:
    root = shared_data / "cranfield"
    c = read_glasgow(root)
    raw_rows = [line for line in (root / "cranqrel").read_text().splitlines() if line.strip()]
    qrels = c.qrels["test"]
    assert (len(c.corpus), len(c.queries), len(raw_rows)) == (1400, 225, 1837)
    assert len(qrels) == 1612 == 1837 - 225
    assert sorted(qrels.judgements) == sorted(c.queries.ids)
    assert len(qrels.query_ids()) == 225
    assert c.queries.ids[:4] == ["1", "2", "4", "8"] and c.queries.ids[-1] == "365"
    for doc in ("471", "995"):
        i = c.corpus.ids.index(doc)
        assert c.corpus.texts[i] == c.corpus.titles[i] == ""
    # position 3 in cran.qry is `.I 004` (heat conduction in composite slabs); doc 5 is about that.
    assert qrels.judgements["4"]["5"] == 2  # code 3
    assert "heat conduction" in c.queries.texts[2]
    assert any("225 judgements with code -1" in n for n in c.notes)
    assert any("positions in cran.qry" in n for n in c.notes)
    counts: dict[int, int] = {}
    for docs in qrels.judgements.values():
        for gain in docs.values():
            counts[gain] = counts.get(gain, 0) + 1
    assert counts == {4: 128, 3: 387, 2: 734, 1: 363}  # codes 1:128, 2:387, 3:734, 4:363


def test_real_cisi(shared_data: Path) -> None:
    c = load_collection(shared_data / "cisi")
    qrels = c.qrels["test"]
    assert (len(c.corpus), len(c.queries), len(qrels), len(qrels.query_ids())) == (1460, 112, 3114, 76)
    assert set(v for docs in qrels.judgements.values() for v in docs.values()) == {1}
    assert c.notes == ()
    assert c.corpus.titles[0] == "18 Editions of the Dewey Decimal Classifications"


def test_real_cranfield_converts_and_reads_back(shared_data: Path, tmp_path: Path) -> None:
    written = convert_glasgow(shared_data / "cranfield", tmp_path / "cranfield")
    back = load_collection(tmp_path / "cranfield")
    assert back.corpus == written.corpus
    assert back.queries == written.queries
    assert back.qrels["test"].judgements == written.qrels["test"].judgements


def test_cli_convert_prints_counts_and_refuses_bad_input(cran: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "beir"
    cmd = [sys.executable, "-m", "simlab", "data", "convert"]
    ok = subprocess.run([*cmd, "glasgow", str(cran), "--out", str(out)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "documents" in ok.stdout and (out / "corpus.jsonl").is_file()
    again = subprocess.run([*cmd, "glasgow", str(cran), "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
    unknown = subprocess.run([*cmd, "smart", str(cran), "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert unknown.returncode == 2 and "glasgow" in unknown.stderr and not (tmp_path / "x").exists()


def test_one_stray_line_does_not_flip_the_position_mapping(cran: Path) -> None:
    """Positions 1..4 (3 is not a .I id) plus one line beyond the 4 queries: named, not a silent re-reading."""
    write_crlf(cran / "cranqrel", "1 1 1\n2 2 1\n3 3 1\n4 1 2\n1 2 2\n2 3 2\n3 1 3\n4 2 3\n1 3 3\n2 1 4\n9 3 2\n")
    with pytest.raises(DataError, match=r"cranqrel: query numbers are 1-based positions in cran.qry .* 1 line\(s\) "
                       r"name a query beyond 4: .*cranqrel:11; fix or remove those lines"):  # fmt: skip
        read_glasgow(cran)


def test_pair_qrels_lines_without_the_trailing_zeros_are_read(tmp_path: Path) -> None:
    root = tmp_path / "cisi"
    root.mkdir()
    (root / "CISI.ALL").write_text(".I 1\n.T\nLibraries\n.W\nAbout libraries.\n.I 2\n.T\nIndexing\n.W\nHow to index.\n")
    (root / "CISI.QRY").write_text(".I 1\n.W\nWhat about libraries?\n.I 2\n.W\nIndex?\n")
    (root / "CISI.REL").write_text("     1     1 0 0.000000\n     2     2\n")  # the last line lacks `0 0`
    assert read_glasgow(root).qrels["test"].judgements == {"1": {"1": 1}, "2": {"2": 1}}
