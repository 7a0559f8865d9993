"""`simlab serve` and `simlab ui` stop with all their processes on SIGINT and SIGTERM (checked by pid)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 120) -> int | None:
    """The HTTP status of `url` once it answers (None if `proc` ended or time ran out first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status
        except OSError:
            time.sleep(0.3)
    return None


def tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def stop_and_check(proc: subprocess.Popen, pids: list[int], sig: int, port: int) -> None:
    try:
        os.kill(proc.pid, sig)  # the simlab process only, as a terminal's Ctrl-C or a service manager would
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [p for p in pids if alive(p)] == [], "processes left after the stop"
        assert port_closed(port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in pids:  # never leave a worker behind, even when the test failed
            if alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.fixture(scope="module")
def bm25_run(tmp_path_factory) -> Path:
    from test_run_e2e import make_collection

    from simlab.data.beir import write_beir
    from simlab.experiments.runner import run_experiment
    from simlab.tasks import load_config

    tmp = tmp_path_factory.mktemp("bm25")
    write_beir(make_collection(), tmp / "beir")
    cfg = load_config(None, [f"data.path={tmp / 'beir'}", "eval.systems=[bm25]", "tracking.mlflow=false"])
    run_experiment(cfg, tmp / "run")
    return tmp / "run"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_cleanly_with_all_its_processes(bm25_run, tmp_path, sig):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simlab", "serve", str(bm25_run), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            start_new_session=True,
        )
    assert wait_for(f"http://127.0.0.1:{port}/health", proc) == 200, log.read_text()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/search?q=boundary+layer&k=2&system=bm25") as r:
        assert r.status == 200
    stop_and_check(proc, tree(proc.pid), sig, port)
    assert proc.returncode == 0, log.read_text()
    assert f"stopped on {signal.Signals(sig).name}" in log.read_text()


def test_ui_stops_its_mlflow_workers(tmp_path, sig=signal.SIGTERM):
    """SIGTERM to `simlab ui` alone (SIGINT takes the same handler, `run_ui`'s `stop`)."""
    port = free_port()
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simlab", "ui", "--uri", f"sqlite:///{tmp_path}/mlflow.db", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            start_new_session=True,
        )
    assert wait_for(f"http://127.0.0.1:{port}/", proc) == 200, log.read_text()
    pids = tree(proc.pid)
    assert len(pids) >= 2  # simlab and the MLflow server (with its workers): what used to outlive simlab
    stop_and_check(proc, pids, sig, port)
    assert proc.returncode == 0, log.read_text()
