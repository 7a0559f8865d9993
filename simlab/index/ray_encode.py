"""Corpus encoding on a Ray cluster: Ray Data `map_batches` on model actors, streamed to shards.

The texts become a Ray dataset of `index.ray.shard_rows`-row blocks (each row keeps its
position); `map_batches` runs them through a pool of model actors (the model is put into
the object store once; each actor asks for `index.ray.cpus_per_actor` CPUs, whose count it
gives torch as threads, or `gpus_per_actor` GPUs). The driver consumes the result as a
stream, one block at a time, and writes each to an on-disk shard (`shard-NNNNNN.npz`), so
its memory holds no more than a few blocks while the cluster encodes. The vectors are then
read back from the shards, in the texts' order, into the array (dense) or CSR matrix
(sparse) the indexes are built from, exactly as from local encoding.

An actor encodes with the calls local encoding makes (`encode_document`/`encode_query`,
`simlab.models.sparse.encode_sparse` with their batch sizes), so the vectors equal local
encoding's up to float rounding in batched matrix products (tested at 1e-6).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simlab import cluster

if TYPE_CHECKING:
    from simlab.config import IndexConfig
    from simlab.config.retrieval import RayEncodeConfig

log = logging.getLogger("simlab")

DENSE_BATCH = 256  # the batch sizes of local encoding (simlab.tasks.retrieval.systems, simlab.models.sparse)
SPARSE_BATCH = 32


def use_ray(cfg: IndexConfig, n_docs: int) -> bool:
    """Whether the corpus is encoded on Ray: `index.encode: ray`, or `auto` on a connected driver with a corpus
    of at least `index.ray.min_docs` documents (a grid point running as a Ray task encodes locally)."""
    if cfg.encode == "ray":
        return True
    return cfg.encode == "auto" and n_docs >= cfg.ray.min_docs and cluster.on_driver()


class _EncodeActor:
    """One model replica: encodes a batch of `{"pos", "text"}` rows into vectors with their positions."""

    def __init__(self, model_box: list, side: str, sparse: bool, threads: int):
        import ray
        import torch

        torch.set_num_threads(max(1, threads))
        self.model = ray.get(model_box[0])
        self.side, self.sparse = side, sparse

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        texts = [str(t) for t in batch["text"]]
        if self.sparse:
            from simlab.models.sparse import encode_sparse

            csr = encode_sparse(self.model, texts, self.side, batch_size=SPARSE_BATCH)
            return {"pos": batch["pos"], "nnz": _row_column(csr.indptr)} | {
                "indices": _ragged(csr.indices, csr.indptr),
                "values": _ragged(csr.data.astype(np.float32), csr.indptr),
            }
        encode = self.model.encode_query if self.side == "query" else self.model.encode_document
        vectors = encode(texts, batch_size=DENSE_BATCH, convert_to_numpy=True, show_progress_bar=False)
        return {"pos": batch["pos"], "vector": np.ascontiguousarray(vectors, dtype=np.float32)}


def _ragged(flat: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """One array per row (an object column; Ray Data stores it as a variable-shaped tensor)."""
    out = np.empty(len(indptr) - 1, dtype=object)
    for i in range(len(out)):
        out[i] = flat[indptr[i] : indptr[i + 1]]
    return out


def _row_column(indptr: np.ndarray) -> np.ndarray:
    return np.diff(indptr).astype(np.int64)  # non-zeros per row


def _actors(ray, settings: RayEncodeConfig) -> int:
    if settings.actors:
        return settings.actors
    total = ray.cluster_resources()
    if settings.gpus_per_actor > 0:
        return max(1, int(total.get("GPU", 0) // settings.gpus_per_actor))
    return max(1, int(total.get("CPU", 1) // settings.cpus_per_actor))


def encode_on_ray(
    model,
    texts: Sequence[str],
    side: str,
    sparse: bool,
    settings: RayEncodeConfig,
    shard_dir: Path | None = None,
    stats: dict[str, float] | None = None,
):
    """Encode `texts` on the Ray cluster (see the module docstring).

    Args:
        model: A SentenceTransformer (dense) or SparseEncoder (`sparse=True`).
        texts: The texts, in order.
        side: "document" or "query": the model's route.
        sparse: Return a scipy CSR matrix `[n, vocab]` instead of a float32 array `[n, dim]`.
        settings: `index.ray`.
        shard_dir: Where the shards go (default: a temporary folder, removed afterwards).
        stats: Filled with `actors`, `seconds` (the whole call), `first_shard_seconds` (until the first shard
            arrived: the actors' start), `first_shard_rows` and `stream_seconds` (until the last shard was
            written, before the shards are read back), for benchmarks.

    Returns:
        The vectors, row i for `texts[i]`.
    """
    ray = cluster.connect(None, what="index.encode: ray")
    if not len(texts):
        raise ValueError("encode_on_ray: no text to encode")
    if shard_dir is None:
        with tempfile.TemporaryDirectory(prefix="simlab-encode-") as tmp:
            return encode_on_ray(model, texts, side, sparse, settings, Path(tmp), stats)
    t0 = time.perf_counter()
    stats = {} if stats is None else stats
    shard_dir.mkdir(parents=True, exist_ok=True)
    n_actors = _actors(ray, settings)
    dataset = _dataset(ray, texts, settings.shard_rows)
    encoded = dataset.map_batches(
        _EncodeActor,
        fn_constructor_kwargs={
            "model_box": [ray.put(model)],  # boxed: the actors fetch the one stored copy
            "side": side,
            "sparse": sparse,
            "threads": int(settings.cpus_per_actor),
        },
        batch_size=settings.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        num_cpus=settings.cpus_per_actor,
        num_gpus=settings.gpus_per_actor or None,
    )
    log.info("encoding %s %ss on %d Ray actors (Ray Data map_batches)", f"{len(texts):,}", side, n_actors)
    shards = _stream_to_shards(encoded, shard_dir, len(texts), stats, t0)
    vectors = _read_sparse(shards, len(texts), model) if sparse else _read_dense(shards, len(texts))
    stats |= {"actors": n_actors, "seconds": time.perf_counter() - t0}
    return vectors


def _dataset(ray, texts: Sequence[str], block_rows: int):
    import pyarrow as pa

    table = pa.table({"pos": np.arange(len(texts), dtype=np.int64), "text": pa.array(list(texts), pa.string())})
    return ray.data.from_arrow([table.slice(start, block_rows) for start in range(0, len(texts), block_rows)])


def _stream_to_shards(encoded, shard_dir: Path, total: int, stats: dict, t0: float) -> list[Path]:
    """Write every output block the cluster produces to its own shard file as it arrives."""
    shards: list[Path] = []
    done, next_report = 0, 0.1
    for batch in encoded.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
        if not shards:
            stats |= {"first_shard_seconds": time.perf_counter() - t0, "first_shard_rows": len(batch["pos"])}
        path = shard_dir / f"shard-{len(shards):06d}.npz"
        np.savez(path, **{k: _stackable(v) for k, v in batch.items()})
        shards.append(path)
        done += len(batch["pos"])
        if done / total >= next_report or done == total:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            log.info("encoded %s of %s (%s/s)", f"{done:,}", f"{total:,}", f"{rate:,.0f}")
            next_report = done / total + 0.1
    if done != total:
        raise RuntimeError(f"Ray encoding returned {done} vectors for {total} texts")
    stats["stream_seconds"] = time.perf_counter() - t0
    return shards


def _stackable(column: np.ndarray) -> np.ndarray:
    """A ragged column (one array per row) as one flat array; the row lengths are in `nnz`."""
    if column.dtype == object:
        return np.concatenate([np.asarray(a) for a in column]) if len(column) else np.zeros(0)
    return column


def _read_dense(shards: list[Path], n: int) -> np.ndarray:
    out: np.ndarray | None = None
    seen = np.zeros(n, dtype=bool)
    for path in shards:
        with np.load(path) as shard:
            vectors, pos = shard["vector"], shard["pos"]
            if out is None:
                out = np.empty((n, vectors.shape[1]), dtype=np.float32)
            out[pos] = vectors
            seen[pos] = True
    if out is None or not seen.all():
        raise RuntimeError("Ray encoding lost rows")
    return out


def _read_sparse(shards: list[Path], n: int, model):
    import scipy.sparse

    vocab = len(model.tokenizer.get_vocab())
    parts, positions = [], []
    for path in shards:
        with np.load(path) as shard:
            indptr = np.concatenate([[0], np.cumsum(shard["nnz"])])
            rows = scipy.sparse.csr_matrix(
                (shard["values"].astype(np.float32), shard["indices"].astype(np.int32), indptr),
                shape=(len(shard["pos"]), vocab),
            )
            parts.append(rows)
            positions.append(shard["pos"])
    stacked = scipy.sparse.vstack(parts, format="csr")
    order = np.argsort(np.concatenate(positions), kind="stable")
    if not np.array_equal(np.sort(np.concatenate(positions)), np.arange(n)):
        raise RuntimeError("Ray encoding lost or repeated rows")
    return stacked[order].astype(np.float32)
