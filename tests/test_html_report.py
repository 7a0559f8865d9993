"""`simlab report`: the HTML/markdown report of a retrieval sweep and of a pairs run, and a Chromium render."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from simlab.errors import ConfigError
from simlab.experiments.html_report import build_report
from simlab.experiments.report_figures import threshold_curve
from simlab.tasks import load_config, load_sweep


@pytest.fixture(scope="module")
def retrieval_sweep(tmp_path_factory) -> Path:
    """Two runs (train.epochs=[1,2]) of bm25 + the trained model with an HNSW index, on the e2e toy collection."""
    from test_run_e2e import make_collection

    from simlab.data.beir import write_beir
    from simlab.experiments.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("report-sweep")
    write_beir(make_collection(), tmp / "beir")
    configs = load_sweep(
        None,
        [
            f"data.path={tmp / 'beir'}",
            "train.epochs=[1,2]",
            "train.batch_size=16",
            "eval.systems=[bm25, trained]",
            "index.approximate=[hnsw]",
            "tracking.mlflow=false",
        ],
    )
    run_sweep(configs, tmp / "sweep")
    return tmp / "sweep"


@pytest.fixture(scope="module")
def pairs_run(tmp_path_factory) -> Path:
    from test_pairs_run import grouped_overrides, write_records

    from simlab.experiments.runner import run_experiment

    tmp = tmp_path_factory.mktemp("report-pairs")
    write_records(tmp / "records.csv")
    cfg = load_config(
        Path(__file__).parents[1] / "examples" / "matching.yaml",
        [*grouped_overrides(tmp), "train.epochs=2"],
    )
    return run_experiment(cfg, tmp / "run").folder


def check_saved(report, out: Path) -> str:
    """Save the report and run the checks every report passes; returns the HTML."""
    report.save(out)
    page = out.read_text(encoding="utf-8")
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert page.count("<img") == len(report.figures) > 0
    assert page.count("src='data:image/png;base64,") == len(report.figures)
    for name in report.runs:
        assert name in page and name in md
    assert not re.search(r"https?://", page) and not re.search(r"https?://", md)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == len(report.figures)
    for link in links:
        png = out.parent / link
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
    return page


def test_retrieval_sweep_report(retrieval_sweep, tmp_path):
    report = build_report(retrieval_sweep)
    assert report.task == "retrieval" and report.runs == ["epochs=1", "epochs=2"] and report.baseline == "epochs=1"
    assert report.config_fields == ["train.epochs"]
    assert [f.name for f in report.figures] == ["learning_curves", "metric_vs_train_epochs", "quality_vs_speed"]
    assert report.comparison.metrics == ["ndcg@10"]
    assert report.comparison.systems == ["epochs=1/trained.flat", "epochs=2/trained.flat"]
    page = check_saved(report, tmp_path / "sweep.html")
    config_section = page.split("id='config'")[1].split("id='comparison'")[0]
    assert "train.epochs" in config_section
    other = build_report(retrieval_sweep, baseline="epochs=2")
    assert other.baseline == "epochs=2" and other.comparison.baseline == "epochs=2/trained.flat"
    with pytest.raises(ConfigError, match=r"'nope' is not a run .* choose one of: epochs=1, epochs=2"):
        build_report(retrieval_sweep, baseline="nope")


def test_single_retrieval_run_compares_its_systems_against_bm25(retrieval_sweep, tmp_path):
    report = build_report(retrieval_sweep / "epochs=2")
    assert report.comparison.baseline == "bm25" and "trained.hnsw" in report.comparison.systems
    assert report.config_fields == []
    assert [f.name for f in report.figures] == ["learning_curves", "quality_vs_speed"]
    check_saved(report, tmp_path / "run.html")


def test_pairs_report(pairs_run, tmp_path):
    report = build_report(pairs_run)
    assert report.task == "pairs" and report.comparison.baseline == "overlap"
    assert report.comparison.metrics == ["f1"] and report.columns == [
        "accuracy",
        "f1",
        "precision",
        "recall",
        "threshold",
    ]
    for system in report.comparison.systems[1:]:  # F1 from the per-pair counts is the run's test F1
        assert report.comparison.result(system, "f1").mean == pytest.approx(report.values[system]["f1"], abs=1e-9)
    assert [f.name for f in report.figures] == ["learning_curves", "precision_recall", "threshold_curves"]
    page = check_saved(report, tmp_path / "pairs.html")
    f1 = report.values["trained"]["f1"]
    assert f"{f1:.4f}" in page


def test_pair_labels_recovered_from_correct_give_the_runs_f1(pairs_run):
    """label = (score >= thr) == correct: the F1 at the frozen threshold is metrics.json's."""
    import json

    from simlab.experiments.html_report import read_run_data
    from simlab.experiments.report_figures import pair_scores_of

    run = read_run_data(pairs_run, pairs_run.name)
    s, y, thr = pair_scores_of(run)
    t, _, _, f1 = threshold_curve(s, y)
    at = t[t >= thr].min()
    expected = json.loads((pairs_run / "metrics.json").read_text())["trained"]["f1"]
    assert f1[list(t).index(at)] == pytest.approx(expected, abs=1e-6)


def test_curve_on_a_hand_checked_example():
    import numpy as np

    t, p, r, f1 = threshold_curve(np.array([0.9, 0.8, 0.8, 0.1]), np.array([True, False, True, False]))
    assert list(t) == [0.9, 0.8, 0.1]
    assert list(p) == pytest.approx([1.0, 2 / 3, 0.5]) and list(r) == pytest.approx([0.5, 1.0, 1.0])
    assert f1[0] == pytest.approx(2 / 3)


def test_chromium_renders_the_page(pairs_run, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    import matplotlib.image as mpimg

    page = tmp_path / "pairs.html"
    build_report(pairs_run).save(page)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            page.resolve().as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2000, 1200) and pixels.var() > 0


def test_cli_report_writes_html_and_markdown(pairs_run, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "r.html"
    proc = subprocess.run(
        [sys.executable, "-m", "simlab", "report", str(pairs_run), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.with_suffix(".md").is_file() and "<img" in out.read_text()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "simlab",
            "report",
            str(pairs_run),
            "--out",
            str(out),
            "--baseline",
            "nope",
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "nope" in bad.stderr
    again = subprocess.run(
        [sys.executable, "-m", "simlab", "report", str(pairs_run), "--out", str(out)], capture_output=True, text=True
    )
    assert again.returncode == 2 and "r.html already exists; choose another name or pass --overwrite" in again.stderr
