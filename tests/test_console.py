"""What a run writes to a log file: epoch lines and tables, no progress-bar fragments, escape codes or library noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOISE = (
    "\r",
    "\x1b[",
    "it/s]",
    "Computing widget",
    "[transformers]",
    "Loading weights",
    "Traceback",
    "{'loss'",  # the trainer's log dicts (its PrinterCallback when the progress bar is off)
    "'grad_norm'",
    "Downloading artifacts",
    "Configuration {",  # Seismic's own prints
)


def _piped(*argv: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")} | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "simlab", *argv], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_make_demo_piped_to_a_file_is_clean(tmp_path):
    log = _piped("demo", "--out", str(tmp_path / "demo"))
    assert "[dev] Epoch 3 - loss" in log and "dense-demo: 30 test queries" in log
    assert not [n for n in NOISE if n in log], [n for n in NOISE if n in log]


def test_a_multilabel_run_piped_writes_one_line_per_epoch(tmp_path):
    from simlab.data.loader import convert

    convert("demo-topics", None, tmp_path / "topics")
    config = ROOT / "examples" / "multilabel-text.yaml"
    sets = [f"data.path={tmp_path / 'topics' / 'texts.jsonl'}", "train.epochs=2", "tracking.mlflow=false"]
    log = _piped("run", str(config), "--out", str(tmp_path / "run"), *[a for s in sets for a in ("--set", s)])
    assert log.count("[val] Epoch") == 2
    assert not [n for n in NOISE if n in log], [n for n in NOISE if n in log]
