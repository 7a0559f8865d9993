"""Sweeps: one config with lists where values belong, run as one run folder per grid point.

A list given where the schema expects one value (`--set sampling.pos_neg_ratio=[1,2,4,8]`)
is a sweep axis; several axes make a grid (their cartesian product). A field whose type is
itself a list (`eval.metrics`) is an axis only when given a list of lists
(`eval.metrics=[[ndcg@10],[mrr@10]]`). Expansion works on the raw YAML dict, before
validation; `simlab.config.load_sweep` then validates every grid point.

`run_sweep` runs the grid points into `OUT/<name>/`, named by their differing values
(`pos_neg_ratio=2,hard_soft_ratio=0.7`), so `OUT` is a sweep folder that `simlab compare OUT`
reads. A run folder that already exists with the same config is finished and skipped: an
interrupted sweep resumes where it stopped. `OUT/sweep.json` records the axes and the status
of every run, rewritten atomically after each change. With tracking on, the sweep is an
MLflow parent run (named after `OUT`, reused on resume) and each run a child of it.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import os
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel

from simlab import fsutil
from simlab.errors import ConfigError, RunFolderError

if TYPE_CHECKING:
    from simlab.config import Experiment
    from simlab.experiments.runner import RunSummary

log = logging.getLogger("simlab")

SWEEP_FORMAT = {"format": "simlab.sweep", "format_version": 1}

# --------------------------------------------------------------------------- expansion


def _options(annotation: Any) -> tuple:
    """The alternatives of a union annotation (`int | None` -> (int, NoneType)), else (annotation,)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _section(annotation: Any) -> type[BaseModel] | None:
    """The config section (a pydantic model) a field holds, or None for a value field."""
    return next((a for a in _options(annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)


def _is_list_field(annotation: Any) -> bool:
    return any(a is list or typing.get_origin(a) is list for a in _options(annotation))


def _is_axis(value: Any, annotation: Any) -> bool:
    if not isinstance(value, list):
        return False
    if _is_list_field(annotation):
        return bool(value) and all(isinstance(v, list) for v in value)
    return _section(annotation) is None


def sweep_axes(raw: dict, schema: type[BaseModel], prefix: str = "") -> dict[str, list]:
    """The sweep axes of a raw config: dotted key -> the values to sweep, in file order.

    Example: `{"train": {"epochs": [1, 2], "seed": 3}}` -> `{"train.epochs": [1, 2]}`.

    Unknown keys are ignored here; validation reports them.
    """
    axes: dict[str, list] = {}
    for key, value in raw.items():
        field = schema.model_fields.get(str(key))
        if field is None:
            continue
        dotted = f"{prefix}{key}"
        section = _section(field.annotation)
        if section is not None and isinstance(value, dict):
            axes |= sweep_axes(value, section, dotted + ".")
        elif _is_axis(value, field.annotation):
            axes[dotted] = value
    return axes


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list):
        return "+".join(_format_value(v) for v in value) or "empty"
    return str(value)


def _labels(keys: list[str]) -> dict[str, str]:
    """Dotted key -> its last component, or the whole key when two keys share the last component."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: short if last.count(short) == 1 else k for k, short in zip(keys, last)}


def _safe_name(text: str) -> str:
    """A folder name: anything but letters, digits and `._@+=,-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9._@+=,\-]", "_", text)


def _set(raw: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node[key]
    node[last] = value


def expand(raw: dict, schema: type[BaseModel]) -> list[tuple[str, dict]]:
    """Expand the sweep axes of a raw config into one raw config per grid point.

    Grid points are the cartesian product of the axes, the first axis varying slowest. A
    point's name joins `key=value` for the axes with more than one value (all axes if none
    has), `key` being the field's last dotted component unless two axes share it.

    Example: `sampling.pos_neg_ratio=[1, 2]` and `sampling.hard_soft_ratio=[0.5, 0.7]` ->
    `pos_neg_ratio=1,hard_soft_ratio=0.5`, `pos_neg_ratio=1,hard_soft_ratio=0.7`, ...

    Args:
        raw: The config as read from YAML, overrides applied.
        schema: The task's config class (`simlab.config.TASKS[task]`), which says where a
            list is a value and where it is a sweep.

    Returns:
        (run name, raw config) per grid point; `[("", raw)]` when there is no axis.

    Raises:
        ConfigError: an axis has no value, or two grid points get the same name.
    """
    axes = sweep_axes(raw, schema)
    if not axes:
        return [("", raw)]
    for key, values in axes.items():
        if not values:
            raise ConfigError(f"{key}: an empty list sweeps nothing; give one value or a list of values")
    labels = _labels(list(axes))
    named = [k for k, values in axes.items() if len(values) > 1] or list(axes)
    points: list[tuple[str, dict]] = []
    for combo in itertools.product(*axes.values()):
        point = copy.deepcopy(raw)
        for key, value in zip(axes, combo):
            _set(point, key, value)
        chosen = dict(zip(axes, combo))
        name = _safe_name(",".join(f"{labels[k]}={_format_value(chosen[k])}" for k in named))
        points.append((name, point))
    names = [n for n, _ in points]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"several grid points would be named {', '.join(twice)}; remove the repeated value from the sweep list"
        )
    return points


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


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def _axes(configs: list[tuple[str, Experiment]]) -> dict[str, list]:
    """Dotted field -> its distinct values, for the fields whose values differ between configs."""
    flats = [_flat(cfg.model_dump(mode="json")) for _, cfg in configs]
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
    if not old and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RunFolderError(
            f"{out} exists and is not a sweep folder (no sweep.json); choose another --out or pass --overwrite."
        )
    record = SWEEP_FORMAT | {
        "name": out.name,
        "axes": _axes(configs),
        "runs": [{"name": name, "status": "pending"} for name, _ in configs],
    }
    if old.get("mlflow_run_id"):
        record["mlflow_run_id"] = old["mlflow_run_id"]
    return record


def _main_metric(summary: RunSummary) -> dict[str, Any]:
    """The number a sweep is read by: the trained system's first metric (pairs: `best_by`)."""
    cfg = summary.config
    metric = cfg.eval.metrics[0] if cfg.task == "retrieval" else cfg.train.best_by
    system = next((s for s in ("trained.flat", "trained") if s in summary.metrics), next(iter(summary.metrics), None))
    value = summary.metrics.get(system, {}).get(metric)
    return {} if value is None else {"metric": f"{system} {metric}", "value": value}


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
    config_file = folder / "config.yaml"
    done = yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    old, new = _flat(done or {}), _flat(cfg.model_dump(mode="json"))
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        raise RunFolderError(
            f"{folder} is a finished run of another config (differs in {', '.join(changed)}); "
            "pass --overwrite to re-run every point, or choose another --out."
        )
    return True


def _finished_summary(folder: Path, cfg: Experiment) -> RunSummary:
    from simlab.experiments.runner import RunSummary

    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    metrics_file = folder / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    return RunSummary(
        folder=folder,
        config=cfg,
        metrics=metrics,
        notes=list(meta.get("notes", [])),
        n_test_queries=meta.get("n_test_queries", meta.get("n_test_pairs", 0)),
        seconds=float(meta.get("seconds", 0.0)),
    )


@contextlib.contextmanager
def _parent_run(configs: list[tuple[str, Experiment]], out: Path, record: dict[str, Any]) -> Iterator[None]:
    """Keep the sweep's MLflow run active, so each run's `log_run` logs a child of it.

    The parent run id is kept in `record`, and a resumed sweep reopens that run. Without
    tracking (`tracking.mlflow: false` in every config) this does nothing.
    """
    tracking = next((cfg.tracking for _, cfg in configs if cfg.tracking.mlflow), None)
    if tracking is None:
        yield
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(tracking.uri)
    mlflow.set_experiment(tracking.experiment)
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
        RunFolderError: `out` is a run folder, or a non-sweep folder (without `overwrite`), or a
            finished run folder was made by another config.
        Exception: whatever a run raises; the sweep stops there and `sweep.json` names the run.
    """
    from simlab.experiments.runner import run_experiment

    out = Path(out)
    record = _new_record(configs, out, overwrite)
    finished = [not overwrite and _finished(out / name, cfg) for name, cfg in configs]  # checked before any run
    fsutil.write_json(out / "sweep.json", record)
    summaries: list[RunSummary] = []
    with _parent_run(configs, out, record):
        for i, ((name, cfg), entry, done) in enumerate(zip(configs, record["runs"], finished), start=1):
            folder = out / name
            if done:
                log.info("sweep %s: %d/%d %s already finished, skipped", out.name, i, len(configs), name)
                summary, entry["status"] = _finished_summary(folder, cfg), "skipped"
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
            entry |= {"seconds": round(summary.seconds, 2)} | _main_metric(summary)
            summaries.append(summary)
            fsutil.write_json(out / "sweep.json", record)
    return summaries
