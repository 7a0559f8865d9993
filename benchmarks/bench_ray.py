"""Ray: corpus encoding on 1 and 2 Ray workers against local encoding, and a 4-point sweep on 2 workers.

The cluster is Ray's own multi-node helper (`ray.cluster_utils.Cluster`) on 127.0.0.1: a head
and a worker node with 1 CPU each (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`), so every Ray worker
is limited to 1 CPU. Encoding: `simlab.index.ray_encode.encode_on_ray` (Ray Data `map_batches`
on 1 or 2 wordllama model actors, streamed to on-disk shards) against the model's own
`encode_document` in this process with torch limited to 1 thread (what one worker gets), on
the same short texts. Throughput is reported over the whole call and in steady state (after
the first shard arrived, i.e. without the actors' start: a new Python process importing torch
and sentence-transformers). Scaling efficiency = 2-worker throughput / (2 x 1-worker
throughput). Sweep: the same 4 grid points (wordllama trained one epoch on Cranfield, or the demo
collection) one after another in this process (`run_sweep`) and as Ray tasks on the two nodes
(`run_sweep_on_cluster`, 1 CPU a point), wall time of each.

    python benchmarks/bench_ray.py --data ../shared/data --texts 1000000 --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit, machine, md_table, quiet_logs  # noqa: E402

HEADING = "Ray: corpus encoding on 1 and 2 workers, a sweep on 2 workers"
HEADER = [
    "encoding",
    "actors up (s)",
    "wall (s)",
    "texts/s (wall)",
    "texts/s (steady)",
    "read back (s)",
    "steady / local",
    "CPU s: actors / rest",
]


def short_texts(n: int) -> list[str]:
    """`n` distinct short texts (4-12 words) from a 2,000-word vocabulary, seeded."""
    import numpy as np

    rng = np.random.default_rng(0)
    vocab = [f"{a}{b}" for a in ("flow", "heat", "wing", "plate", "shock", "layer", "jet", "wave") for b in range(250)]
    lengths = rng.integers(4, 13, size=n)
    words = rng.integers(0, len(vocab), size=int(lengths.sum()))
    out, at = [], 0
    for i, k in enumerate(lengths):
        out.append(" ".join(vocab[w] for w in words[at : at + k]) + f" {i}")
        at += k
    return out


def local_encoding(model, texts: list[str], batch: int) -> float:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        model.encode_document(texts, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)
        return time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)


class CpuMeter:
    """CPU seconds used by this process tree meanwhile, split into the encoding actors and the rest (the driver,
    Ray's own processes): sampled every 0.2 s, so processes that end in between still count up to their last sample."""

    ACTOR = "ray::MapWorker"

    def __init__(self):
        import psutil

        self.me = psutil.Process()
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[bool, float]] = {}
        self.stop = threading.Event()
        self.sample()
        self.first = {pid: cpu for pid, (_, cpu) in self.last.items()}
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        import psutil

        for proc in [self.me, *self.me.children(recursive=True)]:
            try:
                with proc.oneshot():
                    cmd, times = proc.cmdline(), proc.cpu_times()
                actor = bool(cmd) and cmd[0].startswith(self.ACTOR)
                self.last[proc.pid] = (actor, times.user + times.system)
            except psutil.Error:
                pass

    def loop(self) -> None:
        while not self.stop.wait(0.2):
            self.sample()

    def split(self) -> tuple[float, float]:
        """(actor CPU seconds, other CPU seconds) since the meter started."""
        self.stop.set()
        self.thread.join()
        self.sample()
        used = {pid: (actor, cpu - self.first.get(pid, 0.0)) for pid, (actor, cpu) in self.last.items()}
        return sum(c for a, c in used.values() if a), sum(c for a, c in used.values() if not a)


def ray_encoding(model, texts: list[str], actors: int, batch: int, block: int) -> dict:
    from simlab.config.retrieval import RayEncodeConfig
    from simlab.index.ray_encode import encode_on_ray

    stats: dict = {}
    settings = RayEncodeConfig(actors=actors, batch_size=batch, shard_rows=block, cpus_per_actor=1)
    meter = CpuMeter()
    encode_on_ray(model, texts, "document", sparse=False, settings=settings, stats=stats)
    stats["actor_cpu"], stats["other_cpu"] = meter.split()
    steady_rows = len(texts) - stats["first_shard_rows"] * actors  # the first block of each actor: during its start
    steady = steady_rows / (stats["stream_seconds"] - stats["first_shard_seconds"])
    return stats | {"total_rate": len(texts) / stats["seconds"], "steady_rate": steady}


def sweep_points(data: Path):
    from simlab.tasks import load_sweep

    folder = data / "cranfield"
    path = folder if folder.is_dir() else REPO / "examples" / "demo"
    sets = [
        f"data.path={path}",
        "train.epochs=1",
        "train.batch_size=64",
        "eval.systems=[bm25, trained]",
        "index.approximate=[]",
        "tracking.mlflow=false",
        "train.learning_rate=[0.02,0.05,0.1,0.2]",
    ]
    return path, load_sweep(None, sets)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--texts", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--block", type=int, default=16384, help="Texts per Ray block and on-disk shard.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    quiet_logs()
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from ray.cluster_utils import Cluster

    from simlab import cluster
    from simlab.config import ModelConfig
    from simlab.experiments.cluster_sweep import run_sweep_on_cluster
    from simlab.experiments.sweep import run_sweep
    from simlab.models import load_model

    model = load_model(ModelConfig())
    texts = short_texts(args.texts)
    local_before = local_encoding(model, texts, args.batch)
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    cluster.connect(nodes.address)
    try:
        one = ray_encoding(model, texts, 1, args.batch, args.block)
        two = ray_encoding(model, texts, 2, args.batch, args.block)
        local_after = local_encoding(model, texts, args.batch)  # the machine is shared: local before and after
        collection, points = sweep_points(args.data)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_sweep(points, Path(tmp) / "local")
            sequential = time.perf_counter() - t0
            t0 = time.perf_counter()
            run_sweep_on_cluster(points, Path(tmp) / "ray")
            parallel = time.perf_counter() - t0
    finally:
        cluster.disconnect()
        nodes.shutdown()

    local_s = (local_before + local_after) / 2
    local_rate = len(texts) / local_s
    rows = [
        [
            "local (this process, 1 torch thread), mean of before and after",
            "-",
            f"{local_s:.1f} ({local_before:.1f}, {local_after:.1f})",
            f"{local_rate:,.0f}",
            "-",
            "-",
            "1.000",
            "-",
        ],
    ]
    for name, r in (("Ray, 1 worker", one), ("Ray, 2 workers", two)):
        rows.append(
            [
                name,
                f"{r['first_shard_seconds']:.1f}",
                f"{r['seconds']:.1f}",
                f"{r['total_rate']:,.0f}",
                f"{r['steady_rate']:,.0f}",
                f"{r['seconds'] - r['stream_seconds']:.1f}",
                f"{r['steady_rate'] / local_rate:.3f}",
                f"{r['actor_cpu']:.0f} / {r['other_cpu']:.0f}",
            ]
        )
    eff_total = two["total_rate"] / (2 * one["total_rate"])
    eff_steady = two["steady_rate"] / (2 * one["steady_rate"])
    one_vs_local = one["steady_rate"] / local_rate
    # texts per actor CPU second: what scaling would be if the actors had whole cores to themselves
    per_cpu = {n: len(texts) / r["actor_cpu"] for n, r in (("one", one), ("two", two))}
    cores = {n: (r["actor_cpu"] + r["other_cpu"]) / r["seconds"] for n, r in (("one", one), ("two", two))}
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    body = f"""Command: `python benchmarks/bench_ray.py --data ../shared/data --texts {args.texts} --out BENCHMARKS.md`
Machine: {machine()}; Ray {__import__("ray").__version__}. One run (a benchmark run's numbers, not medians: each
configuration encodes {args.texts:,} texts once). The machine's 2 cores are shared with other work.

Cluster: a head and a worker node on 127.0.0.1 with 1 CPU each (`ray.cluster_utils.Cluster`,
`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`); the driver (this process) runs beside them on the same 2 cores.
Encoding: {args.texts:,} short texts (4-12 words) with wordllama (StaticEmbedding, 256 dims), batch {args.batch},
Ray blocks / on-disk shards of {args.block:,} texts. "Actors up" is the time until the first shard reached the
driver (the actors' processes start, import torch and sentence-transformers, load the model); "steady" is the
throughput after it until the last shard is on disk; "read back" is the time to read the shards into the array the
indexes are built from (part of the wall time). Local encoding ran before and after the Ray runs (the machine is
shared); the table uses the mean.

{md_table(HEADER, rows)}

| ratio | value | target |
|---|---|---|
| scaling efficiency, steady: 2-worker / (2 x 1-worker) | {eff_steady:.3f} | >= 0.8: {verdict(eff_steady >= 0.8)} |
| scaling efficiency, wall (with the actors' start) | {eff_total:.3f} | (reported) |
| 1-worker Ray steady throughput / local | {one_vs_local:.3f} | >= 0.85: {verdict(one_vs_local >= 0.85)} |
| 1-worker Ray wall throughput / local | {one["total_rate"] / local_rate:.3f} | (reported) |
| texts per actor CPU second, 2 workers / 1 worker | {per_cpu["two"] / per_cpu["one"]:.3f} | (reported) |
| cores busy on average, 1 worker / 2 workers | {cores["one"]:.2f} / {cores["two"]:.2f} | (reported) |

CPU seconds are measured over the encoding call (every process of the benchmark's tree: the encoding actors,
and the rest: this driver, which streams the shards to disk and reads them back, and Ray's own processes).

Sweep: 4 grid points (`train.learning_rate=[0.02,0.05,0.1,0.2]`, wordllama trained 1 epoch, BM25 and the
trained model evaluated) on {collection.name}: one after another in this process {sequential:.1f} s; as Ray tasks
on the 2 nodes (1 CPU each, run folders sent back to the driver) {parallel:.1f} s; wall-time ratio
{parallel / sequential:.2f} (sequential / parallel = {sequential / parallel:.2f}x).
"""
    return emit(args.out, HEADING, body)


if __name__ == "__main__":
    main()
