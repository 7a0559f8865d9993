"""Nothing a user owns is deleted, two writers never share a folder, and an interrupted run leaves nothing.

`--overwrite` replaces only a folder simlab wrote (its `.simlab-files` manifest lists every file)
and never the input; a second run into the same `--out` fails at once; the partial folders of
a killed run are removed by the next run into that `--out`; Ctrl-C says what was kept.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simlab.cli import app
from simlab.errors import RunFolderError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
FAST = ["--set", "eval.systems=[bm25]", "--set", "tracking.mlflow=false"]


def _run(out: Path, data: Path = DEMO, *extra: str):
    args = ["run", str(ROOT / "examples" / "dense.yaml"), "--out", str(out), "--set", f"data.path={data}"]
    return CliRunner().invoke(app, [*args, *FAST, *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def data(tmp_path) -> Path:
    shutil.copytree(DEMO, tmp_path / "data")
    return tmp_path / "data"


def test_overwrite_never_deletes_the_input(data):
    before = _snapshot(data)
    for out in (data, data.parent):  # the input itself, and a folder holding it
        result = _run(out, data, "--overwrite")
        assert isinstance(result.exception, RunFolderError) and result.exception.exit_code == 2
        assert "holds, the input" in str(result.exception)
    assert _snapshot(data) == before


def test_overwrite_refuses_a_folder_simlab_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    result = _run(mine, DEMO, "--overwrite")
    assert isinstance(result.exception, RunFolderError) and "was not written by simlab" in str(result.exception)
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert not list(tmp_path.glob(".mine.*")), "nothing new beside it either"


def test_overwrite_keeps_a_user_file_inside_a_run_folder_and_replaces_a_clean_one(tmp_path):
    out = tmp_path / "run"
    assert _run(out).exit_code == 0
    assert (out / ".simlab-files").is_file() and "meta.json" in (out / ".simlab-files").read_text()
    (out / "notes.txt").write_text("my notes")
    result = _run(out, DEMO, "--overwrite")
    assert isinstance(result.exception, RunFolderError)
    assert "holds files simlab did not write: notes.txt" in str(result.exception)
    assert (out / "notes.txt").read_text() == "my notes"
    (out / "notes.txt").unlink()
    first = json.loads((out / "meta.json").read_text())["seconds"]
    assert _run(out, DEMO, "--overwrite").exit_code == 0  # a folder simlab wrote, and nothing else: replaced
    assert (out / "meta.json").is_file() and json.loads((out / "meta.json").read_text())["seconds"] >= 0 <= first


def test_data_convert_overwrite_never_deletes_the_source(tmp_path):
    src = tmp_path / "cran"
    src.mkdir()
    (src / "cran.all.1400").write_text(".I 1\n.T\nt\n.W\nw\n")
    before = _snapshot(src)
    result = CliRunner().invoke(app, ["data", "convert", "glasgow", str(src), "--out", str(src), "--overwrite"])
    assert isinstance(result.exception, RunFolderError) and "holds, the input" in str(result.exception)
    assert _snapshot(src) == before


def test_a_live_lock_refuses_at_once_and_a_dead_ones_is_taken_over(tmp_path):
    import socket

    out = tmp_path / "run"
    lock = tmp_path / ".run.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "2026-01-01 10:00:00"}))
    result = _run(out)
    assert isinstance(result.exception, RunFolderError) and result.exception.exit_code == 2
    assert f"another simlab process (pid {os.getpid()}, started 2026-01-01 10:00:00)" in str(result.exception)
    assert not out.exists() and lock.exists()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock.write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "started": "2026-01-01 10:00:00"}))
    assert _run(out).exit_code == 0
    assert (out / "meta.json").is_file() and not lock.exists()


def test_partial_folders_of_a_killed_run_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    partial = tmp_path / ".run.partial-dead1234"
    (partial / "model").mkdir(parents=True)
    (partial / "model" / "weights.bin").write_bytes(b"0" * 1000)
    assert _run(out).exit_code == 0
    assert not partial.exists() and (out / "meta.json").is_file()


def _cli(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "simlab", "run", str(ROOT / "examples" / "dense.yaml"), "--out", str(out)]
    cmd += ["--set", f"data.path={DEMO}", "--set", "tracking.mlflow=false", "--set", "train.epochs=20", *extra]
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.1)


def test_two_runs_into_one_out_the_second_fails_at_once_and_ctrl_c_keeps_nothing(tmp_path):
    out = tmp_path / "run"
    first = _cli(out)
    try:
        _wait_for(tmp_path / ".run.lock", first)
        second = subprocess.run(
            [sys.executable, "-m", "simlab", "run", str(ROOT / "examples" / "dense.yaml"), "--out", str(out),
             "--set", f"data.path={DEMO}", "--set", "tracking.mlflow=false"],
            capture_output=True, text=True, timeout=120, env=os.environ | {"HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert f"being written by another simlab process (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, err
    assert "interrupted: the unfinished run folder was not kept" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".run*")), list(tmp_path.iterdir())


def test_an_empty_query_is_refused(tmp_path):
    from simlab.errors import DataError

    out = tmp_path / "run"
    assert _run(out).exit_code == 0
    result = CliRunner().invoke(app, ["search", str(out), "  "])
    assert isinstance(result.exception, DataError) and result.exception.exit_code == 2
    assert "the query is empty" in str(result.exception)


def _toy_collection(tmp_path: Path) -> Path:
    from test_run_e2e import make_collection

    from simlab.data.beir import write_beir

    write_beir(make_collection(), tmp_path / "beir")
    return tmp_path / "beir"


def _dense_args(data: Path) -> list[str]:
    sets = [f"data.path={data}", "train.epochs=3", "train.batch_size=8", "eval.systems=[trained]"]
    sets += ["index.approximate=[]", "tracking.mlflow=false", "train.hard_negatives.source=none"]
    return [arg for s in sets for arg in ("--set", s)]


def test_a_checkpoint_cut_off_while_saving_is_never_resumed_from(tmp_path):
    from simlab.errors import ConfigError
    from simlab.training.trainer import resume_checkpoint

    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-4").mkdir()  # killed while saving: weights written, trainer_state.json not yet
    (tmp_path / "checkpoint-4" / "model.safetensors").write_bytes(b"partial")
    assert resume_checkpoint(True, tmp_path) == str(tmp_path / "checkpoint-2")
    assert not (tmp_path / "checkpoint-4").exists()
    assert resume_checkpoint(False, tmp_path) is None
    shutil.rmtree(tmp_path / "checkpoint-2")
    with pytest.raises(ConfigError, match="holds no complete checkpoint"):
        resume_checkpoint(True, tmp_path)


def test_a_changed_model_or_index_file_is_refused_before_use(tmp_path):
    data = _toy_collection(tmp_path)
    out = tmp_path / "run"
    args = ["run", str(ROOT / "examples" / "dense.yaml"), "--out", str(out), *_dense_args(data)]
    assert CliRunner().invoke(app, [*args, "--set", "train.epochs=1"]).exit_code == 0
    manifest = (out / ".simlab-files").read_text()
    assert "  model/" in manifest and "  indexes/trained.flat/index.faiss" in manifest and "  meta.json" in manifest
    assert CliRunner().invoke(app, ["search", str(out), "compost"]).exit_code == 0
    index = out / "indexes" / "trained.flat" / "index.faiss"
    index.write_bytes(index.read_bytes()[:100])  # truncated
    result = CliRunner().invoke(app, ["search", str(out), "compost"])
    assert isinstance(result.exception, RunFolderError) and result.exception.exit_code == 2
    assert "indexes/trained.flat/index.faiss (changed)" in str(result.exception)
    sha = shutil.which("sha256sum")
    if sha:  # the manifest is sha256sum's format: other tools check it too
        check = subprocess.run([sha, "-c", "--quiet", ".simlab-files"], cwd=out, capture_output=True, text=True)
        assert check.returncode != 0 and "index.faiss: FAILED" in check.stdout


def test_every_grid_point_is_checked_before_the_first_one_runs(tmp_path):
    from simlab.errors import DataError, ModelLoadError

    sweep = ["run", str(ROOT / "examples" / "dense.yaml"), "--out", str(tmp_path / "sweep"), *FAST]
    result = CliRunner().invoke(app, [*sweep, "--set", f"data.path=[{DEMO},{tmp_path / 'nowhere'}]"])
    assert isinstance(result.exception, DataError) and result.exception.exit_code == 2
    assert f"data.path: {tmp_path / 'nowhere'}: no such file or folder" in str(result.exception)
    result = CliRunner().invoke(
        app, [*sweep, "--set", f"data.path={DEMO}", "--set", "model.name=[wordllama,./my-model]"]
    )
    assert isinstance(result.exception, ModelLoadError) and "model.name: ./my-model: no such folder" in str(
        result.exception
    )
    assert not (tmp_path / "sweep").exists() or not any((tmp_path / "sweep").iterdir())


def test_a_full_disk_is_one_clear_error_and_keeps_nothing(tmp_path, monkeypatch, capsys):
    import errno

    import simlab.fsutil
    from simlab.cli import main

    real = simlab.fsutil.write_bytes

    def full(path, data):
        if Path(path).name == "metrics.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(simlab.fsutil, "write_bytes", full)
    argv = ["simlab", "run", str(ROOT / "examples" / "dense.yaml"), "--out", str(tmp_path / "run"), *FAST]
    monkeypatch.setattr(sys, "argv", [*argv, "--set", f"data.path={DEMO}"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error: no space left on the device writing" in err and "metrics.json" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_a_missing_triples_file_is_refused_before_any_stage(tmp_path):
    from simlab.errors import ConfigError

    data = _toy_collection(tmp_path)
    sets = [f"data.path={data}", "model.kind=sparse", "model.name=bert-mlm-scratch", "data.triples=nope.tsv"]
    sets += ["tracking.mlflow=false", "index.sparse_approximate=[]"]
    args = ["run", str(ROOT / "examples" / "splade.yaml"), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, *[a for s in sets for a in ("--set", s)]])
    assert isinstance(result.exception, ConfigError) and f"data.triples: {data / 'nope.tsv'}: no such file" in str(
        result.exception
    )
    assert "BM25 over" not in result.output and not (tmp_path / "run").exists()


def test_a_huge_document_is_named_in_the_log_and_the_notes(tmp_path, monkeypatch):
    import simlab.tasks.retrieval.run as retrieval_run

    monkeypatch.setattr(retrieval_run, "HUGE_DOCUMENT", 200)  # the demo's longest documents, not 1 MB of test data
    out = tmp_path / "run"
    assert _run(out).exit_code == 0
    notes = json.loads((out / "meta.json").read_text())["notes"]
    assert any("document(s) of demo hold over 200 characters (the largest," in n for n in notes), notes


def test_match_never_writes_over_an_input_or_an_existing_file(tmp_path):
    from test_pairs_run import grouped_overrides, write_records

    write_records(tmp_path / "records.csv")
    sets = [*grouped_overrides(tmp_path), "train.epochs=1"]
    run = ["run", str(ROOT / "examples" / "matching.yaml"), "--out", str(tmp_path / "run")]
    assert CliRunner().invoke(app, [*run, *[a for s in sets for a in ("--set", s)]]).exit_code == 0
    table = tmp_path / "records.csv"
    before = table.read_bytes()
    match = ["match", str(tmp_path / "run"), "--left", str(table), "--right", str(table)]
    result = CliRunner().invoke(app, [*match, "--out", str(table), "--overwrite"])
    assert isinstance(result.exception, RunFolderError) and "is an input of this command" in str(result.exception)
    (tmp_path / "mine.csv").write_text("my file")
    result = CliRunner().invoke(app, [*match, "--out", str(tmp_path / "mine.csv")])
    assert isinstance(result.exception, RunFolderError) and "already exists" in str(result.exception)
    assert table.read_bytes() == before and (tmp_path / "mine.csv").read_text() == "my file"
