"""Sweeps: one config with lists where values belong, run as one run folder per grid point.

The grid is expanded and every point validated by `simlab.tasks.load_sweep` (see
`simlab.config.sweep` for what makes an axis).

`run_sweep` runs the grid points into `OUT/<name>/`, named by their differing values
(`pos_neg_ratio=2,hard_soft_ratio=0.7`), so `OUT` is a sweep folder that `simlab compare OUT`
reads. A run folder that already exists with the same config is finished and skipped: an
interrupted sweep resumes where it stopped. `OUT/sweep.json` records the axes and the status
of every run, rewritten atomically after each change. With tracking on, the sweep is an
MLflow parent run (named after `OUT`, reused on resume) and each run a child of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simlab import fsutil
from simlab.config import Experiment
from simlab.config.loading import differing_keys, flat
from simlab.errors import RunFolderError, SimlabError
from simlab.tasks import RunSummary, get_task
from simlab.tasks.base import inputs_of
from simlab.tasks.skeleton import read_metrics

log = logging.getLogger("simlab")

SWEEP_FORMAT = {"format": "simlab.sweep", "format_version": 1}

# --------------------------------------------------------------------------- sweep.json


def read_sweep(out: Path) -> dict[str, Any]:
    """The `sweep.json` record of a sweep folder, or {} when `out` has none.

    Raises:
        RunFolderError: `sweep.json` is not valid JSON or not a simlab sweep record.
    """
    path = Path(out) / "sweep.json"
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path}:{e.lineno}: not valid JSON ({e.msg}); delete it to restart the sweep.") from None
    if not isinstance(record, dict) or record.get("format") != SWEEP_FORMAT["format"]:
        raise RunFolderError(f"{path}: not a simlab sweep record; choose another --out.")
    return record


def _axes(configs: list[tuple[str, Experiment]]) -> dict[str, list]:
    """Dotted field -> its distinct values, for the fields whose values differ between configs."""
    flats = [flat(cfg.model_dump(mode="json")) for _, cfg in configs]
    axes: dict[str, list] = {}
    for key in flats[0]:
        values: list = []
        for f in flats:
            if f.get(key) not in values:
                values.append(f.get(key))
        if len(values) > 1:
            axes[key] = values
    return axes


def _new_record(configs: list[tuple[str, Experiment]], out: Path, overwrite: bool) -> dict[str, Any]:
    if (out / "meta.json").is_file():
        raise RunFolderError(f"{out} is a run folder, not a sweep folder; choose another --out for the sweep.")
    old = read_sweep(out)
    if not old and out.is_dir() and any(out.iterdir()):
        raise RunFolderError(
            f"{out} exists and is not a sweep folder (no sweep.json); choose another --out (nothing was deleted)."
        )
    for _, cfg in configs:
        if (src := fsutil.held_input(out, inputs_of(cfg))) is not None:
            raise RunFolderError(f"{out} is, or holds, the input {src}; choose another --out for the sweep.")
    record = SWEEP_FORMAT | {
        "name": out.name,
        "axes": _axes(configs),
        "runs": [{"name": name, "status": "pending"} for name, _ in configs],
    }
    if old.get("mlflow_run_id"):
        record["mlflow_run_id"] = old["mlflow_run_id"]
    return record


def _main_metric(summary: RunSummary) -> dict[str, Any]:
    """The number a sweep is read by: the task's main metric of its main system."""
    task, cfg = summary.task, summary.config
    if not summary.metrics:
        return {}
    system, metric = task.main_system(list(summary.metrics)), task.main_metric(cfg)
    value = summary.metrics[system].get(metric)
    return {} if value is None else {"metric": f"{system} {metric}", "value": value}


def point_result(summary: RunSummary) -> dict[str, Any]:
    """What `sweep.json` records of a finished point: its seconds and main metric."""
    return {"seconds": round(summary.seconds, 2)} | _main_metric(summary)


def render_sweep(out: Path) -> str:
    """One line per run of a sweep folder: name, status, main metric (from `sweep.json`)."""
    runs = read_sweep(out).get("runs", [])
    width = max((len(r["name"]) for r in runs), default=0)
    lines = []
    for r in runs:
        metric = f"{r['metric']} {r['value']:.4f}" if "value" in r else r.get("error", "").partition("\n")[0]
        lines.append(f"{r['name']:<{width}}  {r['status']:<11}  {metric}".rstrip())
    return "\n".join(lines)


# --------------------------------------------------------------------------- running


def _finished(folder: Path, cfg: Experiment) -> bool:
    """True if `folder` is a finished run of `cfg`; a finished run of another config is an error."""
    if not (folder / "meta.json").is_file():
        return False
    import yaml

    config_file = folder / "config.yaml"
    done = yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    changed = differing_keys(done or {}, cfg.model_dump(mode="json"))
    if changed:
        raise RunFolderError(
            f"{folder} is a finished run of another config (differs in {', '.join(changed)}); "
            "pass --overwrite to re-run every point, or choose another --out."
        )
    return True


def finished_summary(folder: Path, cfg: Experiment) -> RunSummary:
    """The summary of a finished run folder of `cfg`, read back from its files (what tracking logs)."""
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    metrics_file = folder / "metrics.json"
    metrics, chosen = read_metrics(metrics_file) if metrics_file.is_file() else ({}, None)
    history_file = folder / "history.jsonl"
    lines = history_file.read_text(encoding="utf-8").splitlines() if history_file.is_file() else []
    return RunSummary(
        folder=folder,
        config=cfg,
        metrics=metrics,
        chosen=chosen,
        history=[json.loads(line) for line in lines if line.strip()],
        notes=list(meta.get("notes", [])),
        n_test=meta.get(f"n_test_{get_task(cfg.task).unit}", 0),
        seconds=float(meta.get("seconds", 0.0)),
    )


@contextlib.contextmanager
def parent_run(configs: list[tuple[str, Experiment]], out: Path, record: dict[str, Any]) -> Iterator[None]:
    """Keep the sweep's MLflow run active, so each run's `log_run` logs a child of it.

    The parent run id is kept in `record`, and a resumed sweep reopens that run. Without
    tracking (`tracking.mlflow: false` in every config) this does nothing.
    """
    tracked = next((cfg for _, cfg in configs if cfg.tracking.mlflow), None)
    if tracked is None:
        yield
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(tracked.tracking.uri)
    mlflow.set_experiment(tracked.experiment_name)
    parent = None
    if record.get("mlflow_run_id"):
        try:
            parent = mlflow.start_run(run_id=record["mlflow_run_id"], nested=True)
        except mlflow.exceptions.MlflowException as exc:
            log.warning("sweep %s: not resuming MLflow run %s (%s)", out.name, record["mlflow_run_id"], exc)
    if parent is None:
        parent = mlflow.start_run(run_name=out.name, nested=True)
    with parent:
        record["mlflow_run_id"] = parent.info.run_id
        mlflow.set_tags({"simlab.sweep_folder": str(out.resolve()), "simlab.sweep_axes": ", ".join(record["axes"])})
        yield
        mlflow.log_artifact(str(out / "sweep.json"))


def run_sweep(configs: list[tuple[str, Experiment]], out: Path, overwrite: bool = False) -> list[RunSummary]:
    """Run every grid point into `out/<name>/`, skipping the ones already finished.

    Args:
        configs: (run name, config) per grid point, as `simlab.config.load_sweep` returns them.
        out: The sweep folder; created if missing, resumed if it holds a `sweep.json`.
        overwrite: Re-run every point, replacing finished run folders.

    Returns:
        One summary per grid point, in order; a skipped point's summary is read from its folder.

    Raises:
        RunFolderError: `out` is a run folder, a folder that is not a sweep's, or holds an input; another
            process is writing it; or a finished run folder was made by another config.
        Exception: whatever a run raises; the sweep stops there and `sweep.json` names the run.
    """
    out = Path(out)
    with fsutil.out_lock(out):  # one sweep at a time into `out`; each point also locks its own folder
        return _run_points(configs, out, overwrite)


def prepare(configs: list[tuple[str, Experiment]], out: Path, overwrite: bool) -> tuple[dict[str, Any], list[bool]]:
    """Before any run (the caller holds `out`'s lock): every point preflighted, `sweep.json` written; returns the
    record and, per point, whether it is finished (and is skipped)."""
    for name, cfg in configs:  # every point's data and model, before the first one runs
        try:
            get_task(cfg.task).preflight(cfg)
        except SimlabError as exc:
            raise type(exc)(f"[{name}] {exc}") from None
    record = _new_record(configs, out, overwrite)
    finished = [not overwrite and _finished(out / name, cfg) for name, cfg in configs]  # checked before any run
    fsutil.write_json(out / "sweep.json", record)
    return record, finished


def _run_points(configs: list[tuple[str, Experiment]], out: Path, overwrite: bool) -> list[RunSummary]:
    from simlab.experiments.runner import run_experiment

    record, finished = prepare(configs, out, overwrite)
    summaries: list[RunSummary] = []
    with parent_run(configs, out, record):
        for i, ((name, cfg), entry, done) in enumerate(zip(configs, record["runs"], finished), start=1):
            folder = out / name
            if done:
                log.info("sweep %s: %d/%d %s already finished, skipped", out.name, i, len(configs), name)
                summary, entry["status"] = finished_summary(folder, cfg), "skipped"
            else:
                log.info("sweep %s: %d/%d %s", out.name, i, len(configs), name)
                entry["status"] = "running"
                fsutil.write_json(out / "sweep.json", record)
                try:
                    summary = run_experiment(cfg, folder, overwrite=overwrite)
                except BaseException as exc:
                    entry["status"] = "failed" if isinstance(exc, Exception) else "interrupted"
                    entry["error"] = str(exc) or type(exc).__name__
                    fsutil.write_json(out / "sweep.json", record)
                    raise
                entry["status"] = "done"
            entry |= point_result(summary)
            summaries.append(summary)
            fsutil.write_json(out / "sweep.json", record)
    return summaries
