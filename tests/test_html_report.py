"""`simlab report`: the HTML/markdown report of a retrieval sweep and of a pairs run, and a Chromium render."""

from __future__ import annotations

import html
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


def _headers(page: str, anchor: str) -> list[str]:
    """The header cells of the page's table of section `anchor` (a p-value joined under its metric: both)."""
    section = page.split(f"id='{anchor}'")[1].split("<h2")[0].split("</thead>")[0]
    cells = re.findall(r"<th[^>]*>(.*?)</th>", section)
    return [t for c in cells for t in re.sub(r"<[^>]+>", "\n", c.replace("<br>", "\n")).split("\n") if t]


def _md_headers(md: str, heading: str) -> list[str]:
    """The header cells of the markdown's table under `## heading`."""
    table = md.split(f"## {heading}\n")[1].strip().splitlines()[0]
    return [c.strip() for c in table.strip("|").split(" | ")]


def test_retrieval_sweep_report(retrieval_sweep, tmp_path):
    import simlab

    report = build_report(retrieval_sweep)
    assert report.task == "retrieval" and report.runs == ["epochs=1", "epochs=2"]
    assert report.baseline == "epochs=1/trained.flat" and report.baseline_run == "epochs=1"
    assert report.config_fields == ["train.epochs"]
    assert [f.name for f in report.figures] == ["learning_curves", "metric_vs_train_epochs", "quality_vs_speed"]
    metrics = ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map"]
    assert report.comparison.metrics == metrics
    assert report.comparison.systems == ["epochs=1/trained.flat", "epochs=2/trained.flat"]
    # one family of p-values: `simlab compare` on the same folder gives the very same table
    same = simlab.compare([retrieval_sweep])
    assert same.results == report.comparison.results and same.correction == report.comparison.correction == "holm"
    page = check_saved(report, tmp_path / "sweep.html")
    assert "baseline: epochs=1/trained.flat (of run epochs=1)" in page
    head = _md_headers((tmp_path / "sweep.md").read_text(encoding="utf-8"), "Comparison")
    assert len(head) == len(set(head))  # no metric shown twice
    assert [h for h in head if h.endswith("(Δ)")] == [f"{m} (Δ)" for m in metrics]  # a delta for every metric
    assert [h for h in head if h.startswith("p (holm)")] == [f"p (holm) {m}" for m in metrics]  # and a p-value
    on_page = _headers(page, "comparison")  # the page puts each p-value under its value, in one column
    assert [h for h in on_page if h.endswith("(Δ)")] == [f"{m} (Δ)" for m in metrics]
    assert on_page.count("p (holm)") == len(metrics)
    cells = page.split("id='comparison'")[1].split("</table>")[0].split("</thead>")[1]
    assert cells.count("<span class='p'>p = ") == len(metrics)  # the one non-baseline row: a p under each value
    assert f"holm-corrected over all {len(metrics)} comparisons of the table" in page
    assert "simlab compare and simlab report" in page
    config_section = page.split("id='config'")[1].split("<h2")[0]
    assert "train.epochs" in config_section
    other = build_report(retrieval_sweep, baseline="epochs=2")
    assert other.baseline_run == "epochs=2" and other.comparison.baseline == "epochs=2/trained.flat"
    with pytest.raises(ConfigError, match=r"'nope' is not a run .* choose one of: epochs=1, epochs=2"):
        build_report(retrieval_sweep, baseline="nope")


def test_single_retrieval_run_report_has_runs_speed_and_notes(retrieval_sweep, tmp_path):
    import json

    run = retrieval_sweep / "epochs=2"
    report = build_report(run)
    assert report.comparison.baseline == report.baseline == "bm25" and "trained.hnsw" in report.comparison.systems
    assert report.config_fields == []
    assert [f.name for f in report.figures] == ["learning_curves", "quality_vs_speed"]
    page = check_saved(report, tmp_path / "run.html")
    assert "baseline: bm25." in page
    meta = json.loads((run / "meta.json").read_text())
    runs = page.split("id='runs'")[1].split("<h2")[0]
    assert "wordllama" in runs and f"{meta['seconds']:,.1f} s" in runs and meta["finished"] in runs
    assert f"Machine: {meta['machine']}." in runs
    speed = _headers(page, "speed")
    assert speed[:2] == ["system", "Δ ndcg@10 vs exact"] and {"QPS 1", "QPS batch", "build s", "MB"} <= set(speed)
    stats = json.loads((run / "speed.json").read_text())["trained.hnsw"]
    assert f"{stats['qps_single']:,.0f}" in page.split("id='speed'")[1].split("<h2")[0]
    notes = page.split("id='notes'")[1].split("<h2")[0]
    assert meta["notes"] and all(html.escape(n, quote=True) in notes for n in meta["notes"])
    # numbers are right-aligned: every numeric cell of the comparison and speed tables carries class n
    for anchor in ("comparison", "speed"):
        section = page.split(f"id='{anchor}'")[1].split("<h2")[0]
        cells = re.findall(r"<td([^>]*)>([^<]*)</td>", section)
        numeric = [(attr, text) for attr, text in cells if re.fullmatch(r"[-+]?[\d,]*\.\d+( \([-+][\d.]+\))?†?", text)]
        assert numeric and all("class='n'" in attr for attr, _ in numeric)
    assert "td.n{text-align:right" in page


def test_pairs_report(pairs_run, tmp_path):
    from simlab.tasks.pairs.report import PAIR_COLUMNS

    report = build_report(pairs_run)
    assert report.task == "pairs" and report.comparison.baseline == "overlap"
    assert report.comparison.metrics == ["f1", "correct", "pos_acc", "neg_acc"]
    assert report.columns == [k for k, _ in PAIR_COLUMNS]  # what the terminal table shows
    for system in report.comparison.systems[1:]:  # F1 from the per-pair counts is the run's test F1
        assert report.comparison.result(system, "f1").mean == pytest.approx(report.values[system]["f1"], abs=1e-9)
        correct = report.comparison.result(system, "correct").mean
        assert correct == pytest.approx(report.values[system]["accuracy"], abs=1e-9)
    assert [f.name for f in report.figures] == ["learning_curves", "precision_recall", "threshold_curves"]
    assert "val loss" in report.figures[0].title  # the pairs history has it: dashed beside the train loss
    page = check_saved(report, tmp_path / "pairs.html")
    head = _md_headers((tmp_path / "pairs.md").read_text(encoding="utf-8"), "Comparison")
    assert len(head) == len(set(head)) and "accuracy (Δ)" in head and "accuracy" not in head
    assert {"pos_acc (Δ)", "neg_acc (Δ)", "avg_acc", "ap", "precision", "recall", "threshold"} <= set(head)
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


def screenshot(page: Path, png: Path, tmp: Path, width: int = 1280, height: int = 9000) -> Path:
    """A headless-chromium screenshot of `page`, cropped below its last non-white row (the whole page, as long
    as it fits in `height` pixels). Skips the test when chromium is not installed (`make browser`)."""
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (make browser, or apt-get install chromium)")
    raw = tmp / f"{png.stem}-raw.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={tmp / 'profile'}",
            f"--screenshot={raw}",
            f"--window-size={width},{height}",
            page.resolve().as_uri(),
        ],
        check=True,
        timeout=180,
        capture_output=True,
    )
    image = Image.open(raw).convert("RGB")
    gray = image.convert("L").point(lambda v: 255 if v > 250 else 0)
    rows = [y for y in range(image.height) if gray.crop((0, y, image.width, y + 1)).getextrema()[0] == 0]
    png.parent.mkdir(parents=True, exist_ok=True)
    image.crop((0, 0, image.width, min(image.height, (rows[-1] if rows else 0) + 40))).save(png, optimize=True)
    return png


def check_screenshot(png: Path, page: str) -> None:
    """The page rendered: a full-width image as tall as its content, with every figure drawn (not blank)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert pixels.shape[1] == 1280 and pixels.var() > 0
    # every figure is at least 250 px tall: the page is at least that much per figure, plus the tables
    assert pixels.shape[0] > 300 + 250 * page.count("<img")
    assert pixels.shape[0] < 9000, "the page is longer than the screenshot: raise the height"


def test_chromium_renders_the_page(pairs_run, tmp_path):
    page = tmp_path / "pairs.html"
    build_report(pairs_run).save(page)
    shot = screenshot(page, tmp_path / "shot.png", tmp_path)
    check_screenshot(shot, page.read_text(encoding="utf-8"))


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


def test_runs_table_shows_data_beside_the_project_relative(tmp_path, monkeypatch):
    from simlab.experiments.report_tables import shown_path

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert shown_path(project / "data" / "cranfield") == str(Path("data") / "cranfield")
    assert shown_path(tmp_path / "shared" / "data" / "ag") == str(Path("..") / "shared" / "data" / "ag")
    assert shown_path("/elsewhere/ag") == "/elsewhere/ag"  # not under the project nor beside it
    assert shown_path(None) == "-"


def test_metric_vs_axis_plots_the_sweep_not_the_baseline_run_beside_it(retrieval_sweep, tmp_path, monkeypatch):
    from simlab.experiments import report_figures

    base = tmp_path / "base"  # a run made before the sweep (its config has the swept field too)
    shutil.copytree(retrieval_sweep / "epochs=2", base)
    plotted, real = [], report_figures._metric_vs_axis

    def spy(runs, key, axes):
        plotted.append((key, [r.name for r in runs]))
        return real(runs, key, axes)

    monkeypatch.setattr(report_figures, "_metric_vs_axis", spy)
    report = build_report([base, retrieval_sweep])
    assert report.runs == ["base", "epochs=1", "epochs=2"]
    assert plotted == [("train.epochs", ["epochs=1", "epochs=2"])]
    assert "metric_vs_train_epochs" in [f.name for f in report.figures]


def test_learning_curves_without_per_epoch_evaluation_show_the_loss_only(retrieval_sweep, tmp_path):
    import json

    run = tmp_path / "nodev"  # a run without a dev split: its history has the train loss only
    shutil.copytree(retrieval_sweep / "epochs=2", run)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    kept = [{k: v for k, v in h.items() if not k.startswith("dev_")} for h in history]
    (run / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in kept))
    curves = next(f for f in build_report(run).figures if f.name == "learning_curves")
    assert curves.title == "Learning curves: train loss per epoch (no dev evaluation per epoch)"
    with_dev = next(f for f in build_report(retrieval_sweep).figures if f.name == "learning_curves")
    assert with_dev.title == "Learning curves: train loss and dev ndcg@10 per epoch"
