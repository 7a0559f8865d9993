"""ClearML through the trainer's `report_to`, in ClearML's offline mode (no server needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_clearml_offline_session_records_the_training(tmp_path):
    pytest.importorskip("clearml", reason="clearml is not installed (pip install clearml)")
    env = os.environ | {"HOME": str(tmp_path), "CLEARML_OFFLINE_MODE": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("CLEARML_LOG_MODEL", None)
    sets = ["train.epochs=1", "train.report_to=[clearml]", "tracking.mlflow=false", f"data.path={EXAMPLES / 'demo'}"]
    cmd = [sys.executable, "-m", "simlab", "run", str(EXAMPLES / "dense.yaml"), "--out", str(tmp_path / "run")]
    proc = subprocess.run(
        [*cmd, *[a for s in sets for a in ("--set", s)]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file()
    sessions = list((tmp_path / ".clearml" / "cache" / "offline").glob("offline-*/metrics.jsonl"))
    assert len(sessions) == 1, "one offline ClearML session"
    events = [e for line in sessions[0].read_text().splitlines() for e in json.loads(line)]
    assert any(e["metric"] == "train" and e["variant"] == "loss" for e in events)
    assert any(e["metric"] == "eval" for e in events), "the per-epoch dev evaluation reaches ClearML"
