"""`simlab run --nproc 2`: training on two CPU processes (PyTorch DDP, gloo) through the HF trainer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from simlab.tasks.skeleton import read_metrics

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dense.yaml"


def test_run_on_two_processes(tmp_path):
    from sentence_transformers import SentenceTransformer
    from test_run_e2e import make_collection

    from simlab.data.beir import write_beir

    data = tmp_path / "beir"
    write_beir(make_collection(), data)
    runs = tmp_path / "runs"
    out = runs / "ddp"
    sets = [
        f"data.path={data}",
        "train.enabled=true",
        "train.epochs=1",
        "train.batch_size=8",
        "train.hard_negatives.source=bm25",
        "eval.systems=[bm25, trained]",
        "eval.reference_models=[]",
        "index.approximate=[]",
        "tracking.mlflow=false",
    ]
    cmd = [sys.executable, "-m", "simlab", "run", str(EXAMPLE), "--out", str(out), "--nproc", "2"]
    cmd += [arg for s in sets for arg in ("--set", s)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=540, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # one run folder, nothing partial, no checkpoints left beside it
    assert sorted(p.name for p in runs.iterdir()) == ["ddp"]
    assert not list(out.rglob(".checkpoints"))
    metrics = read_metrics(out / "metrics.json")[0]
    assert set(metrics) == {"bm25", "trained.flat"}
    assert proc.stdout.count("Run folder:") == 1  # rank 0 alone reports

    # 2 processes x 8 per process: each anchor sees 15 other positives + 16 hard negatives
    notes = json.loads((out / "meta.json").read_text())["notes"]
    ddp_note = next(n for n in notes if n.startswith("Trained on 2 processes"))
    assert "global batch 16" in ddp_note and "31.0 negatives per query" in ddp_note
    assert ddp_note in (out / "report.md").read_text()

    model = SentenceTransformer(str(out / "model"), device="cpu")
    assert model.encode(["bike chain brake"]).shape[0] == 1
