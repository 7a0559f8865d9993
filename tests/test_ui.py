"""`simlab ui` serves the MLflow UI of the local store on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

from simlab.experiments.tracking import ui_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_command_binds_loopback_only():
    cmd = ui_command("sqlite:///x.db", 5123)
    assert cmd[1:4] == ["-m", "mlflow", "ui"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5123"
    assert cmd[cmd.index("--backend-store-uri") + 1] == "sqlite:///x.db"


def test_simlab_ui_answers_on_loopback(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "simlab", "ui", "--uri", f"sqlite:///{tmp_path}/mlflow.db", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and status is None and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    status = r.status
            except OSError:
                time.sleep(0.5)
        assert status == 200
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
