"""Ray as the distributed engine, on a real 2-node Ray cluster on 127.0.0.1 (a head and a worker node, 1 CPU each).

One cluster (`ray.cluster_utils.Cluster`, Ray's own multi-node test helper) serves the module; its teardown shuts
it down and checks that every Ray process it started is gone. `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` keeps the nodes
and the driver on loopback. The tests: a sweep spread over both nodes against the same points run locally;
Ray Data encoding against local encoding (dense and sparse, vectors and search results); a 2-worker Ray Train run
against the local 2-process DDP run; a worker node killed mid-sweep, then the rerun.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from test_sparse_model import sparse_cfg, tiny_mlm_dir  # noqa: F401 - fixture

from simlab import cluster
from simlab.errors import ConfigError
from simlab.tasks import load_config, load_sweep

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dense.yaml"


def bm25_only(toy_dir) -> list[str]:
    """Overrides for a run with no training and BM25 alone: a grid point that finishes in seconds."""
    return [
        f"data.path={toy_dir}",
        "train.enabled=false",
        "eval.systems=[bm25]",
        "eval.reference_models=[]",
        "tracking.mlflow=false",
    ]


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _alive(pids: set[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(pids: set[int], seconds: float = 30.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := _alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def _node_pids(node) -> set[int]:
    return {p.process.pid for infos in node.all_processes.values() for p in infos if p.process is not None}


class TwoNodes:
    """The running cluster: its head and worker node handles, and every pid it ever had."""

    def __init__(self):
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        self.worker = self.cluster.add_node(num_cpus=1)
        self.cluster.wait_for_nodes()
        cluster.connect(self.cluster.address)
        self.pids = self.ray_pids()

    def ray_pids(self) -> set[int]:
        return _descendants() | _node_pids(self.cluster.head_node) | _node_pids(self.worker)

    def worker_node_id(self) -> str:
        import ray

        head = ray.get_runtime_context().get_node_id()
        (other,) = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != head]
        return other


@pytest.fixture(scope="module")
def two_nodes():
    before = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every node and the driver on 127.0.0.1
    nodes = TwoNodes()
    try:
        yield nodes
    finally:
        pids = nodes.pids | nodes.ray_pids()
        cluster.disconnect()
        nodes.cluster.shutdown()
        if before is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = before
    assert pids, "no Ray process was seen"
    assert not _wait_gone(pids), f"Ray processes left behind: {_alive(pids)}"


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    from test_run_e2e import make_collection

    from simlab.data.beir import write_beir

    folder = tmp_path_factory.mktemp("toy") / "beir"
    write_beir(make_collection(), folder)
    return folder


def trained_sweep(toy_dir: Path, tmp_path: Path, *extra: str):
    """Four points that train wordllama for one epoch each (a few seconds a point)."""
    sets = [
        f"data.path={toy_dir}",
        "train.enabled=true",
        "train.epochs=1",
        "eval.systems=[bm25, trained]",
        "eval.reference_models=[]",
        "index.approximate=[]",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        "train.batch_size=[8,16]",
        "train.learning_rate=[0.05,0.2]",
        *extra,
    ]
    return load_sweep(None, sets)


def metrics_of(folder: Path) -> dict:
    from simlab.tasks.skeleton import read_metrics

    return read_metrics(folder / "metrics.json")[0]


def assert_same_metrics(a: dict, b: dict, tol: float = 1e-6) -> None:
    assert set(a) == set(b)
    for system in a:
        assert set(a[system]) == set(b[system]), system
        for metric, value in a[system].items():
            assert abs(value - b[system][metric]) <= tol, (system, metric, value, b[system][metric])


# ----------------------------------------------------------------------------- sweeps


def test_sweep_points_run_on_both_nodes_with_the_metrics_of_a_local_sweep(two_nodes, toy_dir, tmp_path):
    import mlflow

    from simlab.experiments.cluster_sweep import run_sweep_on_cluster
    from simlab.experiments.sweep import run_sweep

    points = trained_sweep(toy_dir, tmp_path)
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_sweep(points, local)
    summaries = run_sweep_on_cluster(points, remote, address=two_nodes.cluster.address)

    assert [s.folder.name for s in summaries] == [name for name, _ in points]
    record = json.loads((remote / "sweep.json").read_text())
    assert [r["status"] for r in record["runs"]] == ["done"] * 4
    assert len({r["node"] for r in record["runs"]}) == 2, "the points did not spread over both nodes"
    for name, _ in points:  # ordinary run folders, sent back to the driver, with the local metrics
        assert (remote / name / "model").is_dir() and (remote / name / "meta.json").is_file()
        assert_same_metrics(metrics_of(remote / name), metrics_of(local / name))

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(points[0][1].name)
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.info.run_id == record["mlflow_run_id"])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.run_name == "ray" and sorted(r.info.run_name for r in children) == sorted(n for n, _ in points)

    # resumed: every point finished, none runs again
    again = run_sweep_on_cluster(points, remote, address=two_nodes.cluster.address)
    assert [r["status"] for r in json.loads((remote / "sweep.json").read_text())["runs"]] == ["skipped"] * 4
    assert [s.metrics for s in again] == [s.metrics for s in summaries]


def test_a_failing_point_is_reported_and_the_others_finish(two_nodes, toy_dir, tmp_path):
    from simlab.experiments.cluster_sweep import PointsFailedError, run_sweep_on_cluster

    sets = bm25_only(toy_dir)
    points = load_sweep(None, [*sets, "data.test_split=[test,nosuch,dev]"])  # the 2nd fails once running
    with pytest.raises(PointsFailedError, match=r"1 of 3 grid points did not finish \(test_split=nosuch: failed\)"):
        run_sweep_on_cluster(points, tmp_path / "sweep", address=two_nodes.cluster.address)
    record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [r["status"] for r in record["runs"]] == ["done", "failed", "done"]
    assert "data.test_split: 'nosuch' is not a qrels split" in record["runs"][1]["error"]
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["sweep.json", "test_split=dev", "test_split=test"]


def test_the_cli_runs_a_sweep_on_the_cluster_with_a_line_per_point(two_nodes, toy_dir, tmp_path):
    out = tmp_path / "cli"
    sets = bm25_only(toy_dir)
    cmd = [sys.executable, "-m", "simlab", "run", str(EXAMPLE), "--out", str(out)]
    cmd += ["--cluster", two_nodes.cluster.address, *[a for s in [*sets, "eval.k=[5,10]"] for a in ("--set", s)]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("k=5", "k=10"):  # the driver's progress: start (with its node) and end of every point
        assert f"{name} running on node" in proc.stderr and f"{name} done bm25 ndcg@10" in proc.stderr
    table = [line.split() for line in proc.stdout.splitlines() if line.startswith("k=")]
    assert [(row[0], row[1]) for row in table] == [("k=5", "done"), ("k=10", "done")]
    assert f"Sweep folder: {out}" in proc.stdout and (out / "k=10" / "metrics.json").is_file()


def test_killing_the_worker_node_mid_sweep_reports_the_lost_points_and_a_rerun_finishes_them(
    two_nodes, toy_dir, tmp_path
):
    from simlab.experiments.cluster_sweep import PointsFailedError, run_sweep_on_cluster

    points = trained_sweep(toy_dir, tmp_path, "tracking.mlflow=false")  # a few seconds a point
    out = tmp_path / "sweep"
    worker_id = two_nodes.worker_node_id()
    outcome: dict = {}

    def sweep():
        try:
            outcome["summaries"] = run_sweep_on_cluster(points, out, address=two_nodes.cluster.address)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    def running_on_worker() -> bool:
        record = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").is_file() else {}
        return any(r["status"] == "running" and r.get("node") == worker_id for r in record.get("runs", []))

    thread = threading.Thread(target=sweep)
    thread.start()
    deadline = time.monotonic() + 120
    while not (seen := running_on_worker()) and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    worker_pids = _node_pids(two_nodes.worker)
    two_nodes.pids |= two_nodes.ray_pids()
    two_nodes.cluster.remove_node(two_nodes.worker)  # the worker node dies with its running point
    thread.join(timeout=300)
    gone = not _wait_gone(worker_pids)
    two_nodes.worker = two_nodes.cluster.add_node(num_cpus=1)  # the cluster whole again, for the rerun
    two_nodes.cluster.wait_for_nodes()
    two_nodes.pids |= two_nodes.ray_pids()
    assert seen, "no point was seen running on the worker node"
    assert not thread.is_alive(), "the sweep did not end after its node died"
    assert gone, "the killed node's processes are still alive"

    assert isinstance(outcome.get("error"), PointsFailedError), outcome
    record = json.loads((out / "sweep.json").read_text())
    lost = [r["name"] for r in record["runs"] if r["status"] == "lost"]
    assert lost and all(r["status"] in ("done", "lost") for r in record["runs"])
    assert all(f"{name}: lost" in str(outcome["error"]) for name in lost)
    assert all(not (out / name).exists() for name in lost)

    run_sweep_on_cluster(points, out, address=two_nodes.cluster.address)
    record = json.loads((out / "sweep.json").read_text())
    assert {r["name"]: r["status"] for r in record["runs"]} == {
        name: "done" if name in lost else "skipped" for name, _ in points
    }
    assert all((out / name / "metrics.json").is_file() for name, _ in points)


# ----------------------------------------------------------------------------- corpus encoding


def test_a_run_encoding_its_corpus_on_ray_builds_the_indexes_of_a_local_run(two_nodes, toy_dir, tmp_path):
    import faiss

    from simlab.experiments.runner import run_experiment

    sets = [
        f"data.path={toy_dir}",
        "train.epochs=1",
        "eval.systems=[trained]",
        "index.approximate=[hnsw]",
        "tracking.mlflow=false",
    ]
    local = run_experiment(load_config(None, sets), tmp_path / "local")
    on_ray = load_config(None, [*sets, "index.encode=ray", "index.ray.shard_rows=16", "index.ray.actors=2"])
    remote = run_experiment(on_ray, tmp_path / "ray")  # 60 documents in 4 blocks over 2 model actors

    assert_same_metrics(remote.metrics, local.metrics)
    assert set(remote.metrics) == {"trained.flat", "trained.hnsw"}
    vectors = []
    for run in ("local", "ray"):
        index = faiss.read_index(str(tmp_path / run / "indexes" / "trained.flat" / "index.faiss"))
        vectors.append(index.reconstruct_n(0, index.ntotal))
    assert vectors[0].shape == (60, 256) and np.abs(vectors[0] - vectors[1]).max() <= 1e-6
    for name in ("trained.flat.trec", "trained.hnsw.trec"):  # the same documents in the same order
        assert (tmp_path / "ray" / "runs" / name).read_text() == (tmp_path / "local" / "runs" / name).read_text()


def texts(n: int) -> list[str]:
    words = "boundary layer flow heat transfer supersonic wing pressure bread tyre telescope saturn".split()
    return [" ".join(words[(i * k) % len(words)] for k in range(1, 2 + i % 7)) + f" item {i}" for i in range(n)]


def test_sparse_encoding_on_ray_streams_shards_and_equals_local_encoding(two_nodes, tiny_mlm_dir, tmp_path):  # noqa: F811
    from simlab.config.retrieval import RayEncodeConfig
    from simlab.index.ray_encode import encode_on_ray
    from simlab.models.sparse import encode_sparse, load_sparse_model

    splade = load_sparse_model(sparse_cfg(tiny_mlm_dir))
    docs = texts(600)
    shards = tmp_path / "shards"
    settings = RayEncodeConfig(shard_rows=100, batch_size=50, actors=2)
    remote = encode_on_ray(splade, docs, "document", sparse=True, settings=settings, shard_dir=shards)
    local = encode_sparse(splade, docs, "document")
    assert len(list(shards.glob("shard-*.npz"))) == 6  # one on-disk shard per 100-text block
    assert remote.shape == local.shape and remote.nnz > 0
    assert abs(remote - local).max() <= 1e-6
    queries = encode_sparse(splade, texts(20)[::-1], "query")
    top = [np.argsort(-(queries @ m.T).toarray(), axis=1, kind="stable")[:, :10] for m in (remote, local)]
    assert np.array_equal(top[0], top[1])


# ----------------------------------------------------------------------------- training


def test_ray_train_on_two_workers_matches_the_local_two_process_ddp_run(two_nodes, toy_dir, tmp_path):
    from simlab.experiments.cluster_train import run_with_ray_train

    sets = [
        f"data.path={toy_dir}",
        "train.enabled=true",
        "train.epochs=1",
        "train.batch_size=8",
        "train.hard_negatives.source=bm25",
        "eval.systems=[bm25, trained]",
        "eval.reference_models=[]",
        "index.approximate=[]",
        "tracking.mlflow=false",
    ]
    cmd = [sys.executable, "-m", "simlab", "run", str(EXAMPLE), "--out", str(tmp_path / "ddp"), "--nproc", "2"]
    cmd += [arg for s in sets for arg in ("--set", s)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=540, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    summary = run_with_ray_train(load_config(EXAMPLE, sets), tmp_path / "raytrain", workers=2)
    out = tmp_path / "raytrain"
    assert summary.folder == out.resolve() and not list(tmp_path.glob(".raytrain*"))
    notes = json.loads((out / "meta.json").read_text())["notes"]
    assert any(n.startswith("Trained on 2 processes") and "global batch 16" in n for n in notes), notes
    assert_same_metrics(metrics_of(out), metrics_of(tmp_path / "ddp"))
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    local_history = [json.loads(line) for line in (tmp_path / "ddp" / "history.jsonl").read_text().splitlines()]
    assert len(history) == len(local_history) == 1
    assert abs(history[0]["train_loss"] - local_history[0]["train_loss"]) <= 1e-6


def test_a_killed_ray_train_run_resumes_to_the_numbers_of_an_uninterrupted_one(two_nodes, toy_dir, tmp_path):
    from simlab.experiments.cluster_train import run_with_ray_train

    sets = [
        f"data.path={toy_dir}",
        "train.enabled=true",
        "train.epochs=4",
        "train.batch_size=8",
        "eval.systems=[bm25, trained]",
        "eval.reference_models=[]",
        "index.approximate=[]",
        "tracking.mlflow=false",
    ]
    whole = run_with_ray_train(load_config(EXAMPLE, sets), tmp_path / "whole", workers=2)

    out, checkpoints = tmp_path / "killed", tmp_path / ".killed.checkpoints"
    cmd = [sys.executable, "-m", "simlab", "run", str(EXAMPLE), "--out", str(out), "--nproc", "2"]
    cmd += ["--cluster", two_nodes.cluster.address, *[a for s in sets for a in ("--set", s)]]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not any(checkpoints.glob("**/trainer_state.json")):
        assert driver.poll() is None, f"finished before a kill: {driver.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    driver.kill()  # the driver dies; Ray stops its job's workers
    driver.wait()
    two_nodes.pids |= two_nodes.ray_pids()
    assert not out.exists()

    resumed = run_with_ray_train(load_config(EXAMPLE, [*sets, "train.resume=true"]), out, workers=2)
    meta = json.loads((out / "meta.json").read_text())
    assert 1 <= meta["resumed_from"]["epoch"] < 4
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert_same_metrics(metrics_of(out), metrics_of(tmp_path / "whole"))
    assert whole.metrics.keys() == resumed.metrics.keys() and not checkpoints.exists()


# ----------------------------------------------------------------------------- without Ray


def test_cluster_without_ray_says_how_to_install_it(tmp_path):
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "simlab", "run", str(EXAMPLE), "--out", str(tmp_path / "run"), "--cluster", "auto"]
    proc = subprocess.run(cmd + ["--set", "data.path=x"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert 'pip install "simlab[ray]"' in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_cluster_address_nobody_answers_at_is_one_clear_error_at_once(tmp_path):
    import socket

    with socket.socket() as free:  # a port nothing listens at
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cmd = [sys.executable, "-m", "simlab", "run", str(EXAMPLE), "--out", str(tmp_path / "run")]
    proc = subprocess.run(cmd + ["--cluster", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"no Ray cluster answered at '127.0.0.1:{port}'" in proc.stderr and "ray start --head" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="not a cluster address"):
        cluster.check_reachable("head:port")


def test_a_local_run_never_imports_ray(toy_dir, tmp_path):
    code = (
        "import sys; from simlab.experiments.runner import run_experiment; from simlab.tasks import load_config; "
        f"cfg = load_config(None, ['data.path={toy_dir}', 'train.enabled=false', 'eval.systems=[bm25, zeroshot]', "
        "'index.approximate=[hnsw]', 'tracking.mlflow=false']); "
        f"run_experiment(cfg, {str(tmp_path / 'run')!r}); assert 'ray' not in sys.modules, 'ray was imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file()
