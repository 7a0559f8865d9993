"""`simlab run` end to end on a small generated collection with the real wordllama model."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from simlab.records import Collection, Corpus, Qrels, Queries
from simlab.tasks import load_config
from simlab.tasks.skeleton import read_metrics

TOPICS = {
    "bread": ["sourdough", "yeast", "flour", "oven", "crust", "dough", "bake", "loaf"],
    "bikes": ["tyre", "chain", "brake", "gear", "pedal", "wheel", "puncture", "saddle"],
    "stars": ["telescope", "planet", "orbit", "galaxy", "nebula", "comet", "saturn", "lens"],
    "garden": ["compost", "seed", "soil", "prune", "tomato", "weed", "mulch", "rose"],
    "money": ["budget", "savings", "interest", "loan", "invest", "pension", "tax", "debt"],
}


def make_collection(seed: int = 0) -> Collection:
    """60 documents over 5 topics; each query's relevant document shares 3 of its rare words."""
    rng = random.Random(seed)
    ids, titles, texts, q_ids, q_texts = [], [], [], [], []
    qrels: dict[str, dict[str, dict[str, int]]] = {"train": {}, "dev": {}, "test": {}}
    n = 0
    for topic, words in TOPICS.items():
        for j in range(12):
            n += 1
            doc_id = f"d{n}"
            picked = rng.sample(words, 4)
            ids.append(doc_id)
            titles.append(f"{topic} note {j}")
            texts.append(f"all about {' and '.join(picked)} for the {topic} enthusiast, item {j}")
            q_id = f"q{n}"
            q_ids.append(q_id)
            q_texts.append(f"{picked[0]} {picked[1]} {picked[2]} question")
            split = "train" if j < 8 else "dev" if j < 10 else "test"
            qrels[split][q_id] = {doc_id: 1}
    return Collection(
        "toy", Corpus(ids, texts, titles), Queries(q_ids, q_texts), {s: Qrels(j) for s, j in qrels.items()}
    )


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    from simlab.data.beir import write_beir

    folder = tmp_path_factory.mktemp("toy") / "beir"
    write_beir(make_collection(), folder)
    return folder


def config(toy_dir: Path, tmp: Path, *extra: str):
    return load_config(
        None,
        [
            f"data.path={toy_dir}",
            "train.epochs=2",
            "train.batch_size=8",
            "index.approximate=[hnsw, ivf]",
            "index.ivf.min_docs=50",
            "index.ivf.nlist=4",
            f"tracking.uri=sqlite:///{tmp}/mlflow.db",
            "train.hard_negatives.source=bm25",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def finished_run(toy_dir, tmp_path_factory):
    from simlab.experiments.runner import run_experiment

    tmp = tmp_path_factory.mktemp("runs")
    cfg = config(toy_dir, tmp)
    return run_experiment(cfg, tmp / "run1"), tmp


def test_run_folder_has_every_artifact(finished_run):
    summary, _ = finished_run
    folder = summary.folder
    for name in (
        "config.yaml",
        "meta.json",
        "metrics.json",
        "speed.json",
        "history.jsonl",
        "perquery.tsv",
        "curves.png",
        "report.md",
        "model/modules.json",
        "indexes/trained.flat/meta.json",
        "indexes/trained.hnsw/meta.json",
        "indexes/trained.ivf/meta.json",
    ):
        assert (folder / name).exists(), name
    assert not list(folder.parent.glob(".run1.partial-*"))
    assert not (folder / ".checkpoints").exists()
    systems = set(read_metrics(folder / "metrics.json")[0])
    assert systems == {
        "bm25",
        "zeroshot.flat",
        "zeroshot.hnsw",
        "zeroshot.ivf",
        "trained.flat",
        "trained.hnsw",
        "trained.ivf",
        "hybrid",
    }
    assert {p.stem for p in (folder / "runs").glob("*.trec")} == systems
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(h["train_loss"] > 0 and "dev_ndcg@10" in h for h in history)
    from simlab.tasks.plots import learning_curves

    series = learning_curves(history, folder.parent / "curves-check.png", "ndcg@10")
    assert {k: v[0] for k, v in series.items()} == {"train loss": [1, 2], "dev ndcg@10": [1, 2]}
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((folder / "indexes/trained.hnsw/meta.json").read_text())
    assert meta["dim"] == 256 and meta["normalized"] is True and meta["type"] == "hnsw"
    report = (folder / "report.md").read_text()
    assert "trained.hnsw" in report and "negatives per step" in report and "top10 ∩ exact" in report


def test_metrics_agree_with_trec_eval_on_the_run_files(finished_run):
    """Every number in metrics.json equals trec_eval's (pytrec_eval) on runs/*.trec and qrels.trec, and the
    hybrid's MRR@10 ir_measures' MS MARCO code (which breaks ties the other way): no run file has tied scores."""
    import ir_measures

    summary, _ = finished_run
    folder = summary.folder
    check_trec_files(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    measured = {
        str(m): v
        for m, v in ir_measures.calc_aggregate(
            [ir_measures.RR @ 10], ir_measures.read_trec_qrels(str(folder / "qrels.trec")),
            ir_measures.read_trec_run(str(folder / "runs" / "hybrid.trec")),
        ).items()
    }  # fmt: skip
    judged = len(
        {line.split()[0] for line in (folder / "qrels.trec").read_text().splitlines() if line.split()[3] != "0"}
    )
    n_run = len({line.split()[0] for line in (folder / "runs" / "hybrid.trec").read_text().splitlines()})
    assert n_run == judged  # every judged query has results, so ir_measures' mean is over the same queries
    assert measured["RR@10"] == pytest.approx(metrics["hybrid"]["mrr@10"], abs=1e-9)  # its own tie rule agrees


def check_trec_files(folder: Path) -> None:
    """Every system's runs/<system>.trec gives its metrics.json line under trec_eval (pytrec_eval), with
    MRR@10 over the top 10 in trec_eval's order, and holds no tied score (so every tool reads one ranking)."""
    import pytrec_eval

    with open(folder / "qrels.trec") as f:
        qrels = pytrec_eval.parse_qrel(f)
    metrics = read_metrics(folder / "metrics.json")[0]
    for system, values in metrics.items():
        with open(folder / "runs" / f"{system}.trec") as f:
            run = pytrec_eval.parse_run(f)
        top10 = {q: dict(sorted(d.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10]) for q, d in run.items()}
        full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10", "recall.100", "map"}).evaluate(run)
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
        judged = list(qrels)  # every judged query counts; one missing from the run scores 0
        expected = {
            "ndcg@10": sum(full.get(q, {}).get("ndcg_cut_10", 0.0) for q in judged) / len(judged),
            "recall@10": sum(full.get(q, {}).get("recall_10", 0.0) for q in judged) / len(judged),
            "recall@100": sum(full.get(q, {}).get("recall_100", 0.0) for q in judged) / len(judged),
            "map": sum(full.get(q, {}).get("map", 0.0) for q in judged) / len(judged),
            "mrr@10": sum(rr.get(q, {}).get("recip_rank", 0.0) for q in judged) / len(judged),
        }
        for name, value in expected.items():
            assert values[name] == pytest.approx(value, abs=1e-6), (system, name)
        with open(folder / "runs" / f"{system}.trec") as f:  # any tool reads the file's one ranking
            lines = [line.split() for line in f]
        for q in {line[0] for line in lines}:
            scores = [float(line[4]) for line in lines if line[0] == q]
            assert len(set(scores)) == len(scores), (system, q, "tied scores")


def test_trained_beats_chance_and_model_loads(finished_run):
    from sentence_transformers import SentenceTransformer

    summary, _ = finished_run
    assert summary.metrics["trained.flat"]["ndcg@10"] > 0.3
    model = SentenceTransformer(str(summary.folder / "model"), device="cpu")
    assert model.encode(["sourdough yeast flour"]).shape == (1, 256)


def test_mlflow_run_was_logged(finished_run):
    import mlflow

    summary, tmp = finished_run
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name(summary.config.name)  # one MLflow experiment per config name
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.params["train.epochs"] == "2"
    assert run.data.metrics["trained.flat.ndcg_10"] == pytest.approx(summary.metrics["trained.flat"]["ndcg@10"])
    assert len(client.get_metric_history(run.info.run_id, "dev_ndcg_10")) == 2
    from simlab.experiments.tracking import data_checksum

    assert run.data.tags["simlab.data_checksum"] == data_checksum(Path(summary.config.data.path))
    assert run.data.tags["simlab.git_commit"]  # a sha, or "unknown" outside a git checkout


def test_search_prints_ranked_documents(finished_run):
    from simlab.experiments.search import search_run

    summary, _ = finished_run
    hits = search_run(summary.folder, "sourdough yeast flour oven", k=3)
    assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score
    assert "bread" in hits[0].snippet


def test_failed_run_leaves_nothing(toy_dir, tmp_path, monkeypatch):
    import simlab.evaluation.metrics as metrics
    from simlab.experiments.runner import run_experiment

    def boom(*a, **k):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(metrics, "evaluate", boom)
    with pytest.raises(RuntimeError):
        run_experiment(config(toy_dir, tmp_path, "train.enabled=false"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")] == []


def test_existing_folder_is_refused(toy_dir, tmp_path):
    from simlab.errors import RunFolderError
    from simlab.experiments.runner import run_experiment

    (tmp_path / "run").mkdir()
    with pytest.raises(RunFolderError, match="already exists.*--overwrite"):
        run_experiment(config(toy_dir, tmp_path), tmp_path / "run")


def test_missing_test_split_names_the_found_splits(toy_dir, tmp_path):
    from simlab.errors import ConfigError
    from simlab.experiments.runner import run_experiment

    with pytest.raises(ConfigError, match=r"data.test_split: 'heldout'.*found: dev, test, train"):
        run_experiment(config(toy_dir, tmp_path, "data.test_split=heldout"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_cli_run_separate_towers_without_training(toy_dir, tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simlab",
            "run",
            str(Path(__file__).parents[1] / "examples" / "dense.yaml"),
            "--set",
            f"data.path={toy_dir}",
            "--set",
            "train.enabled=false",
            "--set",
            "model.towers=separate",
            "--set",
            "tracking.mlflow=false",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "zeroshot.hnsw" in proc.stdout and "bm25" in proc.stdout
    assert json.loads((out / "metrics.json").read_text())["zeroshot.flat"]["ndcg@10"] > 0


def test_separate_towers_train_with_model_mined_negatives(toy_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    from simlab.experiments.runner import run_experiment

    cfg = config(
        toy_dir,
        tmp_path,
        "model.towers=separate",
        "train.hard_negatives.source=model",
        "train.hard_negatives.num=2",
        "train.hard_negatives.range_min=1",
        "train.epochs=1",
        "eval.systems=[trained]",
        "index.approximate=[]",
        "tracking.mlflow=false",
    )
    summary = run_experiment(cfg, tmp_path / "towers")
    assert set(summary.metrics) == {"trained.flat"}
    assert any("2 per pair mined by model" in n for n in summary.notes)
    assert any("negatives per step" in n for n in summary.notes)
    model = SentenceTransformer(str(summary.folder / "model"), device="cpu")
    query_tower = model[0].sub_modules["query"][0].embedding.weight
    doc_tower = model[0].sub_modules["document"][0].embedding.weight
    assert not query_tower.detach().equal(doc_tower.detach())  # both trained, separately


def test_cli_compare_on_a_finished_run(finished_run, tmp_path):
    summary, _ = finished_run
    md, js = tmp_path / "cmp.md", tmp_path / "cmp.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simlab",
            "compare",
            str(summary.folder),
            "--baseline",
            "bm25",
            "--metrics",
            "ndcg@10,mrr@10",
            "--markdown",
            str(md),
            "--json",
            str(js),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "trained.flat" in proc.stdout and "holm" in proc.stdout
    table = md.read_text()
    assert "bm25" in table and "hybrid" in table and "ndcg@10" in table
    assert json.loads(js.read_text())["format"] == "simlab.compare"
    bad = subprocess.run([sys.executable, "-m", "simlab", "compare", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and str(tmp_path) in bad.stderr


def test_search_errors_name_the_folder_and_the_indexes(finished_run, tmp_path):
    from simlab.errors import RunFolderError
    from simlab.experiments.search import search_run

    with pytest.raises(RunFolderError, match="not a simlab run folder"):
        search_run(tmp_path, "anything")
    summary, _ = finished_run
    found = "bm25, hybrid, trained.flat, trained.hnsw, trained.ivf, zeroshot.flat, zeroshot.hnsw, zeroshot.ivf"
    with pytest.raises(RunFolderError, match=rf"no such index \(found: {found}\)"):  # every system the run evaluated
        search_run(summary.folder, "anything", index_name="trained.pq")


def test_a_reference_model_is_searched_zero_shot_and_fused_into_the_hybrid(toy_dir, tmp_path):
    from simlab.experiments.runner import run_experiment

    cfg = config(toy_dir, tmp_path, "train.enabled=false", "eval.reference_models=[wordllama]", "tracking.mlflow=false")
    summary = run_experiment(cfg, tmp_path / "run")
    metrics, chosen = read_metrics(tmp_path / "run" / "metrics.json")
    assert {"bm25", "zeroshot.flat", "wordllama.flat", "wordllama.hnsw", "hybrid"} <= set(metrics)
    # the same model as the zero-shot one: the same ranking, under its own name
    assert metrics["wordllama.flat"]["ndcg@10"] == pytest.approx(metrics["zeroshot.flat"]["ndcg@10"], abs=1e-9)
    assert "val_ndcg@10" in metrics["wordllama.flat"] and chosen["system"] in metrics
    recipe = json.loads((tmp_path / "run" / "indexes" / "hybrid.json").read_text())
    flats = ["zeroshot.flat", "wordllama.flat"]  # the hybrid's dense member: the best on val (the first on a tie)
    assert recipe["systems"] == ["bm25", max(flats, key=lambda s: metrics[s]["val_ndcg@10"])]
    assert any(f"of bm25 and {recipe['systems'][1]}, the model system with the best val" in n for n in summary.notes)
    assert (tmp_path / "run" / "indexes" / "wordllama.flat").is_dir()
    from simlab.experiments.search import search_run

    hits = [search_run(tmp_path / "run", "sourdough yeast", 3, name) for name in ("wordllama.flat", "zeroshot.flat")]
    assert [h.doc_id for h in hits[0]] == [h.doc_id for h in hits[1]] and len(hits[0]) == 3


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["eval.reference_models=[models/trained]"], "'trained' would name two systems"),
        (["eval.reference_models=[minilm, x/MiniLM]"], "'minilm' would name two systems"),
        (["task=sparse", "eval.reference_models=[minilm]"], "eval.reference_models: only"),
    ],
)
def test_reference_models_that_cannot_be_told_apart_are_refused(toy_dir, sets, message):
    from simlab.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"data.path={toy_dir}", *sets])


def test_a_reference_models_index_is_checked_against_that_model(tmp_path):
    from simlab.errors import IndexMismatchError
    from simlab.experiments.search_systems import check_model_id

    cfg = {"model": {"name": "wordllama"}, "eval": {"reference_models": ["minilm"]}}
    check_model_id(tmp_path / "indexes" / "minilm.flat", {"model_id": "minilm"}, cfg)
    with pytest.raises(IndexMismatchError, match="built with model 'minilm'"):
        check_model_id(tmp_path / "indexes" / "zeroshot.flat", {"model_id": "minilm"}, cfg)
    with pytest.raises(IndexMismatchError, match="built with model 'wordllama'"):
        check_model_id(tmp_path / "indexes" / "minilm.hnsw", {"model_id": "wordllama"}, cfg)


def test_a_collection_with_only_test_queries_chooses_by_held_out_test_queries_and_scores_the_others(tmp_path):
    """No train or dev qrels (Cranfield, CISI): val is a share of the test queries, never scored as test."""
    from simlab.data.beir import write_beir
    from simlab.data.pairs import VAL_TEST_SHARE
    from simlab.experiments.runner import run_experiment

    c = make_collection()
    test = Qrels({q: j for split in ("train", "dev", "test") for q, j in c.qrels[split].judgements.items()})
    write_beir(Collection(c.name, c.corpus, c.queries, {"test": test}), tmp_path / "beir")
    overrides = ["train.enabled=false", "eval.systems=[bm25, zeroshot, hybrid]", "index.approximate=[]"]
    result = run_experiment(config(tmp_path / "beir", tmp_path, *overrides), tmp_path / "run")
    scored = {line.split("\t")[1] for line in (result.folder / "perquery.tsv").read_text().splitlines()[1:]}
    n_val = round(len(test.query_ids()) * VAL_TEST_SHARE)
    assert len(scored) == result.n_test == len(test.query_ids()) - n_val
    assert any(
        f"{n_val} of the {len(test.query_ids())} queries of qrels split 'test' held out as val" in n
        for n in result.notes
    )
    trec = {line.split()[0] for line in (result.folder / "qrels.trec").read_text().splitlines()}
    assert trec == scored  # the qrels written for trec_eval hold the test queries only
    assert result.metrics["bm25"]["val_ndcg@10"] > 0
