"""Multi-label data: label forms, layouts, errors with file:line, stratified splits, converters."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from simlab.config import MultilabelDataConfig
from simlab.data.multilabel import make_splits, parse_labels, read_items, split_items
from simlab.errors import DataError


def _png(path, value=128):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8), mode="L").save(path)


def test_parse_label_forms():
    assert parse_labels(["a", "b"], "|", "f:1") == {"a": 1.0, "b": 1.0}
    assert parse_labels("a|b", "|", "f:1") == {"a": 1.0, "b": 1.0}
    assert parse_labels('["a", "b"]', "|", "f:1") == {"a": 1.0, "b": 1.0}
    assert parse_labels('{"a": 0.7, "b": 0}', "|", "f:1") == {"a": 0.7, "b": 0.0}
    assert parse_labels("", "|", "f:1") == {}
    with pytest.raises(DataError, match=r"f:3: label 'a' has probability 1.5"):
        parse_labels({"a": 1.5}, "|", "f:3")
    with pytest.raises(DataError, match=r"f:4: labels 7 \(int\) are not a list"):
        parse_labels(7, "|", "f:4")


def test_jsonl_with_soft_labels_and_split_column(tmp_path):
    rows = [
        {"id": "t1", "text": "a", "labels": {"x": 0.8, "y": 0.2}, "split": "train"},
        {"id": "t2", "text": "b", "labels": ["y"], "split": "dev"},
        {"id": "t3", "text": "c", "labels": ["x", "z"], "split": "test"},
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = MultilabelDataConfig(path=str(path))
    items = read_items(cfg)
    assert items.kind == "text" and items.soft and items.split == ["train", "val", "test"]
    splits = make_splits(items, cfg)
    assert splits.vocab == ["x", "y"]
    np.testing.assert_allclose(splits.train.targets(splits.vocab), [[0.8, 0.2]])
    assert any("test labels not seen in train" in n and "z (1)" in n for n in splits.notes)


def test_bad_label_list_fails_with_file_and_line(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text('id,text,labels\nt1,hello,"[""a"", ""b""]"\nt2,world,"[""a"", ""b"""\n')
    with pytest.raises(DataError, match=rf"{path}:3: labels .* are not valid JSON"):
        read_items(MultilabelDataConfig(path=str(path)))
    bad = tmp_path / "items.jsonl"
    bad.write_text('{"text": "a", "labels": ["a"]}\n{"text": "b", "labels": 3.5}\n')
    with pytest.raises(DataError, match=rf"{bad}:2: labels 3.5 \(float\)"):
        read_items(MultilabelDataConfig(path=str(bad)))


def test_missing_image_fails_with_file_and_line(tmp_path):
    _png(tmp_path / "img" / "a.png")
    (tmp_path / "labels.csv").write_text("id,image,labels\na,img/a.png,x|y\nb,img/missing.png,x\n")
    with pytest.raises(DataError, match=rf"{tmp_path / 'labels.csv'}:3: image file 'img/missing.png' not found"):
        read_items(MultilabelDataConfig(path=str(tmp_path)))


def test_image_folder_layout(tmp_path):
    for i in range(3):
        _png(tmp_path / "img" / f"{i}.png", 40 * i)
    (tmp_path / "labels.csv").write_text("id,image,labels\n" + "".join(f"i{i},img/{i}.png,x\n" for i in range(3)))
    items = read_items(MultilabelDataConfig(path=str(tmp_path)))
    assert items.kind == "image" and items.ids == ["i0", "i1", "i2"]
    from simlab.data.multilabel import load_images

    pixels = load_images(items.inputs, 4)
    assert pixels.shape == (3, 3, 4, 4) and pixels.dtype == np.uint8
    assert pixels[2].mean() == pytest.approx(80, abs=1)


def _items(n_rare: int, n: int = 120):
    from simlab.data.multilabel import Items

    rng = np.random.default_rng(0)
    labels = []
    for i in range(n):
        labs = {lab: 1.0 for lab, p in (("a", 0.5), ("b", 0.3), ("c", 0.2)) if rng.random() < p}
        if i < n_rare:
            labs["rare"] = 1.0
        labels.append(labs)
    return Items("text", [f"t{i}" for i in range(n)], [f"text {i}" for i in range(n)], labels, [""] * n, "mem")


def test_iterative_stratification_puts_every_label_in_every_split():
    items = _items(n_rare=6)
    idx, warnings = split_items(items, 0.2, 0.2, seed=1)
    assert warnings == []
    assert sorted(idx["train"] + idx["val"] + idx["test"]) == list(range(len(items)))
    assert len(idx["test"]) == 24 and len(idx["val"]) == 24
    for s in ("train", "val", "test"):
        assert sum("rare" in items.labels[i] for i in idx[s]) >= 1, s


def test_too_rare_label_is_warned_about(caplog):
    items = _items(n_rare=1)
    cfg = MultilabelDataConfig(path="mem", val_ratio=0.2, test_ratio=0.2)
    with caplog.at_level(logging.WARNING, logger="simlab"):
        splits = make_splits(items, cfg)
    assert any("label 'rare' (1 items) is in no" in n for n in splits.notes)
    assert "too rare to reach every split" in caplog.text


def test_digit_attribute_labels():
    from simlab.data.multilabel_convert import digit_labels

    assert digit_labels(0) == ["even", "loop"]
    assert digit_labels(1) == []
    assert digit_labels(2) == ["even", "prime"]
    assert digit_labels(7) == ["prime", "ge5"]
    assert digit_labels(8) == ["even", "ge5", "loop"]
    assert digit_labels(9) == ["ge5", "loop"]


def test_demo_topics_converter(tmp_path):
    from pathlib import Path

    from simlab.data.multilabel_convert import TOPIC_THEMES, convert_demo_topics

    demo = Path(__file__).resolve().parents[1] / "examples" / "demo"
    info = convert_demo_topics(demo, tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "texts.jsonl").read_text().splitlines()]
    assert info["items"] == len(rows) == 360
    by_id = {r["id"]: r for r in rows}
    assert by_id["d001"]["labels"] == ["cooking", *TOPIC_THEMES["cooking"]]
    assert by_id["q120"]["labels"] == ["python", *TOPIC_THEMES["python"]]
    shipped = Path(__file__).resolve().parents[1] / "examples" / "multilabel-text" / "texts.jsonl"
    assert shipped.read_text() == (tmp_path / "texts.jsonl").read_text()  # the shipped file is this output
