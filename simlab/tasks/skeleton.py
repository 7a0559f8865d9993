"""The run skeleton: one config in, one run folder out, for every task kind.

`execute` checks the run folder, stages it beside the final path, writes config.yaml, lets
the task run its stages into the staging folder, then writes the files every run has:
history.jsonl and curves.png (when the task trained), perquery.tsv (one contract: `system,
query_id, metric, value`), metrics.json, speed.json, meta.json and report.md. The staging
folder becomes the run folder only when all of this succeeded, so a failed run leaves nothing
behind; trainer checkpoints beside it (`checkpoint_dir`) are deleted on success. Tracking is
the caller's (`simlab.experiments.runner`).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from simlab import fsutil
from simlab.errors import RunFolderError
from simlab.tasks.base import RunSummary, Task, inputs_of
from simlab.tasks.tables import with_chosen

if TYPE_CHECKING:
    from simlab.config import Experiment

RUN_FORMAT = {"format": "simlab.run", "format_version": 1}
PERQUERY_HEADER = "system\tquery_id\tmetric\tvalue\n"
CHOSEN = "chosen"
"""metrics.json's key of the run's answer (`RunSummary.choose`); every other key is a system."""


def read_metrics(path: Path) -> tuple[dict[str, dict[str, float]], dict | None]:
    """(system -> metric -> value, chosen) of a metrics.json file."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    chosen = raw.pop(CHOSEN, None) if isinstance(raw, dict) else None
    return raw, chosen


def machine() -> str:
    """The machine a run ran on, as the report shows it: CPU model, logical cores, OS, Python and torch."""
    import os
    import platform
    import sys

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    torch = sys.modules.get("torch")
    version = f", torch {torch.__version__}" if torch is not None else ""
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}{version}"


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")


def checkpoint_dir(out: Path) -> Path:
    """Where the trainer checkpoints a run to `out`: beside it, so they outlive a failed or
    interrupted run (which leaves no run folder) and `train.resume: true` can continue; a
    finished run deletes them."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoints"


def note_resume(result, summary: RunSummary) -> None:
    """Record in meta.json and the notes that training continued from an interrupted run's checkpoint."""
    if result.resumed_from:
        summary.meta["resumed_from"] = result.resumed_from
        summary.notes.append(
            f"Resumed from {Path(result.resumed_from['checkpoint']).name} (epoch {result.resumed_from['epoch']}) "
            "of an interrupted run; the history holds the epochs before it too."
        )


RESUMABLE = {"train.epochs", "train.resume"}
"""What a resumed run may change against the interrupted one."""


def check_resume(out: Path, cfg: Experiment) -> None:
    """Keep the config beside the checkpoints of a run that trains; a run with `train.resume` must have the
    config of the run it continues, but for `RESUMABLE` fields.

    Raises:
        ConfigError: the config differs (the message names the fields).
    """
    import yaml

    from simlab.config.loading import differing_keys
    from simlab.errors import ConfigError

    train = getattr(cfg, "train", None)
    if train is None or not hasattr(train, "resume"):
        return
    stored = checkpoint_dir(out) / "config.yaml"
    if train.resume is not False and stored.is_file():
        old = yaml.safe_load(stored.read_text(encoding="utf-8")) or {}
        changed = differing_keys(old, cfg.model_dump(mode="json"), RESUMABLE)
        if changed:
            raise ConfigError(
                f"train.resume: the interrupted run to {out} had another config ({', '.join(changed)} differ); "
                "a resumed run may change train.epochs only: use its config, or set train.resume: false"
            )
    elif train.resume is False:
        fsutil.write_text(stored, cfg.to_yaml())


def _resumable(folder: Path) -> bool:
    """Whether `folder` holds a state a run can resume from: a trainer checkpoint or a loop's saved state."""
    from simlab.training.trainer import LoopCheckpoint

    return any(folder.rglob("trainer_state.json")) or any(folder.rglob(LoopCheckpoint.FILE))


def _cell(value) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def write_common_files(task: Task, summary: RunSummary, folder: Path) -> None:
    """The files every finished run has, whatever its task (see the module docstring)."""
    cfg = summary.config
    if summary.history:
        from simlab.tasks.plots import learning_curves

        fsutil.write_text(folder / "history.jsonl", "".join(json.dumps(h) + "\n" for h in summary.history))
        learning_curves(summary.history, folder / "curves.png", task.best_by(cfg), prefix=task.curve_prefix)
    rows = "".join(f"{s}\t{i}\t{m}\t{_cell(v)}\n" for s, i, m, v in summary.items)
    fsutil.write_text(folder / "perquery.tsv", PERQUERY_HEADER + rows)
    summary.chosen = summary.choose()
    fsutil.write_json(folder / "metrics.json", ({CHOSEN: summary.chosen} if summary.chosen else {}) | summary.metrics)
    fsutil.write_json(folder / "speed.json", summary.speed)
    data = getattr(getattr(cfg, "data", None), "path", None)
    fsutil.write_json(
        folder / "meta.json",
        RUN_FORMAT
        | {"name": cfg.name, "task": cfg.task, "data": str(Path(data).resolve()) if data else None}
        | {f"n_test_{task.unit}": summary.n_test}
        | summary.meta
        | {"seconds": round(summary.seconds, 2), "finished": _now(), "machine": machine(), "notes": summary.notes},
    )
    fsutil.write_text(folder / "report.md", with_chosen(summary, task.report(summary)))


def execute(task: Task, cfg: Experiment, out: Path, overwrite: bool = False) -> RunSummary:
    """Run `cfg`'s stages (`task.run`) into the run folder `out`; see the module docstring."""
    out = Path(out)
    task.preflight(cfg)  # the folder itself is checked by staged_dir, before any work too
    t0 = time.perf_counter()
    summary = task.new_summary(cfg, out)
    with fsutil.staged_dir(out, overwrite=overwrite, inputs=inputs_of(cfg)) as tmp:  # holds the --out lock
        try:
            fsutil.write_text(tmp / "config.yaml", cfg.to_yaml())
            check_resume(out, cfg)
            task.run(cfg, summary, tmp)
            summary.seconds = time.perf_counter() - t0
            write_common_files(task, summary, tmp)
        except BaseException:
            if not _resumable(checkpoint_dir(out)):  # nothing to resume from: nothing kept
                shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
            raise
        shutil.rmtree(tmp / ".checkpoints", ignore_errors=True)
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    return summary


def run_task(folder: Path, command: str | None = None) -> Task:
    """The task of a finished run folder (its meta.json), checked to take `command` (search, match ...); for a
    command, its model and indexes are checked against the checksums simlab wrote (`fsutil.verify_manifest`).

    Raises:
        RunFolderError: no run folder, its task does not take `command` (the message names those that do), or
            its model or an index is not what simlab wrote.
    """
    from simlab.tasks.registry import TASKS, get_task, task_name

    meta_path = Path(folder) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{folder}: not a simlab run folder (no meta.json); make one with `simlab run`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{meta_path}: not valid JSON ({e}); the run folder is damaged, re-run it") from None
    if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT["format"]:
        raise RunFolderError(f"{meta_path}: not a simlab run's meta.json; make a run folder with `simlab run`")
    name = meta.get("task", "retrieval")
    if name in ("retrieval", "pairs") and (Path(folder) / "config.yaml").is_file():  # runs of before sparse and
        import yaml  # definitions were tasks of their own: their config says which they are

        name = task_name(yaml.safe_load((Path(folder) / "config.yaml").read_text(encoding="utf-8")) or {})
    task = get_task(name)
    if command is not None and command not in task.commands:
        takes = sorted(name for name, t in TASKS.items() if command in t.commands)
        raise RunFolderError(
            f"{folder} is a {task.name} run; `simlab {command}` takes runs of task {', '.join(takes) or 'none'}"
        )
    if command is not None:
        fsutil.verify_manifest(Path(folder), under=("model", "zeroshot-model", "indexes"))
    return task
