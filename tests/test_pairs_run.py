"""`task: pairs` end to end: a records file with groups, and a DeepMatcher folder, offline."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from simlab.tasks import load_config
from simlab.tasks.pairs.systems import token_overlap
from simlab.tasks.skeleton import read_metrics
from simlab.training.pairs import PairSet

BRANDS = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "soylent",
]
ITEMS = ["laptop", "printer", "camera", "router", "monitor", "keyboard", "speaker", "tablet"]


def write_records(path: Path, n_groups: int = 40, seed: int = 0) -> None:
    """Groups of 2-3 variants of one product (reordered words, a dropped word, other price format)."""
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "group", "name", "price"])
        n = 0
        for g in range(n_groups):
            brand, item = BRANDS[g % len(BRANDS)], ITEMS[(g // len(BRANDS) + g) % len(ITEMS)]
            model = f"x{g * 7 + 100}"
            base = [brand, item, model, rng.choice(["pro", "mini", "plus", "max"])]
            for v in range(rng.choice([2, 3])):
                words = base[:]
                rng.shuffle(words)
                if v == 2:
                    words = words[:-1]
                n += 1
                w.writerow([f"r{n}", f"g{g}", " ".join(words), f"{99 + g}.{v}9"])


def grouped_overrides(folder: Path) -> list[str]:
    """Config overrides of a small `task: pairs` run on `folder/records.csv` (see `write_records`)."""
    return [
        "task=pairs",
        f"data.path={folder / 'records.csv'}",
        "data.fields=[name]",
        "data.val_ratio=0.25",
        "data.test_ratio=0.25",
        "train.batch_size=16",
        "tracking.mlflow=false",
        "cross.model=null",  # the cross-encoder of examples/matching.yaml: test_cross_system_* covers it
    ]


@pytest.fixture(scope="module")
def grouped_run(tmp_path_factory):
    from simlab.experiments.runner import run_experiment

    tmp = tmp_path_factory.mktemp("pairs")
    write_records(tmp / "records.csv")
    cfg = load_config(
        Path(__file__).parents[1] / "examples" / "matching.yaml",
        [*grouped_overrides(tmp), "train.epochs=2", "train.save_every=1"],
    )
    return run_experiment(cfg, tmp / "run")


def test_grouped_records_run_writes_the_run_folder(grouped_run):
    folder = grouped_run.folder
    for name in (
        "config.yaml",
        "meta.json",
        "metrics.json",
        "history.jsonl",
        "curves.png",
        "perquery.tsv",
        "report.md",
        "model/modules.json",
        "checkpoints/epoch-1/modules.json",
    ):
        assert (folder / name).exists(), name
    assert not (folder / ".checkpoints").exists()
    metrics, chosen = read_metrics(folder / "metrics.json")
    assert set(metrics) == {"overlap", "fields", "zeroshot", "trained", "hybrid"}
    assert chosen["val"] == max(m["val_f1"] for m in metrics.values())
    for m in metrics.values():
        assert 0 <= m["f1"] <= 1 and "threshold" in m and "val_f1" in m
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(h["val_loss"] is not None and "val_threshold" in h for h in history)
    assert all(h["train_loss"] is not None and h["train_loss"] > 0 for h in history)  # for curves.png
    from simlab.tasks.plots import learning_curves

    series = learning_curves(history, folder.parent / "curves-check.png", "f1", prefix="val")
    assert {k: v[0] for k, v in series.items()} == {"train loss": [1, 2], "val loss": [1, 2], "val f1": [1, 2]}
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (folder / "report.md").read_text()
    assert "frozen" in report and "both thresholds come from val" in report
    assert "hard negatives (bm25)" in report and "false negatives avoided" in report


def test_test_threshold_is_vals_best_threshold(grouped_run):
    """The threshold used on test is the F1-optimal threshold of val, recomputed here independently."""
    import numpy as np

    from simlab.evaluation.pairs import best_threshold, pair_metrics

    folder = grouped_run.folder
    metrics = json.loads((folder / "metrics.json").read_text())["overlap"]
    cfg = grouped_run.config
    from simlab.data.matching import read_matching
    from simlab.tasks.pairs.sets import build_pair_sets

    sets = build_pair_sets(cfg, read_matching(Path(cfg.data.path), group_field="group"), [])
    thr, _ = best_threshold(token_overlap(sets["val"]), sets["val"].labels)
    assert metrics["threshold"] == pytest.approx(thr)
    test_m = pair_metrics(token_overlap(sets["test"]), sets["test"].labels, thr)
    assert metrics["f1"] == pytest.approx(test_m["f1"])
    rows = [r.split("\t") for r in (folder / "perquery.tsv").read_text().splitlines()[1:]]
    correct = [int(v) for s, _, m, v in rows if s == "overlap" and m == "correct"]
    assert np.mean(correct) == pytest.approx(test_m["accuracy"])


def test_fields_system_is_a_logistic_regression_on_train_pair_features(grouped_run):
    """Recomputed independently: features of the train pairs -> sklearn LR -> val threshold -> test F1."""
    from sklearn.linear_model import LogisticRegression

    from simlab.data.matching import read_matching
    from simlab.evaluation.pairs import best_threshold, pair_metrics
    from simlab.models.field_matcher import field_features
    from simlab.tasks.pairs.sets import build_pair_sets

    cfg = grouped_run.config
    sets = build_pair_sets(cfg, read_matching(Path(cfg.data.path), group_field="group"), [])
    x = {k: field_features(p.left_values, p.right_values) for k, p in sets.items()}
    lr = LogisticRegression(max_iter=2000, random_state=cfg.train.seed).fit(x["train"], sets["train"].labels)
    thr, _ = best_threshold(lr.predict_proba(x["val"])[:, 1], sets["val"].labels)
    expected = pair_metrics(lr.predict_proba(x["test"])[:, 1], sets["test"].labels, thr)
    got = json.loads((grouped_run.folder / "metrics.json").read_text())["fields"]
    assert got["threshold"] == pytest.approx(thr) and got["f1"] == pytest.approx(expected["f1"])


def test_no_group_on_two_sides(grouped_run):
    from simlab.data.matching import group_split, read_matching

    cfg = grouped_run.config
    records = read_matching(Path(cfg.data.path), group_field="group").left
    split = group_split(records.groups, cfg.data.val_ratio, cfg.data.test_ratio, cfg.data.seed)
    sides = [{records.groups[i] for i in split[s]} for s in ("train", "val", "test")]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def write_deepmatcher(tmp: Path) -> None:
    """A DeepMatcher folder: 40 products, each matched once and paired with 2 random non-matches."""
    rng = random.Random(1)
    products = [f"{b} {i} x{k}" for k, (b, i) in enumerate((b, i) for b in BRANDS for i in ITEMS[:4])]
    with (tmp / "tableA.csv").open("w") as f:
        f.write("id,title\n" + "".join(f"{k},{p}\n" for k, p in enumerate(products)))
    with (tmp / "tableB.csv").open("w") as f:
        f.write("id,title\n" + "".join(f"{k},{' '.join(reversed(p.split()))}\n" for k, p in enumerate(products)))
    ids = list(range(len(products)))
    for name, part in (("train", ids[:24]), ("valid", ids[24:32]), ("test", ids[32:])):
        with (tmp / f"{name}.csv").open("w") as f:
            f.write("ltable_id,rtable_id,label\n")
            for k in part:
                f.write(f"{k},{k},1\n")
                for j in rng.sample([i for i in ids if i != k], 2):
                    f.write(f"{k},{j},0\n")


def test_deepmatcher_folder_given_pairs_and_sgd(tmp_path):
    from simlab.experiments.runner import run_experiment

    tmp = tmp_path
    write_deepmatcher(tmp)
    cfg = load_config(
        None,
        [
            "task=pairs",
            f"data.path={tmp}",
            "sampling.mode=given",
            "train.optimizer=sgd",
            "train.epochs=2",
            "train.batch_size=8",
            "train.grad_accum=2",
            "train.best_by=pos_acc",
            "tracking.mlflow=false",
        ],
    )
    summary = run_experiment(cfg, tmp / "run")
    assert summary.n_test == 8 * 3
    assert any("given labelled pairs" in n for n in summary.notes)
    assert summary.metrics["trained"]["f1"] > 0.5


def test_token_overlap_is_jaccard():
    pairs = PairSet(["a b c", "x"], ["b c d", "y"], [1, 0], ["1", "2"])
    assert list(token_overlap(pairs)) == pytest.approx([2 / 4, 0.0])


def test_an_unknown_loss_is_refused_naming_the_losses(tmp_path):
    from simlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train.loss: 'hinge' is not a pair loss; choose one of: contrastive, "):
        load_config(None, [*grouped_overrides(tmp_path), "train.loss=hinge"])


def test_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    import simlab.training.pairs as pairs_module
    from simlab.errors import ConfigError
    from simlab.experiments.runner import run_experiment
    from simlab.tasks.skeleton import checkpoint_dir

    write_records(tmp_path / "records.csv")
    base = grouped_overrides(tmp_path)
    out = tmp_path / "run"
    real_scores = pairs_module.pair_scores
    calls = {"n": 0}

    def crash_after_training(*args, **kwargs):  # zero-shot val + test, then val after each of 2 epochs
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return real_scores(*args, **kwargs)

    monkeypatch.setattr(pairs_module, "pair_scores", crash_after_training)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(load_config(None, [*base, "train.epochs=2"]), out)
    assert not out.exists() and any(checkpoint_dir(out).rglob("checkpoint-*"))
    monkeypatch.setattr(pairs_module, "pair_scores", real_scores)

    summary = run_experiment(load_config(None, [*base, "train.epochs=3", "train.resume=true"]), out)
    assert [h["epoch"] for h in summary.history] == [1, 2, 3]  # 1-2 trained before, kept beside the checkpoints
    assert json.loads((out / "meta.json").read_text())["resumed_from"]["epoch"] == 2
    assert not checkpoint_dir(out).exists()
    with pytest.raises(ConfigError, match="holds no complete checkpoint"):
        run_experiment(load_config(None, [*base, "train.resume=true"]), tmp_path / "other")


def test_model_mined_negatives_are_re_mined_every_epoch(tmp_path):
    from simlab.experiments.runner import run_experiment

    write_records(tmp_path / "records.csv")
    cfg = load_config(
        None,
        [
            *grouped_overrides(tmp_path),
            "train.epochs=2",
            "sampling.hard_miner=model",
            "sampling.remine_every=1",
            "sampling.hard_soft_ratio=1.0",
        ],
    )
    summary = run_experiment(cfg, tmp_path / "run")
    assert [h["epoch"] for h in summary.history] == [1, 2]
    train_notes = [n for n in summary.notes if n.startswith("train pairs sampled")]
    assert len(train_notes) == 2 and all("hard negatives (model)" in n for n in train_notes)
    assert any("re-mined by the model every 1 epochs" in n for n in summary.notes)


def test_remine_needs_the_model_miner(tmp_path):
    from simlab.errors import ConfigError

    write_records(tmp_path / "records.csv")
    with pytest.raises(ConfigError, match="remine_every.*hard_miner: model"):  # at load time, before any work
        load_config(None, ["task=pairs", f"data.path={tmp_path / 'records.csv'}", "sampling.remine_every=1"])


def test_model_miner_ranks_like_brute_force():
    import numpy as np

    from simlab.config import ModelConfig
    from simlab.data.matching import Records
    from simlab.models import load_model
    from simlab.training.mining import model_miner

    names = ["acme laptop x1", "acme laptop x2", "globex printer", "hooli camera", "acme notebook x1", "stark router"]
    records = Records([f"r{i}" for i in range(6)], {"name": names}, [f"g{i}" for i in range(6)])
    model = load_model(ModelConfig())
    miner = model_miner(records, model, ["name"])
    emb = model.encode(names, normalize_embeddings=True)
    pool = [1, 2, 3, 4, 5]
    got = miner([0], pool, 3)[0]
    expected = [pool[j] for j in np.argsort(-(emb[pool] @ emb[0]), kind="stable")[:3]]
    assert got == expected


def test_report_to_reaches_the_trainer(tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformerTrainer

    from simlab.experiments.runner import run_experiment

    seen = {}

    def no_training(self, *args, **kwargs):
        seen["report_to"] = list(self.args.report_to)
        raise KeyboardInterrupt  # stop here: only the trainer's arguments matter

    monkeypatch.setattr(SentenceTransformerTrainer, "train", no_training)
    write_records(tmp_path / "records.csv")
    cfg = load_config(
        None,
        [
            "task=pairs",
            f"data.path={tmp_path / 'records.csv'}",
            "tracking.mlflow=false",
            "train.report_to=[mlflow]",
        ],
    )
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tmp_path / "run")
    assert seen["report_to"] == ["mlflow"]


@pytest.mark.parametrize("mode", ["sampled", "given"])
def test_the_regressions_fit_on_the_datasets_labelled_train_pairs_whatever_the_model_trains_on(tmp_path, mode):
    """Sampled train pairs mix easy and hard negatives unlike val and test; the labelled ones are drawn like them."""
    from simlab.data.matching import read_matching
    from simlab.tasks.pairs.sets import build_pair_sets, regression_train_set

    write_deepmatcher(tmp_path)
    cfg = load_config(None, ["task=pairs", f"data.path={tmp_path}", f"sampling.mode={mode}"])
    data = read_matching(tmp_path)
    train = build_pair_sets(cfg, data, [], splits=("train",))["train"]
    fit = regression_train_set(cfg, data, train)
    given = [f"{a}|{b}" for a, b in zip(data.pairs["train"].left_ids, data.pairs["train"].right_ids)]
    assert fit.ids == given and fit.labels == list(data.pairs["train"].labels)
    assert (fit is train) == (mode == "given")


def test_cross_system_trains_a_cross_encoder_and_saves_it(tmp_path, tiny_bert_dir):
    """`cross.model`: a CrossEncoder fine-tuned on the labelled train pairs becomes the `cross` system; its
    saved folder opens in sentence-transformers and scores the test pairs as the run did."""
    import numpy as np
    from sentence_transformers.cross_encoder import CrossEncoder

    from simlab.data.matching import read_matching
    from simlab.experiments.runner import run_experiment
    from simlab.models import load_cross_encoder
    from simlab.tasks.pairs.sets import build_pair_sets
    from simlab.training.cross import cross_scores

    write_deepmatcher(tmp_path)
    cfg = load_config(
        None,
        [
            "task=pairs",
            f"data.path={tmp_path}",
            "train.epochs=1",
            "tracking.mlflow=false",
            f"cross.model={tiny_bert_dir}",
            "cross.epochs=3",
            "cross.batch_size=8",
            "cross.learning_rate=1e-3",
        ],
    )
    summary = run_experiment(cfg, tmp_path / "run")
    metrics, _ = read_metrics(tmp_path / "run" / "metrics.json")
    assert {"cross", "trained", "fields"} <= set(metrics)
    assert metrics["cross"]["val_f1"] == summary.metrics["cross"]["val_f1"]
    assert any(n.startswith("cross: ") and "72 labelled train pairs for 3 epoch(s)" in n for n in summary.notes)
    assert any("With the cross system its logit is one more feature" in n for n in summary.notes)
    assert "hybrid" in metrics
    with (tmp_path / "run" / "perquery.tsv").open() as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["system"] == "cross" and r["metric"] == "score"]
    assert len(rows) == summary.n_test
    test = build_pair_sets(cfg, read_matching(tmp_path), [], None, splits=("test",))["test"]
    assert [r["query_id"] for r in rows] == test.ids
    saved = CrossEncoder(str(tmp_path / "run" / "cross-model"), device="cpu")
    run_scores = [float(r["value"]) for r in rows]
    np.testing.assert_allclose(cross_scores(saved, test, ["title"]), run_scores, atol=1e-4)
    untrained = cross_scores(load_cross_encoder(str(tiny_bert_dir), 128), test, ["title"])
    assert np.abs(untrained - run_scores).max() > 1e-2  # the run's cross-encoder was trained


def test_field_cut_keeps_the_first_n_tokens_of_each_value_as_written(tiny_bert_dir):
    from transformers import AutoTokenizer

    from simlab.training.cross import field_cut, record_texts

    tok = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    values = ["Sony  Cyber-shot DSC-W55 7.2MP camera, silver", "acme", "", "naïve Café pro-max 12"]
    for n in (1, 2, 3, 5, 40):
        cut = field_cut(tok, n)
        for v in values:
            ids = tok(v, add_special_tokens=False)["input_ids"]
            # naive: the longest prefix of v whose tokens are v's first n tokens, without trailing spaces
            same = [v[:k] for k in range(len(v) + 1) if tok(v[:k], add_special_tokens=False)["input_ids"] == ids[:n]]
            naive = same[-1].rstrip()
            assert cut(v) == naive and v.startswith(cut(v))
    pairs = PairSet(["x"], ["y"], [1], ["p"], [("Sony Cyber-shot camera", "9.99")], [("acme", "")])
    cut = field_cut(tok, 2)
    texts = record_texts(pairs, ["title", "price"], cut)
    title = cut("Sony Cyber-shot camera")
    assert len(title) < len("Sony Cyber-shot camera")  # each value is cut on its own
    assert texts == [
        [f"COL title VAL {title} COL price VAL {cut('9.99')}", f"COL title VAL {cut('acme')} COL price VAL "]
    ]
    assert field_cut(tok, None)("a b c") == "a b c"


def test_record_texts_serialise_records_as_ditto_does():
    from simlab.training.cross import record_texts

    pairs = PairSet(["a 1"], ["c"], [1], ["p"], [("a", "1")], [("c", "")])
    left, right = "COL title VAL a COL price VAL 1", "COL title VAL c COL price VAL "
    assert record_texts(pairs, ["title", "price"]) == [[left, right]]
    assert record_texts(PairSet(["x y"], ["z"], [1], ["p"]), ["title"]) == [["x y", "z"]]
