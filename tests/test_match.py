"""`simlab match`: a trained pairs run applied to two tables, offline, on a tiny DeepMatcher folder."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from simlab.errors import DataError, RunFolderError
from simlab.experiments.match import match_tables
from simlab.tasks import load_config

BRANDS = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell", "cyberdyne", "soylent"]
ITEMS = ["laptop", "printer", "camera", "router"]
COLOURS = ["black", "white", "silver", "red", "blue"]
PRODUCTS = [f"{b} {i} x{k}" for k, (b, i) in enumerate((b, i) for b in BRANDS for i in ITEMS)]  # 40


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A DeepMatcher folder (right titles reversed, every third one vague) and a trained run on it."""
    from simlab.experiments.runner import run_experiment

    tmp = tmp_path_factory.mktemp("match")
    rng = random.Random(3)
    _write(tmp / "tableA.csv", "id,title,price", [f"{k},{p},{10 + k}.00" for k, p in enumerate(PRODUCTS)])
    right = []
    for k, (b, i, m) in enumerate(p.split() for p in PRODUCTS):  # every third: brand and a colour only, no price
        right.append(f"{k},{b} {COLOURS[k % 5]}," if k % 3 == 0 else f"{k},{m} {i} {b},${10 + k}")
    _write(tmp / "tableB.csv", "id,title,price", right)
    ids = list(range(len(PRODUCTS)))
    for name, part in (("train", ids[:24]), ("valid", ids[24:32]), ("test", ids[32:])):
        rows = []
        for k in part:
            rows.append(f"{k},{k},1")
            rows += [f"{k},{j},0" for j in rng.sample([i for i in ids if i != k], 2)]
        _write(tmp / f"{name}.csv", "ltable_id,rtable_id,label", rows)
    cfg = load_config(
        None,
        [
            "task=pairs",
            f"data.path={tmp}",
            "sampling.mode=given",
            "train.epochs=1",
            "train.batch_size=8",
            "tracking.mlflow=false",
        ],
    )
    run_experiment(cfg, tmp / "run")
    return tmp


def _match(run, out_name: str, **kw):
    out = run / "out" / out_name
    report = match_tables(run / "run", run / "tableA.csv", run / "tableB.csv", out, progress=False, **kw)
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return report, rows


def _model_scores(run, pairs: list[tuple[str, str]], distance: str = "cosine") -> np.ndarray:
    """`pair_scores` of (left id, right id) pairs, with the texts training used."""
    from sentence_transformers import SentenceTransformer

    from simlab.data.matching import read_records
    from simlab.training.pairs import PairSet, pair_scores

    left, right = read_records(run / "tableA.csv"), read_records(run / "tableB.csv")
    fields = ["title", "price"]
    ps = PairSet(
        [left.text(left.position[a], fields) for a, _ in pairs],
        [right.text(right.position[b], fields) for _, b in pairs],
        [0] * len(pairs),
        [f"{a}|{b}" for a, b in pairs],
    )
    return pair_scores(SentenceTransformer(str(run / "run" / "model"), device="cpu"), ps, distance)


def test_csv_has_header_sorted_rows_and_only_scores_at_or_above_the_frozen_threshold(run):
    frozen = json.loads((run / "run" / "metrics.json").read_text())["trained"]["threshold"]
    report, rows = _match(run, "default.csv")
    assert rows[0] == ["left_id", "right_id", "score"]
    body = rows[1:]
    assert report.threshold == pytest.approx(frozen) and report.n_matches == len(body)
    assert (report.n_left, report.n_right, report.n_candidates) == (40, 40, 40 * 10)
    assert all(float(s) >= frozen - 1e-6 for _, _, s in body)  # written with 6 decimals
    keys = [(int(a), -float(s)) for a, _, s in body]
    assert keys == sorted(keys)
    assert report.n_labelled is None and report.blocking_recall is None
    assert "matches with score >=" in report.summary()


def test_scores_are_the_pair_scores_of_training(run):
    report, rows = _match(run, "all.csv", threshold=-1.0)
    assert report.n_matches == report.n_candidates == 400  # cosine >= -1: every candidate is written
    pairs = [(a, b) for a, b, _ in rows[1:]]
    expected = _model_scores(run, pairs)
    assert np.allclose([float(s) for *_, s in rows[1:]], expected, atol=1e-5)


def test_euclidean_run_scores_minus_the_distance(run, tmp_path):
    """A run trained with `train.distance: euclidean` gets pair_scores' euclidean scores."""
    folder = tmp_path / "euclid"
    shutil.copytree(run / "run", folder)
    cfg = folder / "config.yaml"
    cfg.write_text(cfg.read_text().replace("distance: cosine", "distance: euclidean"))
    out = tmp_path / "m.csv"
    match_tables(folder, run / "tableA.csv", run / "tableB.csv", out, k=3, threshold=-1e9, progress=False)
    rows = list(csv.reader(out.open()))[1:]
    assert len(rows) == 40 * 3
    expected = _model_scores(run, [(a, b) for a, b, _ in rows], "euclidean")
    assert np.allclose([float(s) for *_, s in rows], expected, atol=1e-5)


def test_flat_and_hnsw_give_the_same_matches(run):
    flat, flat_rows = _match(run, "flat.csv", index="flat", k=5)
    hnsw, hnsw_rows = _match(run, "hnsw.csv", index="hnsw", k=5)
    assert flat.n_matches == hnsw.n_matches > 0
    assert {tuple(r[:2]) for r in flat_rows} == {tuple(r[:2]) for r in hnsw_rows}


def test_blocking_recall_and_match_f1_against_brute_force(run, tmp_path):
    rows = [f"{k},{k},1" for k in range(40)] + [f"{k},{(k + 1) % 40},0" for k in range(0, 40, 2)]
    labels = _write(tmp_path / "labels.csv", "ltable_id,rtable_id,label", rows)
    pos = [tuple(r[:2]) for r in list(csv.reader(labels.open()))[1:] if r[2] == "1"]
    ids = [str(i) for i in range(40)]
    every = _model_scores(run, [(a, b) for a in ids for b in ids]).reshape(40, 40)  # (left, right)

    def brute(k: int) -> float:
        return float(np.mean([(every[int(a)] > every[int(a), int(b)]).sum() < k for a, b in pos]))

    r1, _ = _match(run, "k1.csv", k=1, index="flat", labels_path=labels)
    r5, rows5 = _match(run, "k5.csv", k=5, index="flat", labels_path=labels)
    assert r1.blocking_recall < 1.0, "the vague right titles should make top-1 blocking miss some matches"
    assert r5.blocking_recall >= r1.blocking_recall
    assert r1.blocking_recall == pytest.approx(brute(1)) and r5.blocking_recall == pytest.approx(brute(5))
    assert (r5.n_labelled, r5.n_positive) == (60, 40)
    # P/R/F1 over the labelled pairs only
    labelled = {tuple(r[:2]): r[2] == "1" for r in list(csv.reader(labels.open()))[1:]}
    written = {tuple(r[:2]) for r in rows5[1:]} & labelled.keys()
    tp = sum(labelled[p] for p in written)
    precision, recall = (tp / len(written) if written else 0.0), tp / len(pos)
    assert r5.precision == pytest.approx(precision) and r5.recall == pytest.approx(recall)
    assert r5.f1 == pytest.approx(2 * precision * recall / (precision + recall) if tp else 0.0)
    assert "blocking recall@5" in r5.summary()


def test_threshold_override(run):
    none, rows = _match(run, "none.csv", threshold=1.01)
    assert none.n_matches == 0 and rows == [["left_id", "right_id", "score"]]
    some, rows = _match(run, "some.csv", threshold=0.5, k=3)
    assert some.threshold == 0.5 and all(float(s) >= 0.5 - 1e-6 for *_, s in rows[1:])
    assert len(rows) - 1 == some.n_matches <= 40 * 3


def test_a_folder_that_is_not_a_finished_run(run, tmp_path):
    with pytest.raises(RunFolderError, match="no meta.json"):
        match_tables(tmp_path, run / "tableA.csv", run / "tableB.csv", tmp_path / "m.csv", progress=False)


def test_a_retrieval_run_folder(run, tmp_path):
    from simlab.tasks.skeleton import RUN_FORMAT

    (tmp_path / "meta.json").write_text(json.dumps(RUN_FORMAT | {"name": "r", "data": "x"}))  # as runner.py writes
    with pytest.raises(RunFolderError, match="is a retrieval run; `simlab match` takes runs of task pairs"):
        match_tables(tmp_path, run / "tableA.csv", run / "tableB.csv", tmp_path / "m.csv", progress=False)


def test_bad_tables_and_labels(run, tmp_path):
    a, b = run / "tableA.csv", run / "tableB.csv"
    with pytest.raises(DataError, match="nope.csv: file not found"):
        match_tables(run / "run", tmp_path / "nope.csv", b, tmp_path / "m.csv", progress=False)
    no_id = _write(tmp_path / "noid.csv", "key,title,price", ["1,a,2"])
    with pytest.raises(DataError, match="noid.csv: no `id` column"):
        match_tables(run / "run", a, no_id, tmp_path / "m.csv", progress=False)
    labels = _write(tmp_path / "labels.csv", "ltable_id,rtable_id,label", ["0,0,1", "0,999,0"])
    with pytest.raises(DataError, match=r"labels.csv:3: rtable_id '999' is not an id in .*tableB.csv"):
        match_tables(run / "run", a, b, tmp_path / "m.csv", labels_path=labels, progress=False)
