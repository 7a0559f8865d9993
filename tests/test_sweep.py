"""Sweeps: grid expansion and names, validation of every point, resume, sweep.json, MLflow parent/child."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simlab.config.sweep import expand
from simlab.errors import ConfigError, RunFolderError
from simlab.experiments.sweep import render_sweep, run_sweep
from simlab.tasks import TASKS, load_sweep

# ----------------------------------------------------------------------------- expansion


def names(raw: dict, task: str = "retrieval") -> list[str]:
    return [name for name, _ in expand(raw, TASKS[task].schema)]


def test_one_axis_gives_one_run_per_value():
    points = expand({"sampling": {"pos_neg_ratio": [1, 2, 4, 8]}, "data": {"path": "x"}}, TASKS["pairs"].schema)
    assert [n for n, _ in points] == ["pos_neg_ratio=1", "pos_neg_ratio=2", "pos_neg_ratio=4", "pos_neg_ratio=8"]
    assert [p["sampling"]["pos_neg_ratio"] for _, p in points] == [1, 2, 4, 8]
    assert all(p["data"] == {"path": "x"} for _, p in points)


def test_grid_is_the_cartesian_product_first_axis_slowest():
    raw = {"sampling": {"pos_neg_ratio": [1, 2], "hard_soft_ratio": [0.3, 0.5, 0.7]}}
    assert names(raw, "pairs") == [
        "pos_neg_ratio=1,hard_soft_ratio=0.3",
        "pos_neg_ratio=1,hard_soft_ratio=0.5",
        "pos_neg_ratio=1,hard_soft_ratio=0.7",
        "pos_neg_ratio=2,hard_soft_ratio=0.3",
        "pos_neg_ratio=2,hard_soft_ratio=0.5",
        "pos_neg_ratio=2,hard_soft_ratio=0.7",
    ]
    assert raw == {"sampling": {"pos_neg_ratio": [1, 2], "hard_soft_ratio": [0.3, 0.5, 0.7]}}  # input untouched


def test_names_use_the_full_key_when_two_axes_share_a_last_component():
    raw = {"data": {"path": "x", "seed": [1, 2]}, "train": {"seed": [3, 4]}}
    assert names(raw, "pairs")[0] == "data.seed=1,train.seed=3"


def test_names_keep_only_the_differing_values_and_are_folder_safe():
    raw = {"model": {"name": ["org/model a", "local\\dir"]}, "train": {"epochs": [2]}}
    assert names(raw) == ["name=org_model_a", "name=local_dir"]
    assert names({"train": {"epochs": [2]}}) == ["epochs=2"]  # a single value still names its run


def test_list_typed_fields_are_values_not_axes():
    raw = {
        "eval": {"metrics": ["ndcg@10", "mrr@10"], "systems": ["bm25"]},
        "index": {"approximate": []},
    }
    assert expand(raw, TASKS["retrieval"].schema) == [("", raw)]
    assert expand({"data": {"path": "x", "fields": ["name", "price"]}}, TASKS["pairs"].schema)[0][0] == ""


def test_a_list_of_lists_sweeps_a_list_typed_field():
    points = expand({"eval": {"metrics": [["ndcg@10"], ["mrr@10", "map"]]}}, TASKS["retrieval"].schema)
    assert [n for n, _ in points] == ["metrics=ndcg@10", "metrics=mrr@10+map"]
    assert points[1][1]["eval"]["metrics"] == ["mrr@10", "map"]


def test_load_sweep_validates_every_point_and_single_configs_give_one_unnamed_point():
    ((name, cfg),) = load_sweep(None, ["data.path=x", "train.epochs=3"])
    assert name == "" and cfg.train.epochs == 3
    points = load_sweep(None, ["data.path=x", "train.epochs=[1,2]", "eval.k=[5,10,20]"])
    assert len(points) == 6 and [c.eval.k for _, c in points[:3]] == [5, 10, 20]
    assert points[-1] == ("epochs=2,k=20", points[-1][1]) and points[-1][1].train.epochs == 2


def test_a_bad_value_in_one_grid_point_fails_naming_file_point_and_field(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("data:\n  path: x\ntrain:\n  batch_size: [8, 1]\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml \[batch_size=1\]: train\.batch_size: .*greater than or equal"):
        load_sweep(path)
    with pytest.raises(ConfigError, match=r"\[metrics=bleu\]: eval\.metrics"):
        load_sweep(None, ["data.path=x", "eval.metrics=[[ndcg@10],[bleu]]"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=[]", r"train\.epochs: an empty list sweeps nothing"),
        ("train.epochs=[1, 1]", r"several grid points would be named epochs=1"),
        ("task=[retrieval, pairs]", r"task: .* is not a task \(a sweep runs one task\)"),
    ],
)
def test_sweep_mistakes_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_sweep(None, [override])


def test_load_config_refuses_a_sweep_with_a_pointer():
    from simlab.tasks import load_config

    with pytest.raises(ConfigError, match=r"train\.epochs: a list of values makes this config a sweep"):
        load_config(None, ["train.epochs=[1,2]"])


# ----------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    from test_run_e2e import make_collection

    from simlab.data.beir import write_beir

    folder = tmp_path_factory.mktemp("toy") / "beir"
    write_beir(make_collection(), folder)
    return folder


def bm25_sweep(toy_dir: Path, *extra: str):
    """Three BM25-only runs (no model, no training): seconds in all."""
    base = [f"data.path={toy_dir}", "train.enabled=false", "eval.systems=[bm25]", "tracking.mlflow=false"]
    return load_sweep(None, [*base, "eval.k=[5,10,20]", *extra])


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """The folder names `run_experiment` is called with (it still runs)."""
    import simlab.experiments.runner as runner

    seen: list[str] = []
    real = runner.run_experiment

    def spy(cfg, out, overwrite=False):
        seen.append(Path(out).name)
        return real(cfg, out, overwrite)

    monkeypatch.setattr(runner, "run_experiment", spy)
    return seen


def test_sweep_runs_every_point_and_writes_sweep_json(toy_dir, tmp_path, calls):
    out = tmp_path / "sweep"
    summaries = run_sweep(bm25_sweep(toy_dir), out)
    assert calls == ["k=5", "k=10", "k=20"]
    assert [s.folder.name for s in summaries] == calls
    assert all((out / n / "meta.json").is_file() for n in calls)
    record = json.loads((out / "sweep.json").read_text())
    assert record["format"] == "simlab.sweep" and record["format_version"] == 1 and record["name"] == "sweep"
    assert record["axes"] == {"eval.k": [5, 10, 20]}
    assert [(r["name"], r["status"]) for r in record["runs"]] == [("k=5", "done"), ("k=10", "done"), ("k=20", "done")]
    assert all(r["metric"] == "bm25 ndcg@10" and 0 < r["value"] <= 1 for r in record["runs"])
    assert "mlflow_run_id" not in record
    assert render_sweep(out).splitlines()[0].split() == [
        "k=5",
        "done",
        "bm25",
        "ndcg@10",
        f"{summaries[0].metrics['bm25']['ndcg@10']:.4f}",
    ]


def test_resume_runs_only_the_unfinished_points(toy_dir, tmp_path, calls):
    out = tmp_path / "sweep"
    run_sweep(bm25_sweep(toy_dir), out)
    shutil.rmtree(out / "k=10")  # as if the sweep had been interrupted during this run
    calls.clear()
    summaries = run_sweep(bm25_sweep(toy_dir), out)
    assert calls == ["k=10"]
    record = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in record["runs"]] == ["skipped", "done", "skipped"]
    assert [s.metrics["bm25"]["ndcg@10"] for s in summaries] == [r["value"] for r in record["runs"]]
    calls.clear()
    run_sweep(bm25_sweep(toy_dir), out, overwrite=True)
    assert calls == ["k=5", "k=10", "k=20"]


def test_an_interrupted_sweep_says_so_and_resumes(toy_dir, tmp_path, monkeypatch):
    import simlab.experiments.runner as runner

    real, seen = runner.run_experiment, []

    def interrupted_at_second(cfg, out, overwrite=False):
        seen.append(Path(out).name)
        if seen == ["k=5", "k=10"]:  # Ctrl-C during the second run of the first attempt
            raise KeyboardInterrupt
        return real(cfg, out, overwrite)

    monkeypatch.setattr(runner, "run_experiment", interrupted_at_second)
    out = tmp_path / "sweep"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(bm25_sweep(toy_dir), out)
    record = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in record["runs"]] == ["done", "interrupted", "pending"]
    assert not (out / "k=10").exists()
    seen.clear()
    run_sweep(bm25_sweep(toy_dir), out)
    assert seen == ["k=10", "k=20"]


def test_a_finished_run_of_another_config_is_not_skipped_silently(toy_dir, tmp_path, calls):
    out = tmp_path / "sweep"
    run_sweep(bm25_sweep(toy_dir), out)
    calls.clear()
    with pytest.raises(RunFolderError, match=r"k=5 is a finished run of another config \(differs in eval\.rrf_k\)"):
        run_sweep(bm25_sweep(toy_dir, "eval.rrf_k=10"), out)
    assert calls == []  # refused before any run


def test_sweep_refuses_a_run_folder_and_a_foreign_folder(toy_dir, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "meta.json").write_text("{}")
    with pytest.raises(RunFolderError, match="is a run folder, not a sweep folder"):
        run_sweep(bm25_sweep(toy_dir), tmp_path / "run")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match=r"not a sweep folder \(no sweep.json\); choose another --out"):
        run_sweep(bm25_sweep(toy_dir), tmp_path / "other")


def test_compare_loads_every_run_of_the_sweep_folder(toy_dir, tmp_path):
    from simlab.experiments.compare import load_systems

    out = tmp_path / "sweep"
    run_sweep(bm25_sweep(toy_dir), out)
    assert list(load_systems([out])) == ["k=10/bm25", "k=20/bm25", "k=5/bm25"]


def test_sweep_is_an_mlflow_parent_run_with_child_runs(toy_dir, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "lr"
    points = load_sweep(
        None,
        [f"data.path={toy_dir}", "train.enabled=false", "eval.systems=[bm25]", f"tracking.uri={uri}", "eval.k=[5,10]"],
    )
    run_sweep(points, out)
    shutil.rmtree(out / "k=10")
    run_sweep(points, out)  # resumed: the same parent run gets the re-run child

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(points[0][1].name)
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.run_name == "lr" and parent.info.status == "FINISHED"
    assert parent.info.run_id == json.loads((out / "sweep.json").read_text())["mlflow_run_id"]
    assert parent.data.tags["simlab.sweep_axes"] == "eval.k"
    assert sorted(r.info.run_name for r in children) == ["k=10", "k=10", "k=5"]
    assert len(runs) == 4
    assert "bm25.ndcg_10" in children[0].data.metrics and children[0].data.params["eval.k"] in ("5", "10")
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["sweep.json"]


def test_cli_sweep_prints_one_line_per_run_and_the_compare_hint(toy_dir, tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "simlab", "run", str(Path(__file__).parents[1] / "examples" / "dense.yaml")]
    for setting in (f"data.path={toy_dir}", "train.enabled=false", "eval.systems=[bm25]", "tracking.mlflow=false"):
        cmd += ["--set", setting]
    proc = subprocess.run(
        [*cmd, "--set", "eval.k=[5,10]", "--set", "eval.rrf_k=[30,60]", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    runs = [line.split()[:2] for line in lines if line.startswith("k=")]
    assert runs == [[f"k={k},rrf_k={r}", "done"] for k in (5, 10) for r in (30, 60)]
    assert f"simlab compare {out}" in proc.stdout
    bad = subprocess.run(
        [*cmd, "--set", "train.batch_size=[8,1]", "--out", str(tmp_path / "bad")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "[batch_size=1]: train.batch_size" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_compare_reads_the_runs_of_an_mlflow_experiment(toy_dir, tmp_path):
    from typer.testing import CliRunner

    from simlab.cli import app
    from simlab.errors import RunFolderError

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "ksweep"
    base = [f"data.path={toy_dir}", "train.enabled=false", "eval.systems=[bm25]", f"tracking.uri={uri}"]
    run_sweep(load_sweep(None, [*base, "tracking.experiment=ks", "eval.k=[5,10]"]), out)
    compare = ["compare", "--baseline", "k=5", "--metrics", "ndcg@10"]
    from_folder = CliRunner().invoke(app, [*compare, str(out), "--json", str(tmp_path / "folder.json")])
    assert from_folder.exit_code == 0, from_folder.output
    shutil.rmtree(out)  # only the MLflow store is left
    store_args = ["ks", "--tracking-uri", uri, "--json", str(tmp_path / "store.json")]
    from_store = CliRunner().invoke(app, [*compare, *store_args])
    assert from_store.exit_code == 0, from_store.output
    folder, store = (json.loads((tmp_path / f).read_text()) for f in ("folder.json", "store.json"))
    assert store["systems"] == folder["systems"] == ["k=5/bm25", "k=10/bm25"]
    assert store["results"] == folder["results"]
    missing = CliRunner().invoke(app, ["compare", "nosuch", "--tracking-uri", uri])
    assert isinstance(missing.exception, RunFolderError) and "experiments: " in str(missing.exception)
    assert "ks" in str(missing.exception)


def test_compare_takes_an_experiment_name_over_a_folder_without_runs_from_any_folder(toy_dir, tmp_path, monkeypatch):
    """`simlab compare simlab` from the project root: the `simlab/` package folder holds no run, so the name is
    the MLflow experiment; a folder of that name that holds runs is taken as the folder; any cwd works."""
    from typer.testing import CliRunner

    from simlab.cli import app

    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    (tmp_path / "store").mkdir()
    base = [f"data.path={toy_dir}", "train.enabled=false", "eval.systems=[bm25]", f"tracking.uri={uri}"]
    run_sweep(load_sweep(None, [*base, "name=simlab", "eval.k=[5,10]"]), tmp_path / "sweep")
    project = tmp_path / "project"
    (project / "simlab").mkdir(parents=True)
    (project / "simlab" / "__init__.py").write_text("")
    monkeypatch.chdir(project)
    args = ["compare", "simlab", "--tracking-uri", uri, "--metrics", "ndcg@10", "--json"]
    got = CliRunner().invoke(app, [*args, str(tmp_path / "exp.json")])
    assert got.exit_code == 0, got.output
    assert json.loads((tmp_path / "exp.json").read_text())["systems"] == ["k=10/bm25", "k=5/bm25"]
    shutil.copytree(tmp_path / "sweep" / "k=5", project / "simlab" / "k=5")  # now the folder holds a run: it wins
    got = CliRunner().invoke(app, [*args, str(tmp_path / "folder.json")])
    assert got.exit_code == 0, got.output
    assert json.loads((tmp_path / "folder.json").read_text())["systems"] == ["bm25"]
