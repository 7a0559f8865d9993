"""Every task kind through the whole tool: run -> compare -> HTML report -> the commands it takes.

One tiny run per task kind (retrieval, sparse, pairs, definitions, multilabel, and the toy
`parity` task of tests/toytask, registered from outside simlab); each is compared on its
main metric (and F1 where the task has it), reported as HTML, searched / matched / inspected
where its task takes that command, and refused with exit 2 where it does not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simlab.cli import app
from simlab.tasks import TASKS, load_config
from simlab.tasks.skeleton import read_metrics

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("search", "match", "inspect")


def _collection(tmp: Path) -> list[str]:
    from test_run_e2e import make_collection

    from simlab.data.beir import write_beir

    write_beir(make_collection(), tmp / "beir")
    return [f"data.path={tmp / 'beir'}", "train.epochs=1", "train.batch_size=8"]


def _retrieval(tmp: Path) -> list[str]:
    return [*_collection(tmp), "index.approximate=[hnsw]"]


def _sparse(tmp: Path) -> list[str]:
    return [
        *_collection(tmp),
        "model.kind=sparse",
        "model.name=bert-mlm-scratch",
        "model.max_length=32",
        "model.sparse.scratch={vocab_size: 200, hidden_size: 16, layers: 1, heads: 1}",
        "index.sparse_approximate=[]",
    ]


def _pairs(tmp: Path) -> list[str]:
    from test_pairs_run import grouped_overrides, write_records

    write_records(tmp / "records.csv")
    return [*grouped_overrides(tmp), "train.epochs=1"]


def _definitions(tmp: Path) -> list[str]:
    from test_definitions import head_overrides, write_toy

    return ["task=definitions", *head_overrides(write_toy(tmp / "toy"), "head.widths=[16, 8]"), "train.epochs=2"]


def _multilabel(tmp: Path) -> list[str]:
    from simlab.data.loader import convert

    convert("demo-topics", None, tmp / "topics")
    return ["task=multilabel", f"data.path={tmp / 'topics' / 'texts.jsonl'}", "train.epochs=1", "train.max_steps=4"]


def _parity(tmp: Path) -> list[str]:
    import toytask  # noqa: F401  (registers `task: parity`)

    (tmp / "numbers.txt").write_text("\n".join(str(n) for n in range(40)))
    return ["task=parity", f"data.path={tmp / 'numbers.txt'}"]


SETUPS = {
    "retrieval": _retrieval,
    "sparse": _sparse,
    "pairs": _pairs,
    "definitions": _definitions,
    "multilabel": _multilabel,
    "parity": _parity,
}


@pytest.fixture(scope="module", params=list(SETUPS))
def finished(request, tmp_path_factory):
    from simlab.experiments.runner import run_experiment

    tmp = tmp_path_factory.mktemp(request.param)
    cfg = load_config(None, [*SETUPS[request.param](tmp), "tracking.mlflow=false", "name=e2e"])
    assert cfg.task == request.param
    return run_experiment(cfg, tmp / "run")


def test_run_writes_the_common_files(finished):
    folder = finished.folder
    for name in ("config.yaml", "meta.json", "metrics.json", "speed.json", "perquery.tsv", "report.md"):
        assert (folder / name).is_file(), name
    task = TASKS[finished.config.task]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["task"] == task.name and meta[f"n_test_{task.unit}"] == finished.n_test > 0
    header, *rows = (folder / "perquery.tsv").read_text().splitlines()
    assert header.split("\t") == ["system", "query_id", "metric", "value"]
    systems = {r.split("\t")[0] for r in rows}
    assert systems == set(read_metrics(folder / "metrics.json")[0])
    assert task.reference_system in systems and task.main_system(sorted(systems)) in systems
    columns = {r.split("\t")[2] for r in rows}
    assert columns >= set(task.item_metrics)
    metric = task.compare_metric(finished.config)  # a column, or a ratio of the tp/fp/fn columns
    assert metric in columns or (metric in ("f1", "precision", "recall") and {"tp", "fp", "fn"} <= columns)
    if finished.history:
        assert (folder / "history.jsonl").is_file() and (folder / "curves.png").is_file()
    assert not list(folder.parent.glob(f".{folder.name}.*")), "staging or checkpoint folders left behind"


def test_every_run_names_its_answer_chosen_by_val(finished):
    """metrics.json's `chosen`: the system with the best val score of the task's main metric, with its test
    metrics; it heads the report."""
    metrics, chosen = read_metrics(finished.folder / "metrics.json")
    task = TASKS[finished.config.task]
    if finished.config.task == "parity":  # the toy task has no val split: nothing to choose by
        assert chosen is None
        return
    key = f"val_{task.main_metric(finished.config)}"
    scored = {s: m[key] for s, m in metrics.items() if key in m}
    assert len(scored) >= 2 and task.reference_system in scored
    assert chosen["by"] == key and chosen["val"] == max(scored.values()) == scored[chosen["system"]]
    assert chosen["test"] == {k: v for k, v in metrics[chosen["system"]].items() if not k.startswith("val_")}
    report = (finished.folder / "report.md").read_text()
    assert report.index("## Chosen") < report.index("|") and f"| {chosen['system']} |" in report


def test_compare_on_the_main_metric_and_f1(finished, tmp_path):
    task = TASKS[finished.config.task]
    metrics = [task.compare_metric(finished.config)]
    per_item = {r.split("\t")[2] for r in (finished.folder / "perquery.tsv").read_text().splitlines()[1:]}
    if {"tp", "fp", "fn"} <= per_item:
        metrics.append("f1")
    out = tmp_path / "cmp.json"
    result = CliRunner().invoke(
        app, ["compare", str(finished.folder), "--metrics", ",".join(metrics), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    assert table["baseline"] == next(iter(finished.metrics)) and table["metrics"] == metrics
    assert {r["system"] for r in table["results"]} == set(finished.metrics) - {table["baseline"]}


def test_every_trec_file_reproduces_metrics_json_with_pytrec_eval(finished):
    """Retrieval and learned sparse runs: each runs/<system>.trec gives its metrics.json line under trec_eval."""
    from test_run_e2e import check_trec_files

    if not (finished.folder / "runs").is_dir():
        assert finished.config.task not in ("retrieval", "sparse")
        return
    assert {p.stem for p in (finished.folder / "runs").glob("*.trec")} == set(finished.metrics)
    check_trec_files(finished.folder)


def test_html_report_shows_every_terminal_metric_and_renders_in_chromium(finished, tmp_path):
    """Every task's report holds every metric of its terminal table, once, and renders in headless chromium.

    With SIMLAB_SCREENSHOTS=docs the screenshots are written to docs/report-<task>.png (the committed ones).
    """
    import os

    from test_html_report import check_screenshot, screenshot

    result = CliRunner().invoke(app, ["report", str(finished.folder), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    task = TASKS[finished.config.task]
    assert task.reference_system in page and task.main_system(list(finished.metrics)) in page
    assert f"baseline: {task.reference_system}." in page
    table = (tmp_path / "r.md").read_text().split("## Comparison\n")[1].strip().splitlines()[0]
    head = [c.strip() for c in table.strip("|").split(" | ")]
    assert len(head) == len(set(head))
    shown = {h.removesuffix(" (Δ)") for h in head}
    main = task.main_system(list(finished.metrics))
    wanted = [c for c in task.columns(finished.config) if c in finished.metrics[main]]
    assert wanted and set(wanted) <= shown, set(wanted) - shown
    name = finished.config.task
    docs = os.environ.get("SIMLAB_SCREENSHOTS") == "docs" and name != "parity"
    png = (ROOT / "docs" / f"report-{name}.png") if docs else tmp_path / f"report-{name}.png"
    check_screenshot(screenshot(tmp_path / "r.html", png, tmp_path), page)


def _command(name: str, folder: Path, tmp: Path) -> list[str]:
    if name == "match":
        table = tmp / "table.csv"
        table.write_text("id,name\nr1,acme kettle x100 pro\nr2,zeta lamp x107 mini\n")
        return ["match", str(folder), "--left", str(table), "--right", str(table), "--out", str(tmp / "m.csv")]
    return [name, str(folder), "boundary layer question"]


@pytest.mark.parametrize("command", COMMANDS)
def test_command_runs_where_the_task_takes_it_and_is_refused_elsewhere(finished, command, tmp_path):
    task = TASKS[finished.config.task]
    result = CliRunner().invoke(app, _command(command, finished.folder, tmp_path))
    if command in task.commands:
        assert result.exit_code == 0, result.output
        assert result.output.strip()
    else:
        from simlab.errors import RunFolderError

        assert isinstance(result.exception, RunFolderError), result.output
        assert result.exception.exit_code == 2
        assert f"is a {task.name} run" in str(result.exception)


@pytest.mark.parametrize("name", ["retrieval", "sparse", "pairs", "definitions", "multilabel"])
def test_every_built_in_task_keeps_the_protocol(name):
    import importlib

    task = TASKS[name]
    assert task.name == name and task.schema.model_fields["task"].default == name
    assert {"run"} <= set(vars(importlib.import_module(task.stages)))
    assert {"render", "tables"} <= set(vars(importlib.import_module(task.reports)))
    assert task.reference_system and task.main_systems and task.unit in ("queries", "pairs", "items")
    assert task.commands <= set(COMMANDS)


def test_older_yaml_spellings_map_to_their_tasks():
    assert load_config(ROOT / "examples" / "splade.yaml", ["task=retrieval"]).task == "sparse"
    assert load_config(ROOT / "examples" / "definitions.yaml", ["task=pairs"]).task == "definitions"


def test_a_dense_config_with_a_sparse_only_field_is_refused():
    from simlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train.splade: only sparse \(SPLADE\) runs read this"):
        load_config(ROOT / "examples" / "dense.yaml", ["train.splade.grad_accum=2"])
    with pytest.raises(ConfigError, match="index.hnsw: only dense runs read this"):
        load_config(ROOT / "examples" / "splade.yaml", ["index.hnsw.m=8"])


def test_compare_leaves_raw_scores_out_unless_asked(finished):
    from simlab.experiments.api import compare

    per_item = {r.split("\t")[2] for r in (finished.folder / "perquery.tsv").read_text().splitlines()[1:]}
    table = compare([finished.folder])
    assert "score" not in table.metrics and table.metrics
    if "score" in per_item:  # pairs and definitions write each pair's raw similarity: compared when asked
        assert compare([finished.folder], metrics=["score"]).metrics == ["score"]


def test_each_run_logs_to_the_mlflow_experiment_of_its_config_name(tmp_path):
    import mlflow

    from simlab.experiments.runner import run_experiment

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sets = [
        f"data.path={ROOT / 'examples' / 'demo'}",
        "eval.systems=[bm25]",
        f"tracking.uri={uri}",
        "tracking.mlflow=true",
    ]
    run_experiment(load_config(ROOT / "examples" / "dense.yaml", [*sets, "name=cranfield-a"]), tmp_path / "a")
    run_experiment(load_config(ROOT / "examples" / "dense.yaml", [*sets, "name=cranfield-b"]), tmp_path / "b")
    client = mlflow.MlflowClient(tracking_uri=uri)
    for name in ("cranfield-a", "cranfield-b"):
        (run,) = client.search_runs([client.get_experiment_by_name(name).experiment_id])
        assert run.info.run_name == name[-1]
