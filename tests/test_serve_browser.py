"""The page of `simlab serve` in a real browser: Debian's chromium, headless, driven by Selenium.

A demo run (examples/dense.yaml on examples/demo, as `simlab demo` makes it) is served by
uvicorn on 127.0.0.1; the page is loaded, a test query typed, two systems chosen, and the
results, their highlighted terms and judgements read from the DOM and checked against the
API's answer. A screenshot is written as a test artifact (`SIMLAB_SCREENSHOT=path` also
copies it there, e.g. docs/serve.png). The test skips, saying why, only where chromium,
chromedriver or selenium are missing (`make browser` installs them where apt-get can).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from test_serve_process import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
QUERY = "how do I keep my wild yeast culture going between bakes"  # a test query of examples/demo (q001)


def _browser_or_skip():
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} not found: install Debian's {package} (`make browser` does, as root with apt-get)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[test]'")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    from simlab.experiments.runner import run_experiment
    from simlab.tasks import load_config

    out = tmp_path_factory.mktemp("demo") / "demo"
    examples = ROOT / "examples"
    cfg = load_config(examples / "dense.yaml", [f"data.path={examples / 'demo'}", "tracking.mlflow=false"])
    run_experiment(cfg, out)
    return out


@pytest.fixture(scope="module")
def server(demo_run, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simlab", "serve", str(demo_run), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            start_new_session=True,
        )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/health", proc) == 200, log.read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def _api(base: str, **params) -> dict:
    with urllib.request.urlopen(f"{base}/search?{urllib.parse.urlencode(params)}") as r:
        return json.loads(r.read())


def _column(driver, side: str) -> list[dict]:
    from selenium.webdriver.common.by import By

    hits = []
    for li in driver.find_elements(By.CSS_SELECTOR, f"#results-{side} li.hit"):
        hits.append(
            {
                "doc_id": li.get_attribute("data-doc"),
                "score": float(li.find_element(By.CSS_SELECTOR, ".score").text),
                "marks": [m.text.lower() for m in li.find_elements(By.TAG_NAME, "mark")],
                "badge": " ".join(b.text for b in li.find_elements(By.CSS_SELECTOR, ".rel")),
            }
        )
    return hits


def test_the_page_searches_two_systems_side_by_side_with_highlights_and_judgements(server, tmp_path):
    import Stemmer
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = _browser_or_skip()
    try:
        driver.get(server + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        assert driver.find_element(By.ID, "search-panel").is_displayed()
        systems = [o.get_attribute("value") for o in Select(driver.find_element(By.ID, "system-a")).options]
        assert {"bm25", "zeroshot.flat", "trained.flat", "trained.hnsw", "hybrid"} <= set(systems)
        Select(driver.find_element(By.ID, "system-a")).select_by_value("trained.flat")
        Select(driver.find_element(By.ID, "system-b")).select_by_value("bm25")
        k = driver.find_element(By.ID, "k")
        k.clear()
        k.send_keys("5")
        driver.find_element(By.ID, "q").send_keys(QUERY)
        driver.find_element(By.ID, "search-button").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-searched"))
        dense, bm25 = _column(driver, "a"), _column(driver, "b")

        for hits, system in ((dense, "trained.flat"), (bm25, "bm25")):
            expected = _api(server, q=QUERY, k=5, system=system)
            assert [h["doc_id"] for h in hits] == [h["doc_id"] for h in expected["hits"]], system
            assert [h["score"] for h in hits] == pytest.approx([h["score"] for h in expected["hits"]], abs=1e-4)
            assert system in driver.find_element(By.ID, "title-a" if system == "trained.flat" else "title-b").text
            for shown, hit in zip(hits, expected["hits"]):  # the judged relevance of each hit of a test query
                want = "unjudged" if hit["relevance"] is None else f"({hit['relevance']})"
                assert want in shown["badge"], (system, shown)
        assert bm25[0]["doc_id"] == "d001" and "relevant (2)" in bm25[0]["badge"]
        assert {"wild", "yeast", "culture"} <= set(bm25[0]["marks"])  # its BM25 terms, highlighted in the text
        terms = {t["token"] for h in _api(server, q=QUERY, k=5, system="bm25")["hits"] for t in h["terms"]}
        stem = Stemmer.Stemmer("english").stemWord  # BM25 matches stems; the page marks the words that have them
        assert all({stem(m.lower()) for m in h["marks"]} <= terms for h in bm25)
        assert all(h["marks"] == [] for h in dense)  # a dense model matches no terms: nothing is highlighted
        assert "query q001" in driver.find_element(By.ID, "status").text

        shot = tmp_path / "serve.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if os.environ.get("SIMLAB_SCREENSHOT"):
            shutil.copy(shot, os.environ["SIMLAB_SCREENSHOT"])
    finally:
        driver.quit()
