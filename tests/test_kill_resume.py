"""A run SIGKILLed during training resumes, with `train.resume: true`, to the numbers of an uninterrupted run.

For every trainable task kind: the uninterrupted run is made in this process; the same config runs in
a `simlab run` subprocess that is killed (SIGKILL, no clean-up of any kind) once it has saved a state to
resume from, at a random moment after that; the rerun with `train.resume=true` must give the same test
metrics (1e-6), a history of every epoch, a meta.json saying it resumed, and leave no partial folder.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_sparse_model import tiny_mlm_dir  # noqa: F401  (a fixture: a saved tiny MLM, the same in every process)
from test_tasks_e2e import SETUPS

from simlab.experiments.runner import run_experiment
from simlab.tasks import load_config

EPOCHS = {"retrieval": 4, "sparse": 4, "pairs": 4, "definitions": 80, "multilabel": 8}


def _overrides(task: str, tmp: Path, mlm: Path) -> list[str]:
    sets = [*SETUPS[task](tmp), "tracking.mlflow=false", f"train.epochs={EPOCHS[task]}"]
    if task == "sparse":
        sets += [f"model.name={mlm}", "train.batch_size=4"]
    if task == "multilabel":
        sets.append("train.max_steps=6")
    return [s for s in sets if not s.startswith("model.sparse.scratch") and s != "model.name=bert-mlm-scratch"]


def _resumable(folder: Path) -> bool:
    return any(folder.glob("**/trainer_state.json")) or any(folder.glob("**/loop-state.pt"))


@pytest.mark.parametrize("task", list(EPOCHS))
def test_a_killed_run_resumes_to_the_uninterrupted_numbers(task, tmp_path, tiny_mlm_dir):  # noqa: F811
    sets = _overrides(task, tmp_path, tiny_mlm_dir)
    whole = run_experiment(load_config(None, sets), tmp_path / "whole")

    (tmp_path / "empty.yaml").write_text("{}\n")
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "simlab", "run", str(tmp_path / "empty.yaml"), "--out", str(out)]
    cmd += [arg for s in sets for arg in ("--set", s)]
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    checkpoints = tmp_path / ".killed.checkpoints"
    end = time.monotonic() + 300
    while not _resumable(checkpoints):
        assert proc.poll() is None, f"finished before a kill: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < end
        time.sleep(0.005)
    time.sleep(random.Random(task).uniform(0, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it was killed"
    assert not out.exists()
    if task == "retrieval":  # a resume may change the number of epochs, nothing else
        from simlab.errors import ConfigError

        with pytest.raises(ConfigError, match=r"train.resume: the interrupted run .* \(train.learning_rate differ\)"):
            run_experiment(load_config(None, [*sets, "train.resume=true", "train.learning_rate=0.3"]), out)

    resumed = run_experiment(load_config(None, [*sets, "train.resume=true"]), out)
    meta = json.loads((out / "meta.json").read_text())
    assert 1 <= meta["resumed_from"]["epoch"] < EPOCHS[task]
    assert [h["epoch"] for h in resumed.history] == list(range(1, EPOCHS[task] + 1))
    for system in whole.metrics:
        assert resumed.metrics[system] == pytest.approx(whole.metrics[system], abs=1e-6), system
    assert not checkpoints.exists() and not list(tmp_path.glob(".killed.*"))


def test_a_run_killed_while_it_saves_a_checkpoint_resumes_from_the_one_before(tmp_path, tiny_mlm_dir):  # noqa: F811
    """SIGKILL while the trainer writes a checkpoint (its folder exists, trainer_state.json not yet): the cut-off
    checkpoint is never used, the run resumes from the complete one before it, to the uninterrupted numbers."""
    sets = _overrides("retrieval", tmp_path, tiny_mlm_dir)
    whole = run_experiment(load_config(None, sets), tmp_path / "whole")
    (tmp_path / "empty.yaml").write_text("{}\n")
    out, checkpoints = tmp_path / "killed", tmp_path / ".killed.checkpoints"
    cmd = [sys.executable, "-m", "simlab", "run", str(tmp_path / "empty.yaml"), "--out", str(out)]
    cmd += [arg for s in sets for arg in ("--set", s)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ)
    end = time.monotonic() + 300
    while True:  # a complete checkpoint, and the next one being written
        done = [p for p in checkpoints.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
        writing = [p for p in checkpoints.glob("checkpoint-*") if not (p / "trainer_state.json").is_file()]
        if done and writing:
            proc.send_signal(signal.SIGKILL)
            break
        assert proc.poll() is None, "finished before a kill during a save"
        assert time.monotonic() < end
        time.sleep(0.002)
    proc.wait()
    cut = [p for p in checkpoints.glob("checkpoint-*") if not (p / "trainer_state.json").is_file()]
    assert cut, "the kill came after the save had finished"
    resumed = run_experiment(load_config(None, [*sets, "train.resume=true"]), out)
    assert Path(resumed.meta["resumed_from"]["checkpoint"]).name not in {p.name for p in cut}
    assert [h["epoch"] for h in resumed.history] == list(range(1, EPOCHS["retrieval"] + 1))
    for system in whole.metrics:
        assert resumed.metrics[system] == pytest.approx(whole.metrics[system], abs=1e-6), system
