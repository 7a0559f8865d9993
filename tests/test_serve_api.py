"""`simlab serve`'s API through FastAPI's TestClient: every endpoint, every task kind, every limit.

One tiny run per served task kind (retrieval, sparse, pairs, definitions, multilabel; the setups
of tests/test_tasks_e2e.py), all loaded into one service. What the service answers is checked
against what the run itself wrote: a search reproduces the run's TREC file of that system, a
match the test pair's score in perquery.tsv, a classification the test item's tp/fp/fn.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from simlab.serve.app import create_app
from simlab.serve.limits import Limits
from simlab.serve.loading import load_runs

KINDS = ("retrieval", "sparse", "pairs", "definitions", "multilabel")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    from test_tasks_e2e import SETUPS

    from simlab.experiments.runner import run_experiment
    from simlab.tasks import load_config

    out = {}
    for kind in KINDS:
        tmp = tmp_path_factory.mktemp(kind)
        cfg = load_config(None, [*SETUPS[kind](tmp), "tracking.mlflow=false", f"name={kind}"])
        run_experiment(cfg, tmp / kind)
        out[kind] = tmp / kind
    return out


@pytest.fixture(scope="module")
def runs(folders):
    return load_runs([folders[k] for k in KINDS])


@pytest.fixture(scope="module")
def client(runs):
    with TestClient(create_app(runs)) as c:
        yield c


def _trec(path: Path) -> dict[str, list[tuple[str, float]]]:
    ranked: dict[str, list[tuple[int, str, float]]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, rank, score, _ = line.split()
        ranked.setdefault(qid, []).append((int(rank), doc, float(score)))
    return {q: [(d, s) for _, d, s in sorted(rows)] for q, rows in ranked.items()}


def _perquery(folder: Path, system: str, metric: str) -> dict[str, float]:
    rows = (line.split("\t") for line in (folder / "perquery.tsv").read_text().splitlines()[1:])
    return {item: float(v) for s, item, m, v in rows if s == system and m == metric}


# ----- /health, /runs, /docs, the page ------------------------------------------------------------------


def test_health_runs_docs_and_page(client, folders):
    assert client.get("/health").json() == {"status": "ok", "runs": 5}
    listed = {r["task"]: r for r in client.get("/runs").json()["runs"]}
    assert sorted(listed) == sorted(KINDS)
    assert [listed[k]["service"] for k in KINDS] == ["search", "search", "match", "match", "classify"]
    for kind in ("retrieval", "sparse"):  # every system the run evaluated is served: each saved its index
        run = listed[kind]
        metrics = json.loads((folders[kind] / "metrics.json").read_text())
        chosen = metrics.pop("chosen", None)
        assert sorted(run["systems"]) == sorted(metrics) and run["not_saved"] == []
        assert {"bm25", "zeroshot.flat", "trained.flat", "hybrid"} <= set(run["systems"])
        assert run["default_system"] == (chosen["system"] if chosen else "trained.flat") and run["examples"]
    assert "trained.hnsw" in listed["retrieval"]["systems"]
    assert listed["pairs"]["left_fields"] == ["name"]
    threshold = json.loads((folders["pairs"] / "metrics.json").read_text())["trained"]["threshold"]
    assert listed["pairs"]["threshold"] == pytest.approx(threshold)
    thresholds = json.loads((folders["multilabel"] / "thresholds.json").read_text())["trained"]
    assert listed["multilabel"]["thresholds"] == pytest.approx(thresholds)
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/match", "/classify", "/runs", "/health"} <= set(paths)
    page = client.get("/")
    assert page.status_code == 200 and 'id="search-form"' in page.text and 'id="match-form"' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "function highlight" in script.text
    for text in (page.text, script.text, client.get("/static/style.css").text):  # works offline: nothing fetched
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


# ----- /search -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["retrieval", "sparse"])
def test_search_reproduces_every_system_of_the_run(client, runs, folders, kind):
    name = next(n for n, r in runs.items() if r.task == kind)
    engine = runs[name].engine
    judged: dict[str, dict[str, int]] = {}
    for qrels in engine.collection.qrels.values():
        for q, docs in qrels.judgements.items():
            judged.setdefault(q, {}).update(docs)
    qids: dict[str, str] = {}  # a text's first judged query is the one whose judgements the hits carry
    for qid, text in zip(engine.collection.queries.ids, engine.collection.queries.texts):
        if text not in qids or (qids[text] not in judged and qid in judged):
            qids[text] = qid
    for system in engine.systems:
        trec = _trec(folders[kind] / "runs" / f"{system}.trec")
        for query in engine.test_queries(4):
            body = client.get("/search", params={"q": query, "k": 5, "system": system, "run": name}).json()
            tested = [q for q, t in zip(engine.collection.queries.ids, engine.collection.queries.texts) if t == query]
            expected = trec[next(q for q in tested if q in trec)][:5]  # queries sharing a text rank alike
            assert [h["doc_id"] for h in body["hits"]] == [d for d, _ in expected], (system, query)
            assert [h["score"] for h in body["hits"]] == pytest.approx([s for _, s in expected], rel=1e-4, abs=1e-6)
            assert body["query_id"] == qids[query] and body["system"] == system
            assert [h["relevance"] for h in body["hits"]] == [
                judged[qids[query]].get(h["doc_id"]) for h in body["hits"]
            ]
            assert [h["rank"] for h in body["hits"]] == list(range(1, len(body["hits"]) + 1))


def test_bm25_terms_are_the_query_terms_a_hit_holds_and_sum_to_its_score(client, runs):
    body = client.get("/search", params={"q": "sourdough crust and the loaf", "k": 5, "system": "bm25"}).json()
    assert body["hits"] and body["query_id"] is None and body["expansion"] == []
    for hit in body["hits"]:
        words = set(f"{hit['title']} {hit['text']}".lower().replace(",", " ").split())
        tokens = [t["token"] for t in hit["terms"]]
        assert tokens and set(tokens) <= {"sourdough", "crust", "loaf"} and set(tokens) <= words
        assert sum(t["weight"] for t in hit["terms"]) == pytest.approx(hit["score"], rel=1e-5)
        assert hit["relevance"] is None  # a new query: no judgements


def test_sparse_hits_show_the_expansion_and_the_shared_tokens_with_both_weights(client, runs):
    name = next(n for n, r in runs.items() if r.task == "sparse")
    params = {"q": "crust sourdough loaf", "k": 3, "run": name, "system": "trained.flat"}
    body = client.get("/search", params=params).json()
    weights = [e["weight"] for e in body["expansion"]]
    assert weights and weights == sorted(weights, reverse=True)
    from simlab.experiments.inspect import inspect_run

    top = inspect_run(runs[name].path, "crust sourdough loaf", top=len(weights)).tokens  # what `simlab inspect` prints
    assert [e["token"] for e in body["expansion"]] == [t for t, _ in top]
    assert weights == pytest.approx([w for _, w in top], rel=1e-4)
    for hit in body["hits"]:
        assert hit["terms"]
        for term in hit["terms"]:
            assert term["weight"] == pytest.approx(term["query_weight"] * term["doc_weight"], rel=1e-5)
        assert sum(t["weight"] for t in hit["terms"]) <= hit["score"] * (1 + 1e-5)


def test_hybrid_carries_bm25_terms(client):
    body = client.get("/search", params={"q": "sourdough crust", "k": 3, "system": "hybrid", "run": "retrieval"}).json()
    assert any(t["token"] in ("sourdough", "crust") for h in body["hits"] for t in h["terms"])


def test_search_refusals(client):
    def err(params, status):
        r = client.get("/search", params=params)
        assert r.status_code == status, r.text
        return r.json()["error"]

    assert "choose one of bm25" in err({"q": "x", "system": "nope", "run": "retrieval"}, 400)
    assert "the query is empty" in err({"q": "  ", "run": "retrieval"}, 400)
    assert "1 to 100" in err({"q": "x", "k": 0}, 400)
    assert "1 to 100" in err({"q": "x", "k": 101}, 400)
    assert "q: Field required" in err({}, 422)
    assert "k:" in err({"q": "x", "k": "ten"}, 422)
    assert "no run named 'nope'" in err({"q": "x", "run": "nope"}, 404)
    assert "pairs run: /search takes retrieval and sparse runs; use /match" in err({"q": "x", "run": "pairs"}, 400)


# ----- /match --------------------------------------------------------------------------------------------


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def test_match_pairs_reproduces_the_test_scores_at_the_frozen_threshold(client, folders):
    records = _rows(folders["pairs"].parent / "records.csv")
    scores = _perquery(folders["pairs"], "trained", "score")
    threshold = json.loads((folders["pairs"] / "metrics.json").read_text())["trained"]["threshold"]
    assert len(scores) >= 4
    for pair, expected in list(scores.items())[:8]:
        a, b = pair.split("|")
        body = client.post(
            "/match", json={"run": "pairs", "left": {"name": records[a]["name"]}, "right": records[b]["name"]}
        ).json()
        assert body["score"] == pytest.approx(expected, abs=2e-6)
        assert body["threshold"] == pytest.approx(threshold) and body["match"] == (body["score"] >= threshold)
        assert body["task"] == "pairs" and body["scorer"] == "cosine"


def test_match_definitions_reproduces_the_head_probabilities(client, folders):
    toy = Path(json.loads((folders["definitions"] / "meta.json").read_text())["data"])
    contexts, glosses = _rows(toy / "tableA.csv"), _rows(toy / "tableB.csv")
    scores = _perquery(folders["definitions"], "trained", "score")
    for pair, expected in list(scores.items())[:8]:
        a, b = pair.split("|")
        left = {k: v for k, v in contexts[a].items() if k != "id"}
        left |= {"char_start": int(left["char_start"]), "char_end": int(left["char_end"])}
        right = {k: v for k, v in glosses[b].items() if k != "id"}
        body = client.post("/match", json={"run": "definitions", "left": left, "right": right}).json()
        assert body["score"] == pytest.approx(expected, abs=2e-6) and body["scorer"] == "head"
        assert 0 <= body["score"] <= 1 and body["match"] == (body["score"] >= body["threshold"])


def test_match_refusals(client):
    def err(body, status):
        r = client.post("/match", json=body)
        assert r.status_code == status, r.text
        return r.json()["error"]

    assert "unknown field(s) ['title']" in err({"run": "pairs", "left": {"title": "x"}, "right": "y"}, 400)
    assert "['name']" in err({"run": "pairs", "left": {"title": "x"}, "right": "y"}, 400)
    assert "left: the record is empty" in err({"run": "pairs", "left": " ", "right": "y"}, 400)
    assert "right: Field required" in err({"run": "pairs", "left": "x"}, 422)
    assert "/match takes pairs and definitions runs; use /search" in err(
        {"run": "retrieval", "left": "a", "right": "b"}, 400
    )
    r = client.post("/match", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()


# ----- /classify -----------------------------------------------------------------------------------------


def test_classify_reproduces_the_test_items_decisions(client, folders):
    import yaml

    data = Path(yaml.safe_load((folders["multilabel"] / "config.yaml").read_text())["data"]["path"])
    items = {r["id"]: r for r in map(json.loads, data.read_text().splitlines())}
    tp, fp, fn = (_perquery(folders["multilabel"], "trained", m) for m in ("tp", "fp", "fn"))
    thresholds = json.loads((folders["multilabel"] / "thresholds.json").read_text())["trained"]
    for item in list(tp)[:10]:
        body = client.post("/classify", json={"text": items[item]["text"]}).json()
        gold = set(items[item]["labels"]) & set(thresholds)
        predicted = set(body["predicted"])
        assert (len(predicted & gold), len(predicted - gold), len(gold - predicted)) == (tp[item], fp[item], fn[item])
        assert {r["label"]: r["threshold"] for r in body["labels"]} == pytest.approx(thresholds)
        probs = [r["probability"] for r in body["labels"]]
        assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
        assert predicted == {r["label"] for r in body["labels"] if r["probability"] >= r["threshold"]}


def test_classify_refusals(client):
    r = client.post("/classify", json={"text": "  "})
    assert r.status_code == 400 and "the text is empty" in r.json()["error"]
    r = client.post("/classify", json={"text": "x", "run": "sparse"})
    assert r.status_code == 400 and "use /search" in r.json()["error"]
    r = client.post("/classify", json={"words": "x"})
    assert r.status_code == 422 and "text: Field required" in r.json()["error"]


# ----- limits and the API key ----------------------------------------------------------------------------


def test_every_limit_is_a_clear_json_refusal(runs):
    limits = Limits(max_query_chars=40, max_k=3, max_body_bytes=300, max_concurrent=1)
    with TestClient(create_app(runs, limits)) as c:
        r = c.get("/search", params={"q": "x" * 41, "run": "retrieval"})
        assert r.status_code == 400 and "41 characters, over the limit of 40" in r.json()["error"]
        assert c.get("/search", params={"q": "x" * 40, "k": 3, "run": "retrieval"}).status_code == 200
        r = c.get("/search", params={"q": "x", "k": 4, "run": "retrieval"})
        assert r.status_code == 400 and "ask for 1 to 3 documents" in r.json()["error"]
        r = c.post("/classify", json={"text": "y" * 41})
        assert r.status_code == 400 and "the text has 41 characters" in r.json()["error"]
        r = c.post("/match", json={"run": "pairs", "left": {"name": "z" * 41}, "right": "a"})
        assert r.status_code == 400 and "the left record has 41 characters" in r.json()["error"]
        big = json.dumps({"text": "w" * 400}).encode()
        r = c.post("/classify", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "over the limit of 300 bytes" in r.json()["error"]
        r = c.post("/classify", content=iter([big[:200], big[200:]]), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "over the limit of 300 bytes" in r.json()["error"]  # no Content-Length
        _one_at_a_time(c, runs)
        assert c.get("/runs").json()["limits"] == limits.to_dict()


def _one_at_a_time(c: TestClient, runs) -> None:
    """With max_concurrent=1, a request while another is being answered gets 429; /health still answers."""
    engine = runs["retrieval"].engine
    entered, release = threading.Event(), threading.Event()
    original = engine.search

    def slow(*args, **kwargs):
        entered.set()
        release.wait(30)
        return original(*args, **kwargs)

    engine.search = slow
    try:
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(r=c.get("/search", params={"q": "loaf", "k": 3})))
        worker.start()
        assert entered.wait(30)
        r = c.get("/search", params={"q": "loaf", "k": 3})
        assert r.status_code == 429 and "too many requests at once (limit 1)" in r.json()["error"]
        assert r.headers["retry-after"] == "1"
        assert c.get("/health").status_code == 200
        release.set()
        worker.join(30)
        assert first["r"].status_code == 200
    finally:
        release.set()
        del engine.search
    assert c.get("/search", params={"q": "loaf", "k": 3}).status_code == 200


def test_an_api_key_guards_the_api_but_not_the_page(runs):
    with TestClient(create_app(runs, api_key="s3cret")) as c:
        for r in (c.get("/runs"), c.get("/search", params={"q": "x"}), c.get("/runs", headers={"X-API-Key": "no"})):
            assert r.status_code == 401 and "API key" in r.json()["error"]
        assert c.get("/runs", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.post("/classify", json={"text": "bread"}, headers={"X-API-Key": "s3cret"}).status_code == 200
        for path in ("/", "/health", "/docs", "/static/app.js"):
            assert c.get(path).status_code == 200, path


def test_loopback_by_default_and_a_warning_elsewhere():
    from simlab.serve.server import exposure_warning, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert exposure_warning("127.0.0.1", None) is None
    warning = exposure_warning("0.0.0.0", None)
    assert "reachable from other machines" in warning and "--api-key or SIMLAB_API_KEY" in warning
    assert "every API call needs the API key" in exposure_warning("0.0.0.0", "k")


# ----- loading, and `simlab search` sharing it ------------------------------------------------------------


def test_loading_refusals(folders, tmp_path):
    from simlab.errors import ConfigError, RunFolderError

    with pytest.raises(ConfigError, match="given twice"):
        load_runs([folders["pairs"], folders["pairs"]])
    with pytest.raises(ConfigError, match="at least one run"):
        load_runs([])
    with pytest.raises(RunFolderError, match="not a simlab run folder"):
        load_runs([tmp_path])


def test_simlab_search_reads_the_query_from_stdin_or_a_file(folders, tmp_path):
    from typer.testing import CliRunner

    from simlab.cli import app

    run = str(folders["retrieval"])
    query = "crust sourdough loaf question\n"
    (tmp_path / "q.txt").write_text(query)
    direct = CliRunner().invoke(app, ["search", run, query, "-k", "3", "--index", "bm25"])
    piped = CliRunner().invoke(app, ["search", run, "--stdin", "-k", "3", "--index", "bm25"], input=query)
    filed = CliRunner().invoke(app, ["search", run, "--file", str(tmp_path / "q.txt"), "-k", "3", "--index", "bm25"])
    assert direct.exit_code == piped.exit_code == filed.exit_code == 0, direct.output + piped.output
    assert direct.output == piped.output == filed.output and len(direct.output.splitlines()) == 3
    both = CliRunner().invoke(app, ["search", run, query, "--stdin"], input=query)
    assert both.exception.exit_code == 2 and "give the query one way" in str(both.exception)
    missing = CliRunner().invoke(app, ["search", run, "--file", str(tmp_path / "none.txt")])
    assert missing.exception.exit_code == 2 and "none.txt: cannot be read" in str(missing.exception)
