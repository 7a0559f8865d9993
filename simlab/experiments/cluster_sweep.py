"""Sweeps on a Ray cluster: every unfinished grid point is a Ray task with its resources.

`run_sweep_on_cluster` is `simlab.experiments.sweep.run_sweep` with the points run as Ray
tasks (`cluster.cpus_per_point` / `gpus_per_point`, spread over the nodes) instead of one
after another. What stays the same: every point is checked before any work, `OUT/<name>/`
is an ordinary run folder, `sweep.json` records each point's status and main metric,
finished points are skipped when the sweep runs again, and with tracking on the sweep is an
MLflow parent run whose children the driver logs from the finished folders (so the runs land
in the driver's store).

Where a run folder is written (`cluster.storage`): `driver` (default) runs the point into a
temporary folder on its node and sends the finished folder back, which the driver unpacks
into `OUT/<name>/` (atomically, as any run folder); `shared` lets the point write
`OUT/<name>/` itself, on storage every node mounts at the same path.

A point that fails (its exception) or is lost (its node or worker died) is recorded as
`failed` / `lost` in `sweep.json` and the others go on; at the end the sweep raises
`PointsFailedError` naming them, and running it again runs just those. The terminal shows a
line per point as it starts (with its node) and as it ends.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simlab import cluster, fsutil
from simlab.config import ClusterConfig, Experiment
from simlab.errors import SimlabError
from simlab.experiments.sweep import finished_summary, parent_run, point_result, prepare, render_sweep
from simlab.tasks import RunSummary, get_task
from simlab.tasks.skeleton import execute

log = logging.getLogger("simlab")


class PointsFailedError(SimlabError):
    """Some grid points of a cluster sweep failed or were lost; the others finished (exit 1)."""

    exit_code = 1


# --------------------------------------------------------------------------- on a node


@contextlib.contextmanager
def in_driver_dir(cwd: str) -> Iterator[None]:
    """Run in the driver's working folder when this node has it (shared storage), so relative data paths mean
    what they mean on the driver; elsewhere stay where Ray started the worker."""
    before = os.getcwd()
    moved = os.path.isdir(cwd)
    if moved:
        os.chdir(cwd)
    try:
        yield
    finally:
        if moved:
            os.chdir(before)


def _pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def run_point(cfg: Experiment, name: str, out: str, storage: str, cwd: str, overwrite: bool, events) -> dict:
    """One grid point, as a Ray task: announce it on `events`, run it, return where it ran (and its folder)."""
    import ray

    node, host = ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
    cluster.quiet_worker_logs()
    events.put(("running", name, node, host))
    with in_driver_dir(cwd):
        task = get_task(cfg.task)
        if storage == "shared":
            execute(task, cfg, Path(out) / name, overwrite)
            return {"node": node, "host": host, "archive": None}
        with tempfile.TemporaryDirectory(prefix="simlab-point-") as tmp:
            folder = Path(tmp) / name
            execute(task, cfg, folder)
            return {"node": node, "host": host, "archive": _pack(folder)}


# --------------------------------------------------------------------------- on the driver


def run_sweep_on_cluster(
    configs: list[tuple[str, Experiment]], out: Path, overwrite: bool = False, address: str | None = None
) -> list[RunSummary]:
    """Run every unfinished grid point as a Ray task; see the module docstring.

    Args:
        configs: (run name, config) per grid point, as `simlab.tasks.load_sweep` returns them.
        out: The sweep folder (created, or resumed from its `sweep.json`).
        overwrite: Re-run every point, replacing finished run folders.
        address: The cluster (`auto`, `HOST:PORT`, `local`); default: the configs' `cluster.address`.

    Returns:
        One summary per grid point, in order.

    Raises:
        ConfigError: Ray is not installed, or no cluster answers at the address.
        RunFolderError: as `run_sweep`.
        PointsFailedError: some points failed or were lost; `sweep.json` names them, the others finished.
    """
    out = Path(out)
    settings = configs[0][1].cluster
    ray = cluster.connect(address or settings.address)  # a wrong address fails before anything is written
    with fsutil.out_lock(out):
        record, finished = prepare(configs, out, overwrite)
        with parent_run(configs, out, record):
            summaries = _Driver(ray, configs, out, overwrite, record, settings).run(finished)
    failed = [r for r in record["runs"] if r["status"] in ("failed", "lost")]
    if failed:
        raise PointsFailedError(
            f"{len(failed)} of {len(configs)} grid points did not finish "
            f"({', '.join(r['name'] + ': ' + r['status'] for r in failed)}); the others did:\n{render_sweep(out)}\n"
            "run the same command again: finished points are skipped, these run again"
        )
    return summaries


class _Driver:
    """The driver's side of a cluster sweep: submit the points, follow them, collect their folders."""

    def __init__(self, ray, configs, out: Path, overwrite: bool, record: dict[str, Any], settings: ClusterConfig):
        self.ray, self.configs, self.out, self.overwrite = ray, configs, out, overwrite
        self.record, self.settings = record, settings
        self.summaries: list[RunSummary | None] = [None] * len(configs)

    def run(self, finished: list[bool]) -> list[RunSummary]:
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # on the driver's node (hard: a soft affinity may place it elsewhere), so it lives as long as the driver
        here = NodeAffinitySchedulingStrategy(self.ray.get_runtime_context().get_node_id(), soft=False)
        events = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
        try:
            pending = self._submit(finished, events)
            self._follow(pending, events)
        finally:
            self.ray.kill(events.actor)
        return [s for s in self.summaries if s is not None]

    def _save(self) -> None:
        fsutil.write_json(self.out / "sweep.json", self.record)

    def _submit(self, finished: list[bool], events) -> dict:
        remote = self.ray.remote(run_point)
        pending = {}
        for i, ((name, cfg), entry, done) in enumerate(zip(self.configs, self.record["runs"], finished)):
            if done:
                self.summaries[i] = finished_summary(self.out / name, cfg)
                entry |= {"status": "skipped"} | point_result(self.summaries[i])
                log.info("sweep %s: %s already finished, skipped", self.out.name, name)
                continue
            ref = remote.options(  # each point with its own resources (a grid may sweep them too)
                num_cpus=cfg.cluster.cpus_per_point,
                num_gpus=cfg.cluster.gpus_per_point,
                max_retries=self.settings.max_retries,
                retry_exceptions=False,
                scheduling_strategy="SPREAD",
                name=f"simlab:{self.out.name}/{name}",
            ).remote(cfg, name, str(self.out.resolve()), self.settings.storage, os.getcwd(), self.overwrite, events)
            pending[ref] = i
            entry["status"] = "queued"
        self._save()
        queued = sum(not d for d in finished)
        log.info(
            "sweep %s: %d points queued on the Ray cluster, %d finished before",
            self.out.name,
            queued,
            len(finished) - queued,
        )
        return pending

    def _follow(self, pending: dict, events) -> None:
        t0 = time.perf_counter()
        try:
            while pending:
                ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=0.5)
                self._drain(events)
                for ref in ready:
                    self._collect(ref, pending.pop(ref))
                    self._drain(events)
                    self._progress(t0)
        except BaseException:
            for ref, i in pending.items():
                self.ray.cancel(ref, force=True)
                self.record["runs"][i]["status"] = "interrupted"
            self._save()
            raise

    def _drain(self, events) -> None:
        """Record the points that started since the last call (best effort: their end is what counts)."""
        changed = False
        try:
            started = events.get_nowait_batch(events.qsize())
        except self.ray.exceptions.RayError:
            started = []
        for _, name, node, host in started:
            entry = next(r for r in self.record["runs"] if r["name"] == name)
            if entry["status"] == "queued":
                entry |= {"status": "running", "node": node, "host": host}
                log.info("sweep %s: %s running on node %s (%s)", self.out.name, name, node[:12], host)
                changed = True
        if changed:
            self._save()

    def _collect(self, ref, i: int) -> None:
        name, cfg = self.configs[i]
        entry = self.record["runs"][i]
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # the point raised
            cause = getattr(exc, "cause", None) or exc
            entry |= {"status": "failed", "error": str(cause) or type(cause).__name__}
        except self.ray.exceptions.RayError as exc:  # its worker or node died
            entry |= {"status": "lost", "error": f"lost: {str(exc).strip().splitlines()[0]}"}
        else:
            folder = self.out / name
            if result["archive"] is not None:
                with fsutil.staged_dir(folder, overwrite=self.overwrite) as tmp:
                    with tarfile.open(fileobj=io.BytesIO(result["archive"]), mode="r") as tar:
                        tar.extractall(tmp, filter="data")
            summary = finished_summary(folder, cfg)
            if cfg.tracking.mlflow:
                from simlab.experiments.tracking import log_run

                log_run(summary)
            self.summaries[i] = summary
            entry |= {"status": "done", "node": result["node"], "host": result["host"]} | point_result(summary)
            entry.pop("error", None)
        self._save()
        what = entry.get("metric", "") + (f" {entry['value']:.4f}" if "value" in entry else "")
        log.info("sweep %s: %s %s %s", self.out.name, name, entry["status"], what or entry.get("error", ""))

    def _progress(self, t0: float) -> None:
        counts: dict[str, int] = {}
        for r in self.record["runs"]:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        parts = ", ".join(f"{n} {s}" for s, n in counts.items())
        log.info("sweep %s: %s (%.0f s)", self.out.name, parts, time.perf_counter() - t0)
