r"""Speed and agreement measurements for dense indexes, shared by the runner and the benchmarks.

`measure_search` times any object with `search(queries, k)` one query at a time (bounded in
count and seconds, so it never takes long) and in batches. `overlap_at_k` is a pure
per-query metric:

$$
\mathrm{overlap@}k(q) = \frac{|E_k(q) \cap A_k(q)|}{|E_k(q)|}
$$

where $E_k(q)$ is the exact top $k$ of query $q$ and $A_k(q)$ the approximate top $k$: the
recall@k of the approximate index against exact search.

No faiss import here: these helpers work on any index object.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class SupportsSearch(Protocol):
    def search(self, queries: np.ndarray, k: int) -> Any: ...


@dataclass(frozen=True)
class SearchTiming:
    """Throughput and latency of one index on one query set.

    Attributes:
        qps_single: Queries per second, one query per `search` call (median over repeats).
        qps_batched: Queries per second, `batch_size` queries per call (median over repeats).
        p50_ms: Median single-query latency, milliseconds.
        p95_ms: 95th percentile single-query latency, milliseconds.
        n_single: Queries timed one at a time (per repeat).
        n_batched: Queries timed in batches (per repeat).
        batch_size: Queries per batched call.
        repeats: Number of timed repetitions.
    """

    qps_single: float
    qps_batched: float
    p50_ms: float
    p95_ms: float
    n_single: int
    n_batched: int
    batch_size: int
    repeats: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def measure_search(
    index: SupportsSearch,
    queries: np.ndarray,
    k: int,
    *,
    batch_size: int | None = None,
    max_single: int = 200,
    max_single_seconds: float = 2.0,
    repeats: int = 1,
) -> SearchTiming:
    """Time `index.search` on `queries` ([q, d]), one at a time and batched.

    The single-query pass stops after `max_single` queries or once `max_single_seconds`
    have elapsed (after at least 5 queries), whichever comes first. One warm-up call
    precedes the timings.

    Args:
        index: Any object with `search(queries, k)`.
        queries: `[q, d]` float32 query vectors (or a scipy sparse matrix, for sparse indexes).
        k: Results per query.
        batch_size: Queries per batched call; None means all queries in one call.
        max_single: At most this many queries are timed one at a time.
        max_single_seconds: Time budget of one single-query pass.
        repeats: Repeat both passes and report medians.

    Raises:
        ValueError: no queries, or a non-positive batch size / repeat count.
    """
    if not hasattr(queries, "tocsr"):  # scipy sparse query matrices (sparse indexes) are timed as they are
        queries = np.ascontiguousarray(queries, dtype=np.float32)
    n = queries.shape[0]
    if queries.ndim != 2 or n == 0:
        raise ValueError(f"queries must be a non-empty [q, d] array, got shape {queries.shape}.")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be >= 1 or None.")
    if repeats < 1 or max_single < 1:
        raise ValueError(f"repeats={repeats!r} and max_single={max_single!r} must be >= 1.")
    bs = n if batch_size is None else min(batch_size, n)
    index.search(queries[:1], k)  # warm-up

    latencies: list[float] = []
    single_qps: list[float] = []
    n_single = 0
    for _ in range(repeats):
        pass_lat = []
        start = time.perf_counter()
        for i in range(min(n, max_single)):
            t0 = time.perf_counter()
            index.search(queries[i : i + 1], k)
            pass_lat.append(time.perf_counter() - t0)
            if len(pass_lat) >= 5 and time.perf_counter() - start > max_single_seconds:
                break
        latencies += pass_lat
        single_qps.append(len(pass_lat) / sum(pass_lat))
        n_single = len(pass_lat)

    batched_qps = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for s in range(0, n, bs):
            index.search(queries[s : s + bs], k)
        batched_qps.append(n / (time.perf_counter() - t0))

    lat_ms = np.asarray(latencies) * 1e3
    return SearchTiming(
        qps_single=statistics.median(single_qps),
        qps_batched=statistics.median(batched_qps),
        p50_ms=float(np.percentile(lat_ms, 50)),
        p95_ms=float(np.percentile(lat_ms, 95)),
        n_single=n_single,
        n_batched=n,
        batch_size=bs,
        repeats=repeats,
    )


def overlap_at_k(exact_ids: Sequence[Sequence], approx_ids: Sequence[Sequence], k: int = 10) -> np.ndarray:
    """Per query, the share of the exact top `k` found in the approximate top `k`.

    Args:
        exact_ids: Per query, ids ranked by exact search (best first).
        approx_ids: Per query, ids ranked by the approximate index; same query order.
        k: Cut-off applied to both lists.

    Returns:
        float array `[n_queries]` in [0, 1]; NaN where the exact list is empty.

    Example:
        >>> overlap_at_k([["a", "b"], ["c", "d"]], [["b", "x"], ["c", "d"]], k=2).tolist()
        [0.5, 1.0]

    Raises:
        ValueError: the two lists cover different numbers of queries, or `k` < 1.
    """
    if len(exact_ids) != len(approx_ids):
        raise ValueError(f"exact_ids has {len(exact_ids)} queries but approx_ids has {len(approx_ids)}.")
    if k < 1:
        raise ValueError(f"k={k!r} must be >= 1.")
    out = np.full(len(exact_ids), np.nan)
    for i, (exact, approx) in enumerate(zip(exact_ids, approx_ids)):
        truth = {x for x in list(exact)[:k] if x is not None}
        if truth:
            out[i] = len(truth.intersection(list(approx)[:k])) / len(truth)
    return out


def index_size_bytes(obj: str | Path | Any) -> int:
    """Size of a saved index folder (its files, not simlab's file list `fsutil.MANIFEST`), or what `save`
    would write for an index object.

    Raises:
        FileNotFoundError: a path that does not exist.
        TypeError: neither a path nor an object with `serialized_nbytes()`.
    """
    if isinstance(obj, (str, Path)):
        path = Path(obj)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such index folder.")
        if path.is_file():
            return path.stat().st_size
        from simlab.fsutil import MANIFEST

        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != MANIFEST)
    nbytes = getattr(obj, "serialized_nbytes", None)
    if nbytes is None:
        raise TypeError(f"index_size_bytes expects a folder or a DenseIndex, got {type(obj).__name__}.")
    return int(nbytes())
