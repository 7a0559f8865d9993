"""MLflow tracking: every run folder is also an MLflow run.

Logged from the finished run folder: the resolved config as flattened params, per-epoch
dev metrics with the epoch as step, final metrics as `<system>.<metric>`, and the run
folder's report, metrics and config as artifacts. The store is `tracking.uri`
(`sqlite:///mlflow.db` by default; MLflow 3's plain `./mlruns` file store needs
`MLFLOW_ALLOW_FILE_STORE=true`). The runs of a sweep are children of the sweep's run.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from simlab.config.loading import flat

if TYPE_CHECKING:
    from simlab.tasks.base import RunSummary


def git_commit(folder: Path) -> str:
    """The git commit checked out in `folder` (with `+dirty` for uncommitted changes), or "unknown"."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def data_checksum(path: Path) -> str:
    """sha256 over the relative paths and contents of every file under `path` (or of the file itself)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _metric_key(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", text)  # MLflow forbids '@' in metric names


RUN_ARTIFACTS = (
    "meta.json",
    "config.yaml",
    "metrics.json",
    "perquery.tsv",
    "speed.json",
    "history.jsonl",
    "report.md",
    "curves.png",
    "per_label.json",
    "thresholds.json",
    "cost.json",
)
"""The run folder's files logged as MLflow artifacts: enough for `simlab compare` to read a
run back from the store (`runs_from_mlflow`); the model and indexes stay in the folder."""


def log_run(summary: RunSummary, parent_run_id: str | None = None) -> str:
    """Log the run to MLflow and return the MLflow run id.

    Args:
        summary: The finished run.
        parent_run_id: Log the run as a child of this MLflow run. Default: a child of the
            active MLflow run if there is one (a sweep keeps its parent run active while its
            runs log themselves), else a top-level run.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    cfg = summary.config
    mlflow.set_tracking_uri(cfg.tracking.uri)
    mlflow.set_experiment(cfg.experiment_name)
    with mlflow.start_run(run_name=summary.folder.name, nested=True, parent_run_id=parent_run_id) as run:
        mlflow.log_params({k: str(v) for k, v in flat(cfg.model_dump(mode="json")).items()})
        mlflow.set_tags(
            {
                "simlab.run_folder": str(summary.folder.resolve()),
                "simlab.git_commit": git_commit(Path(__file__).resolve().parent),
                "simlab.data_checksum": data_checksum(Path(cfg.data.path)),
            }
        )
        for h in summary.history:
            step = int(h["epoch"])
            mlflow.log_metrics(
                {_metric_key(k): float(v) for k, v in h.items() if k != "epoch" and v is not None}, step=step
            )
        mlflow.log_metrics(
            {_metric_key(f"{system}.{m}"): v for system, ms in summary.metrics.items() for m, v in ms.items()}
        )
        for name in RUN_ARTIFACTS:
            path = summary.folder / name
            if path.exists():
                mlflow.log_artifact(str(path))
        return run.info.run_id


def ui_command(uri: str, port: int) -> list[str]:
    """The `mlflow ui` command line for `simlab ui`: the given store, bound to loopback only."""
    import sys

    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


STOP_GRACE_SECONDS = 5.0
"""How long `run_ui` waits for the UI's processes after SIGTERM before it kills them."""


def run_ui(uri: str, port: int) -> int:
    """Run the MLflow UI (`ui_command`) until it exits or this process gets SIGINT or SIGTERM; return its exit code.

    `mlflow ui` starts a server with worker processes of its own. They are started in a session
    (and process group) of their own, and on SIGINT or SIGTERM the whole group is stopped:
    SIGTERM, then SIGKILL for what is left after `STOP_GRACE_SECONDS`. So stopping `simlab ui`
    leaves no worker serving the port.
    """
    import signal
    import sys
    import time

    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(ui_command(uri, port), env=env, start_new_session=True)
    stop_by: list[float] = []  # the time by which the group must be gone, once a signal came

    def stop(signum, frame) -> None:
        stop_by.append(time.monotonic() + STOP_GRACE_SECONDS)
        _signal_group(proc.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stop_by and time.monotonic() > stop_by[0]:
                    _signal_group(proc.pid, signal.SIGKILL)
    finally:
        _stop_group(proc, STOP_GRACE_SECONDS)  # whatever ended the wait, no worker outlives `simlab ui`
        for s, handler in previous.items():
            signal.signal(s, handler)
    if stop_by:
        print("MLflow UI stopped", file=sys.stderr)
        return 0
    return code


def _signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to process group `pgid`; False when no process of it is left."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to `proc`'s process group; SIGKILL to what is left of it after `grace` seconds."""
    import signal
    import time

    deadline = time.monotonic() + grace
    if not _signal_group(proc.pid, signal.SIGTERM):
        return
    killed = False
    # signal 0: is any process of the group left? (a zombie counts until its parent reaps it: wait a bounded time)
    while _signal_group(proc.pid, 0) and time.monotonic() < deadline + 5:
        proc.poll()  # reap the leader, which would otherwise stay in the group as a zombie
        if time.monotonic() > deadline and not killed:
            killed = _signal_group(proc.pid, signal.SIGKILL)
        time.sleep(0.1)
    proc.poll()


def runs_from_mlflow(experiment: str, uri: str, dest: Path) -> list[Path]:
    """Download the finished simlab runs of an MLflow experiment as run folders under `dest`.

    Every FINISHED run that has a `perquery.tsv` artifact (sweep parent runs have none) gets
    `dest/<run name>` with the files of `RUN_ARTIFACTS` it has; when several runs share a name
    (a sweep point re-run), the most recent one is used.

    Raises:
        RunFolderError: the experiment does not exist in the store (the message lists those
            that do), or it has no finished simlab run.
    """
    from simlab.errors import RunFolderError

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # else one bar per file downloaded
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = ", ".join(e.name for e in client.search_experiments()) or "none"
        raise RunFolderError(
            f"{experiment!r} is neither a run folder nor an MLflow experiment of {uri} (experiments: {names}); "
            "pass a folder written by `simlab run`, or --tracking-uri for another store."
        )
    folders: list[Path] = []
    seen: set[str] = set()
    for run in client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"]):
        name = run.info.run_name or run.info.run_id
        if run.info.status != "FINISHED" or name in seen:
            continue
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        if "perquery.tsv" not in artifacts:
            continue
        seen.add(name)
        folder = dest / name
        folder.mkdir(parents=True, exist_ok=True)
        for file in RUN_ARTIFACTS:
            if file in artifacts:
                client.download_artifacts(run.info.run_id, file, str(folder))
        folders.append(folder)
    if not folders:
        raise RunFolderError(f"MLflow experiment {experiment!r} of {uri} has no finished simlab run to compare.")
    return sorted(folders)


def compare_inputs(paths: list[Path], uri: str, dest: Path) -> list[Path]:
    """The run folders `simlab compare` reads for its arguments: folders, or MLflow experiment names.

    A path that holds a run (a run folder, or a folder of run folders) is a folder. Any other name is
    an experiment of `uri` when the store has one by that name, its runs downloaded under `dest`: so
    `simlab compare simlab` run from the project root compares the experiment `simlab`, not the
    `simlab/` package folder. A name that is neither is reported as a folder error when it exists or
    holds a path separator, else as an unknown experiment (both messages say what to pass).
    """
    from simlab.errors import RunFolderError
    from simlab.experiments.runs_io import find_runs

    folders: list[Path] = []
    for path in paths:
        try:
            find_runs(path)
        except RunFolderError:
            if os.sep in str(path) or (path.exists() and not _is_experiment(str(path), uri)):
                raise
            folders += runs_from_mlflow(str(path), uri, dest / str(path))
            continue
        folders.append(path)
    return folders


def _is_experiment(name: str, uri: str) -> bool:
    """Whether the MLflow store at `uri` has an experiment `name` (False when the store cannot be read)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    try:
        return mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name(name) is not None
    except Exception:  # noqa: BLE001 - no store, or not an MLflow one: then the name is a folder
        return False
