"""Matching records and labelled pairs: readers, DeepMatcher conversion, group splits."""

from __future__ import annotations

import doctest
import json
from collections import Counter
from pathlib import Path

import pytest

import simlab.data.matching as matching
from simlab.data.matching import (
    LabelledPairs,
    Records,
    group_split,
    groups_from_pairs,
    read_deepmatcher,
    read_matching,
    read_records,
)
from simlab.data.matching_convert import convert_deepmatcher
from simlab.errors import ConfigError, DataError

TABLE_A = "id,title,price\n0,apple iphone 12,699\n1,samsung galaxy s21,799\n2,google pixel 5,\n"
TABLE_B = 'id,title,price\n10,iphone 12 apple,700\n11,"galaxy s21, samsung",800\n12,nokia 3310,40\n'
TRAIN = "ltable_id,rtable_id,label\n0,10,1\n0,11,0\n1,11,1\n2,12,0\n"
VALID = "ltable_id,rtable_id,label\n1,10,0\n2,10,0\n"
TEST = "ltable_id,rtable_id,label\n0,12,0\n1,11,1\n"


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def dm(tmp_path) -> Path:
    files = {
        "tableA.csv": TABLE_A,
        "tableB.csv": TABLE_B,
        "train.csv": TRAIN,
        "valid.csv": VALID,
        "test.csv": TEST,
    }
    return write(tmp_path / "dm", files)


def test_doctests():
    assert doctest.testmod(matching).failed == 0


# ---------------------------------------------------------------- records


def test_read_csv_records_with_groups(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(
        "\ufeffsku,name,description,group,image\n"
        'a1,Red mug,"ceramic, 300 ml",g1,img/a1.jpg\n'
        "a2,Mug red,,g1,\n"
        "\n"
        'b1,Blue pen,"multi\nline",g2,img/b1.jpg\n',
        encoding="utf-8",
    )
    r = read_records(path, id_field="sku", group_field="group")
    assert r.ids == ["a1", "a2", "b1"]
    assert list(r.fields) == ["name", "description", "image"]
    assert r.fields["description"] == ["ceramic, 300 ml", "", "multi\nline"]
    assert r.groups == ["g1", "g1", "g2"]
    assert r.texts(["name", "description"]) == ["Red mug ceramic, 300 ml", "Mug red", "Blue pen multi\nline"]
    assert r.position["b1"] == 2
    assert r.subset([2, 0]).ids == ["b1", "a1"]
    only = read_records(path, id_field="sku", fields=["name"])
    assert list(only.fields) == ["name"] and only.groups is None


def test_read_jsonl_records(tmp_path):
    path = tmp_path / "items.jsonl"
    rows = [
        {"id": 1, "name": "x", "price": 9.5, "group": "g"},
        {"id": "2", "name": "y", "group": "g", "price": None},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    r = read_records(path, group_field="group")
    assert r.ids == ["1", "2"]
    assert r.fields == {"name": ["x", "y"], "price": ["9.5", ""]}
    assert r.groups == ["g", "g"]


def test_missing_id_column_names_file_and_columns(tmp_path):
    path = write(tmp_path, {"t.csv": "sku,title\n1,a\n"}) / "t.csv"
    with pytest.raises(DataError, match=r"t\.csv: no `id` column; columns found: sku, title"):
        read_records(path)
    with pytest.raises(DataError, match="no `grp` column"):
        read_records(path, id_field="sku", group_field="grp")
    with pytest.raises(DataError, match=r"field\(s\) price not found"):
        read_records(path, id_field="sku", fields=["title", "price"])


def test_missing_id_key_in_jsonl(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a", "t": "x"}\n{"t": "y"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"r\.jsonl:2: empty `id`"):
        read_records(path)


def test_duplicate_id_names_file_and_line(tmp_path):
    path = write(tmp_path, {"t.csv": "id,title\n1,a\n2,b\n1,c\n"}) / "t.csv"
    with pytest.raises(DataError, match=r"t\.csv:4: id '1' already appeared on line 2"):
        read_records(path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("id,title\n1,a,extra\n", r"t\.csv:2: 3 fields, but the header has 2"),
        ("id,title,group\n1,a,\n", r"t\.csv:2: empty `group`"),
        ("", r"t\.csv: empty file"),
        ("id,id\n1,2\n", r"t\.csv:1: column\(s\) id appear more than once"),
    ],
)
def test_malformed_csv(tmp_path, text, match):
    path = write(tmp_path, {"t.csv": text}) / "t.csv"
    with pytest.raises(DataError, match=match):
        read_records(path, group_field="group" if "group" in text else None)


def test_not_utf8(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,title\n1,caf\xe9\n")
    with pytest.raises(DataError, match=r"t\.csv:2: not valid UTF-8"):
        read_records(path)


def test_records_check_their_shape():
    with pytest.raises(DataError, match="field 'a' has 1 values for 2 ids"):
        Records(["x", "y"], {"a": ["1"]})
    with pytest.raises(DataError, match="occurs more than once"):
        Records(["x", "x"], {})
    with pytest.raises(DataError, match="label 2 is not 0 or 1"):
        LabelledPairs(["a"], ["b"], [2], "train")


# ---------------------------------------------------------------- DeepMatcher


def test_read_deepmatcher(dm):
    data = read_deepmatcher(dm)
    assert data.kind == "pairs"
    assert data.left.ids == ["0", "1", "2"] and data.right.ids == ["10", "11", "12"]
    assert data.right.fields["title"][1] == "galaxy s21, samsung"
    assert list(data.pairs) == ["train", "val", "test"]
    train = data.pairs["train"]
    assert (train.left_ids, train.right_ids, train.labels) == (
        ["0", "0", "1", "2"],
        ["10", "11", "11", "12"],
        [1, 0, 1, 0],
    )
    assert train.counts() == {"pos": 2, "neg": 2}
    assert data.pairs["val"].split == "val"


@pytest.mark.parametrize(
    "train, match",
    [
        (
            "ltable_id,rtable_id,label\n0,10,1\n7,10,0\n",
            r"train\.csv:3: ltable_id '7' is not an id in tableA\.csv",
        ),
        (
            "ltable_id,rtable_id,label\n0,10,1\n0,99,0\n",
            r"train\.csv:3: rtable_id '99' is not an id in tableB\.csv",
        ),
        ("ltable_id,rtable_id,label\n0,10,1\n0,11,2\n", r"train\.csv:3: label '2' is not 0 or 1"),
        ("ltable_id,rtable_id,label\n0,10,yes\n", r"train\.csv:2: label 'yes' is not 0 or 1"),
        ("ltable_id,rtable_id,label\n0,10,\n", r"train\.csv:2: label '' is not 0 or 1"),
        (
            "ltable_id,rtable_id,label\n0,10,1\n0,10,0\n",
            r"train\.csv:3: pair \('0', '10'\) is labelled 0, but line 2",
        ),
        (
            "left,rtable_id,label\n0,10,1\n",
            r"train\.csv: no `ltable_id` column; columns found: left, rtable_id",
        ),
    ],
)
def test_bad_pair_files(dm, train, match):
    (dm / "train.csv").write_text(train, encoding="utf-8")
    with pytest.raises(DataError, match=match) as e:
        read_deepmatcher(dm)
    assert str(dm / "train.csv") in str(e.value)


def test_pair_error_gives_the_fix(dm):
    (dm / "valid.csv").write_text("ltable_id,rtable_id,label\n0,10,1\n\n5,10,0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"valid\.csv:4: .* fix the id or add the record to tableA\.csv"):
        read_deepmatcher(dm)


def test_labels_written_as_floats_are_accepted(dm):
    (dm / "test.csv").write_text("ltable_id,rtable_id,label\n0,10,1.0\n1,12,0.0\n", encoding="utf-8")
    assert read_deepmatcher(dm).pairs["test"].labels == [1, 0]


def test_missing_file(dm):
    (dm / "valid.csv").unlink()
    with pytest.raises(DataError, match=r"missing valid\.csv; the layout needs tableA\.csv, tableB\.csv"):
        read_deepmatcher(dm)


def test_convert_round_trip(dm, tmp_path):
    out = tmp_path / "norm"
    data = convert_deepmatcher(dm, out)
    assert sorted(p.name for p in out.iterdir()) == [".simlab-files", "meta.json", "pairs", "tableA.csv", "tableB.csv"]
    assert sorted(p.name for p in (out / "pairs").iterdir()) == ["test.csv", "train.csv", "val.csv"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == "simlab-matching" and meta["version"] == 1
    assert meta["pairs"]["train"] == {"pos": 2, "neg": 2}
    back = read_matching(out)
    assert back.kind == "pairs"
    assert back.left.ids == data.left.ids and back.left.fields == data.left.fields
    assert back.right.fields == data.right.fields
    for split in ("train", "val", "test"):
        a, b = data.pairs[split], back.pairs[split]
        assert (a.left_ids, a.right_ids, a.labels) == (b.left_ids, b.right_ids, b.labels)
    assert read_matching(dm).pairs["val"].labels == data.pairs["val"].labels  # raw layout too


def test_convert_refuses_to_overwrite_and_leaves_nothing_on_error(dm, tmp_path):
    out = tmp_path / "norm"
    convert_deepmatcher(dm, out)
    with pytest.raises(DataError, match="already exists; pass overwrite=True"):
        convert_deepmatcher(dm, out)
    convert_deepmatcher(dm, out, overwrite=True)
    (dm / "test.csv").write_text("ltable_id,rtable_id,label\n0,10,maybe\n", encoding="utf-8")
    bad_out = tmp_path / "bad"
    with pytest.raises(DataError, match=r"test\.csv:2"):
        convert_deepmatcher(dm, bad_out)
    assert not bad_out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_converted_folder_from_a_newer_version_is_refused(dm, tmp_path):
    out = tmp_path / "norm"
    convert_deepmatcher(dm, out)
    (out / "meta.json").write_text('{"format": "simlab-matching", "version": 99}', encoding="utf-8")
    with pytest.raises(DataError, match=r"meta\.json: format 'simlab-matching' version 99; this simlab reads"):
        read_matching(out)


def test_read_matching_group_layouts(tmp_path):
    folder = write(tmp_path / "g", {"records.csv": "id,name,group\n1,a,x\n2,b,x\n3,c,y\n"})
    for path in (folder, folder / "records.csv"):
        data = read_matching(path)
        assert data.kind == "groups" and data.left is data.right
        assert data.left.groups == ["x", "x", "y"]
    with pytest.raises(DataError, match="not a matching dataset"):
        read_matching(tmp_path / "nothing-here")


def test_groups_from_pairs(dm):
    r = groups_from_pairs(read_deepmatcher(dm))
    assert r.ids == ["A:0", "A:1", "A:2", "B:10", "B:11", "B:12"]
    # matches: 0-10 (train), 1-11 (train, test)
    assert r.groups == ["A:0", "A:1", "A:2", "A:0", "A:1", "B:12"]
    assert r.fields["title"][3] == "iphone 12 apple"
    assert groups_from_pairs(read_deepmatcher(dm), splits=["test"]).groups[3] == "B:10"


# ---------------------------------------------------------------- group split


def _groups(seed: int, n_groups: int) -> list[str]:
    import random

    rng = random.Random(seed)
    groups = [f"g{g}" for g in range(n_groups) for _ in range(rng.choice([1, 1, 2, 3, 5, 8]))]
    rng.shuffle(groups)
    return groups


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("val_ratio, test_ratio", [(0.1, 0.1), (0.2, 0.1), (0.0, 0.3), (0.15, 0.0)])
def test_group_split_keeps_groups_whole_and_sizes_near_ratios(seed, val_ratio, test_ratio):
    groups = _groups(seed, 300)
    split = group_split(groups, val_ratio, test_ratio, seed)
    assert sorted(i for ids in split.values() for i in ids) == list(range(len(groups)))
    side = {}
    for name, ids in split.items():
        assert ids == sorted(ids)
        for i in ids:
            assert side.setdefault(groups[i], name) == name, f"group {groups[i]} on two sides"
    biggest = max(Counter(groups).values())
    n = len(groups)
    assert abs(len(split["val"]) - n * val_ratio) <= biggest
    assert abs(len(split["test"]) - n * test_ratio) <= biggest
    assert split == group_split(groups, val_ratio, test_ratio, seed)


def test_group_split_exact_for_singletons_and_seeded():
    groups = [str(i) for i in range(1000)]
    a = group_split(groups, 0.1, 0.2, seed=1)
    assert [len(a[s]) for s in ("train", "val", "test")] == [700, 100, 200]
    assert a != group_split(groups, 0.1, 0.2, seed=2)


@pytest.mark.parametrize("val, test", [(-0.1, 0.1), (0.5, 0.5), (1.0, 0.0), ("0.1", 0.1)])
def test_group_split_rejects_bad_ratios(val, test):
    with pytest.raises(ConfigError, match="ratio"):
        group_split(["a", "b"], val, test, 0)


# ---------------------------------------------------------------- real data


@pytest.mark.parametrize(
    "name, n_left, n_right, sizes",
    [
        ("amazon-google", 1363, 3226, {"train": (6874, 699), "val": (2293, 234), "test": (2293, 234)}),
        ("walmart-amazon", 2554, 22074, {"train": (6144, 576), "val": (2049, 193), "test": (2049, 193)}),
    ],
)
def test_real_deepmatcher(shared_data, tmp_path, name, n_left, n_right, sizes):
    data = read_deepmatcher(shared_data / name)
    assert (len(data.left), len(data.right)) == (n_left, n_right)
    assert {s: (len(p), p.counts()["pos"]) for s, p in data.pairs.items()} == sizes
    assert "title" in data.left.fields and "title" in data.right.fields
    out = convert_deepmatcher(shared_data / name, tmp_path / name)
    back = read_matching(tmp_path / name)
    assert back.left.fields == out.left.fields and back.right.fields == out.right.fields
    assert {s: (len(p), p.counts()["pos"]) for s, p in back.pairs.items()} == sizes
    records = groups_from_pairs(data)
    assert len(records) == n_left + n_right
    split = group_split(records.groups, 0.1, 0.1, seed=42)
    sides = {}
    for s, ids in split.items():
        for i in ids:
            assert sides.setdefault(records.groups[i], s) == s
