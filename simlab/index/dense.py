"""Dense vector indexes over faiss: exact (flat) and approximate (HNSW, IVF) top-k search.

Every index type is one small class registered in `INDEX_TYPES`; all share `DenseIndex`'s
build / search / save and the module-level `load`, which dispatches on the saved type.

Scores are always "higher is better": inner products for `metric="ip"` and *negated*
squared L2 distances for `metric="l2"`, so a `Run` built from them ranks correctly.

Saved folder (written atomically through `fsutil.staged_dir`, pickle-free):

    index.faiss     faiss.write_index of the vectors (positions 0..n-1)
    ids.json        the string id of each position
    meta.json       {"format": "simlab.dense-index", "format_version": 1, "type", "model_id",
                     "dim", "metric", "normalized", "params", "n_vectors", "faiss_version",
                     "build_seconds"}

`load` checks the format, the version, the sizes and, when asked, the model id and the
dimension before the index answers a query.

Threads: faiss parallelises with OpenMP over all cores by default. This module never
changes that global at import; pass `threads=` to `search` or use `faiss_threads` to
limit it for a block of code (the previous value is restored).

BLAS for exact search: faiss 1.15 computes a flat search through BLAS only when
`n_queries * dim >= faiss.cvar.distance_compute_blas_threshold` (default 128,000, i.e.
500 queries at dim 256); smaller batches take a per-query loop that is barely faster than
one query at a time (BENCHMARKS.md, 100k x 256: batches of 64 at 213 QPS vs 1,788 with BLAS).
`FlatIndex.search` therefore lowers that global for the duration of a call with at least
`BLAS_MIN_QUERIES` queries and restores it afterwards (one query at a time is faster
without BLAS).

Example:
    >>> import numpy as np
    >>> x = np.eye(4, dtype="float32")
    >>> index = INDEX_TYPES["flat"].build(x, ["a", "b", "c", "d"], model_id="demo", normalized=True)
    >>> ids, scores = index.search(x[:1], k=2)
    >>> ids[0][0], float(scores[0, 0])
    ('a', 1.0)
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np

from simlab.errors import ConfigError, DataError, IndexMismatchError, RunFolderError
from simlab.fsutil import read_meta, staged_dir, write_json

logger = logging.getLogger("simlab.index")

FORMAT_NAME = "simlab.dense-index"
FORMAT_VERSION = 1
METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}
BLAS_MIN_QUERIES = 8
"""A flat search with at least this many queries uses BLAS (see the module docstring)."""


class UnknownIndexTypeError(ConfigError, KeyError):
    """An index type name that is not in `INDEX_TYPES`; the message lists the valid names."""

    __str__ = Exception.__str__  # KeyError would quote the message


class _Registry(dict):
    """`dict[str, type[DenseIndex]]` whose missing keys raise `UnknownIndexTypeError`."""

    def __missing__(self, key: str):
        raise UnknownIndexTypeError(f"unknown dense index type {key!r}; valid types: {', '.join(sorted(self))}.")


INDEX_TYPES: dict[str, type[DenseIndex]] = _Registry()


def _register(cls: type[DenseIndex]) -> type[DenseIndex]:
    INDEX_TYPES[cls.type_name] = cls
    return cls


@contextlib.contextmanager
def faiss_threads(n: int | None) -> Iterator[None]:
    """Run the block with faiss (OpenMP) limited to `n` threads; `None` leaves it unchanged."""
    if n is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


class _BlasThreshold:
    """Set faiss' `distance_compute_blas_threshold` to 1 (always BLAS) while any caller is inside.

    Thread-safe: the first caller to enter saves the global, the last to leave restores it.
    A concurrent search in another thread meanwhile gets BLAS too: same results, other speed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0

    @contextlib.contextmanager
    def lowered(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = faiss.cvar.distance_compute_blas_threshold
                faiss.cvar.distance_compute_blas_threshold = min(self._saved, 1)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    faiss.cvar.distance_compute_blas_threshold = self._saved


_BLAS = _BlasThreshold()


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer.")
    return int(value)


class DenseIndex:
    """A faiss index plus the string ids of its vectors and the facts needed to reuse it.

    Build one with `INDEX_TYPES[name].build(...)` (or a subclass's `build`), reopen a saved
    one with `load`. Subclasses define `type_name`, `defaults` and `_make`.

    Attributes:
        ids: The id of each indexed vector, in insertion order.
        model_id: The encoder that produced the vectors; queries must come from it too.
        metric: `"ip"` or `"l2"`.
        normalized: Whether the vectors were L2-normalised (recorded, not enforced).
        params: The resolved build and search parameters (runtime ones kept current).
        build_seconds: Wall time of training and adding the vectors.
    """

    type_name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        index: faiss.Index,
        ids: list[str],
        *,
        model_id: str,
        metric: str,
        normalized: bool,
        params: dict[str, Any],
        build_seconds: float = 0.0,
    ) -> None:
        self._index = index
        self.ids = list(ids)
        self._id_array = np.asarray(self.ids, dtype=object)  # (n,) for vectorised label -> id
        self.model_id = model_id
        self.metric = metric
        self.normalized = bool(normalized)
        self.params = dict(params)
        self.build_seconds = float(build_seconds)
        self._apply_runtime_params()

    # ----- building ---------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: list[str],
        *,
        metric: str = "ip",
        model_id: str,
        normalized: bool,
        **params: Any,
    ) -> DenseIndex:
        """Index `vectors` (shape `[n, d]`) under the string `ids`.

        Args:
            vectors: Float array `[n, d]`; converted to contiguous float32.
            ids: One unique string id per row.
            metric: `"ip"` (inner product; cosine for normalised vectors) or `"l2"`.
            model_id: The encoder that produced the vectors, checked again at `load`.
            normalized: Whether the rows are L2-normalised (recorded in `meta.json`).
            **params: Type-specific parameters, see each subclass's `defaults`.

        Raises:
            ConfigError: unknown metric or parameter, or an invalid parameter value.
            ValueError: `vectors` is not a non-empty 2-D finite array matching `ids`.
        """
        if cls is DenseIndex:
            raise TypeError("DenseIndex is abstract; use INDEX_TYPES[name].build(...)")
        if metric not in METRICS:
            raise ConfigError(f"metric {metric!r} is unknown; choose one of {', '.join(sorted(METRICS))}.")
        x = _as_matrix(vectors, "vectors")
        if x.shape[0] == 0:
            raise ValueError("vectors is empty: an index needs at least one vector.")
        if len(ids) != x.shape[0]:
            raise ValueError(f"{x.shape[0]} vectors but {len(ids)} ids; give one id per row.")
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique; found duplicates.")
        if not np.isfinite(x).all():
            raise ValueError("vectors contain NaN or inf; check the encoder output.")
        if normalized:
            off = np.abs(np.linalg.norm(x[: min(len(x), 1000)], axis=1) - 1)  # (<=1000,) sampled rows
            if off.max() > 1e-3:
                logger.warning("normalized=True but a vector norm differs from 1 by %.4f", off.max())
        resolved = cls._resolve_params(x.shape[0], params)
        t0 = time.perf_counter()
        index = cls._make(x, METRICS[metric], resolved)
        build_seconds = time.perf_counter() - t0
        return cls(
            index,
            [str(i) for i in ids],
            model_id=model_id,
            metric=metric,
            normalized=normalized,
            params=resolved,
            build_seconds=build_seconds,
        )

    @classmethod
    def _resolve_params(cls, n: int, params: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            valid = ", ".join(sorted(cls.defaults)) or "none"
            raise ConfigError(f"{cls.type_name} index: unknown parameter(s) {unknown}; valid: {valid}.")
        resolved = {**cls.defaults, **{k: v for k, v in params.items() if v is not None}}
        for name, value in resolved.items():
            if name == "seed":
                if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                    raise ConfigError(f"{cls.type_name}.seed={value!r} must be an integer >= 0.")
                resolved[name] = int(value)
            elif value is not None:
                resolved[name] = _positive_int(value, f"{cls.type_name}.{name}")
        return resolved

    @classmethod
    def _make(cls, x: np.ndarray, metric: int, params: dict[str, Any]) -> faiss.Index:
        raise NotImplementedError

    def _apply_runtime_params(self) -> None:
        """Push runtime-tunable `params` (ef_search, nprobe) into the faiss object."""

    # ----- searching --------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={len(self)}, dim={self.dim}, metric={self.metric!r}, "
            f"model_id={self.model_id!r}, params={self.params})"
        )

    def search(self, queries: np.ndarray, k: int, *, threads: int | None = None) -> tuple[list[list[str]], np.ndarray]:
        """The best `k` vectors per query, best first.

        Args:
            queries: `[q, d]` (or one `[d]` query), encoded by the index's model.
            k: Results per query; clipped to the index size.
            threads: Limit faiss to this many threads for this call (None: faiss' setting).

        Returns:
            `(ids, scores)`: `ids[i]` lists query `i`'s result ids; `scores` is a float32
            array `[q, min(k, len(self))]`, higher is better. An approximate index can find
            fewer than `k` vectors for a query: its id list is then shorter and the rest of
            its score row is `-inf`. Ids are never padded with None.

        Raises:
            IndexMismatchError: the query dimension differs from the index dimension.
            ConfigError: `k` is not a positive integer.
        """
        k = min(_positive_int(k, "k"), len(self))
        q = _as_matrix(queries, "queries", allow_1d=True)
        if q.shape[1] != self.dim:
            raise IndexMismatchError(
                f"query dim {q.shape[1]} != index dim {self.dim} (index built with model "
                f"{self.model_id!r}); encode queries with the same model."
            )
        with faiss_threads(threads):
            distances, labels = self._search(q, k)  # (q, k), (q, k)
        found = labels >= 0
        scores = -distances if self.metric == "l2" else distances
        scores = np.where(found, scores, -np.inf).astype(np.float32, copy=False)
        mapped = self._id_array[np.where(found, labels, 0)]  # (q, k) of str
        if found.all():
            return mapped.tolist(), scores
        return [row[ok].tolist() for row, ok in zip(mapped, found)], scores

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self._index.search(q, k)

    # ----- saving -----------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """The `meta.json` record of this index."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "type": self.type_name,
            "model_id": self.model_id,
            "dim": self.dim,
            "metric": self.metric,
            "normalized": self.normalized,
            "params": dict(self.params),
            "n_vectors": len(self),
            "faiss_version": faiss.__version__,
            "build_seconds": round(self.build_seconds, 4),
        }

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write `index.faiss`, `ids.json` and `meta.json` to `folder`, atomically.

        Nothing is left behind when writing fails.

        Raises:
            RunFolderError: `folder` exists and `overwrite` is False.
        """
        folder = Path(folder)
        if folder.exists() and not overwrite:
            raise RunFolderError(f"{folder} already exists; pass overwrite=True or choose another folder.")
        with staged_dir(folder, overwrite=overwrite) as tmp:
            faiss.write_index(self._index, str(tmp / "index.faiss"))
            write_json(tmp / "ids.json", self.ids)
            write_json(tmp / "meta.json", self.meta())
        return folder

    def serialized_nbytes(self) -> int:
        """Bytes `save` would write (index.faiss + ids.json + meta.json), without writing them."""
        total = 0

        def count(chunk: bytes) -> None:
            nonlocal total
            total += len(chunk)

        writer = faiss.PyCallbackIOWriter(count)
        faiss.write_index(self._index, writer)
        del writer
        for obj in (self.ids, self.meta()):
            total += len((json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        return total


@_register
class FlatIndex(DenseIndex):
    """Exact search: every query is compared with every vector (faiss `IndexFlatIP`/`L2`).

    Batches of `BLAS_MIN_QUERIES` or more queries go through BLAS matrix products, so
    batching matters far more here than for the approximate indexes.
    """

    type_name = "flat"
    defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def _make(cls, x, metric, params):
        index = faiss.IndexFlat(x.shape[1], metric)
        index.add(x)
        return index

    def _search(self, q, k):
        if len(q) < BLAS_MIN_QUERIES:
            return self._index.search(q, k)
        with _BLAS.lowered():
            return self._index.search(q, k)


@_register
class HNSWIndex(DenseIndex):
    """Hierarchical navigable small-world graph (faiss `IndexHNSWFlat`).

    Params: `m` (links per node, memory ~ 2*m*4 bytes per vector on top of the vectors),
    `ef_construction` (build beam width), `ef_search` (search beam width, tunable after
    build or load through the `ef_search` property: higher is slower and more exact).
    Building with several threads is not bit-for-bit reproducible.
    """

    type_name = "hnsw"
    defaults: ClassVar[dict[str, Any]] = {"m": 32, "ef_construction": 40, "ef_search": 64}

    @classmethod
    def _make(cls, x, metric, params):
        index = faiss.IndexHNSWFlat(x.shape[1], params["m"], metric)
        index.hnsw.efConstruction = params["ef_construction"]
        index.add(x)
        return index

    def _apply_runtime_params(self) -> None:
        self._index.hnsw.efSearch = self.params["ef_search"]

    @property
    def ef_search(self) -> int:
        """Search beam width (>= 1); values below k are raised to k by faiss."""
        return self.params["ef_search"]

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self.params["ef_search"] = _positive_int(value, "hnsw.ef_search")
        self._apply_runtime_params()


@_register
class IVFIndex(DenseIndex):
    """Inverted file: k-means cells, each query scans the `nprobe` nearest cells (`IndexIVFFlat`).

    Params: `nlist` (cells; default about 4*sqrt(n), clipped so that every cell has at least
    39 training points), `nprobe` (cells scanned per query, tunable after build or load
    through the `nprobe` property; clipped to nlist at build), `train_size` (k-means sample,
    default 64*nlist, at most n), `niter` (k-means iterations) and `seed`. For
    `metric="ip"` the k-means is spherical (unit-norm centroids), which suits normalised
    vectors.
    """

    type_name = "ivf"
    defaults: ClassVar[dict[str, Any]] = {
        "nlist": None,
        "nprobe": 16,
        "train_size": None,
        "niter": 10,
        "seed": 1234,
    }

    @classmethod
    def _resolve_params(cls, n, params):
        resolved = super()._resolve_params(n, params)
        if resolved["nlist"] is None:
            resolved["nlist"] = default_nlist(n)
        if resolved["train_size"] is None:
            resolved["train_size"] = min(n, 64 * resolved["nlist"])
        if resolved["nlist"] > n:
            raise ConfigError(f"ivf.nlist={resolved['nlist']} exceeds the {n} vectors to index.")
        resolved["nprobe"] = min(resolved["nprobe"], resolved["nlist"])  # record what is searched
        resolved["train_size"] = max(resolved["nlist"], min(n, resolved["train_size"]))
        return resolved

    @classmethod
    def _make(cls, x, metric, params):
        n, d = x.shape
        quantizer = faiss.IndexFlat(d, metric)
        index = faiss.IndexIVFFlat(quantizer, d, params["nlist"], metric)
        index.own_fields = True
        quantizer.this.disown()  # the IVF index now frees it
        index.cp.niter = params["niter"]
        index.cp.seed = params["seed"]
        index.cp.max_points_per_centroid = max(256, math.ceil(params["train_size"] / params["nlist"]))
        index.cp.min_points_per_centroid = 1  # faiss only prints a warning below 39; we log it once
        if params["train_size"] < 39 * params["nlist"]:
            logger.warning(
                "ivf: %d training points for nlist=%d (faiss suggests >= 39 per list); fewer lists train better",
                params["train_size"],
                params["nlist"],
            )
        index.cp.spherical = metric == faiss.METRIC_INNER_PRODUCT
        rng = np.random.default_rng(params["seed"])
        sample = x
        if params["train_size"] < n:
            sample = x[np.sort(rng.choice(n, params["train_size"], replace=False))]  # (train_size, d)
        index.train(sample)
        index.add(x)
        return index

    def _apply_runtime_params(self) -> None:
        self._index.nprobe = self.params["nprobe"]

    @property
    def nprobe(self) -> int:
        """Cells scanned per query, 1..nlist."""
        return self.params["nprobe"]

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        value = _positive_int(value, "ivf.nprobe")
        if value > self.params["nlist"]:
            raise ConfigError(f"ivf.nprobe={value} exceeds nlist={self.params['nlist']}.")
        self.params["nprobe"] = value
        self._apply_runtime_params()


def default_nlist(n: int) -> int:
    """About 4*sqrt(n) cells, at most n // 39 (faiss wants >= 39 training points per cell)."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39, 65536))


def index_class(name: str) -> type[DenseIndex]:
    """The class registered as `name`; `UnknownIndexTypeError` lists the valid names."""
    return INDEX_TYPES[name]


def load(folder: str | Path, *, expect_model_id: str | None = None, expect_dim: int | None = None) -> DenseIndex:
    """Open an index written by `DenseIndex.save`, checking it before it answers queries.

    Args:
        folder: The saved index folder.
        expect_model_id: If given, the model the index must have been built with.
        expect_dim: If given, the dimension the index must have (e.g. the model's).

    Raises:
        DataError: `folder` is not a simlab dense index, or its files disagree.
        IndexMismatchError: a newer format version, or another model id / dimension.
        UnknownIndexTypeError: `meta.json` names a type this simlab does not know.
    """
    folder = Path(folder)
    meta = read_meta(
        folder,
        FORMAT_NAME,
        FORMAT_VERSION,
        "simlab dense index",
        "build one with INDEX_TYPES[type].build(vectors, ids, ...).save(folder)",
    )
    cls = index_class(meta.get("type"))
    if expect_model_id is not None and meta.get("model_id") != expect_model_id:
        raise IndexMismatchError(
            f"{folder}: index built with model {meta.get('model_id')!r}, but model {expect_model_id!r} "
            "was expected; rebuild the index with this model or load the model the index was built with."
        )
    if expect_dim is not None and meta.get("dim") != expect_dim:
        raise IndexMismatchError(
            f"{folder}: index dim {meta.get('dim')} != expected dim {expect_dim} (index built with model "
            f"{meta.get('model_id')!r}); encode with the same model or rebuild the index."
        )
    for name in ("index.faiss", "ids.json"):
        if not (folder / name).is_file():
            raise DataError(f"{folder / name} is missing; the index folder is incomplete, rebuild it.")
    index = faiss.read_index(str(folder / "index.faiss"))
    ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
    sizes = {"meta.json": meta.get("n_vectors"), "ids.json": len(ids), "index.faiss": index.ntotal}
    if len(set(sizes.values())) != 1 or index.d != meta.get("dim"):
        raise DataError(
            f"{folder}: the index files disagree: sizes {sizes}, dim {index.d} vs meta.json "
            f"{meta.get('dim')}; rebuild the index."
        )
    return cls(
        index,
        ids,
        model_id=meta["model_id"],
        metric=meta["metric"],
        normalized=meta["normalized"],
        params=meta["params"],
        build_seconds=meta.get("build_seconds", 0.0),
    )


def _as_matrix(a: np.ndarray, name: str, allow_1d: bool = False) -> np.ndarray:
    """`a` as a C-contiguous float32 `[n, d]` array (a copy only when needed)."""
    a = np.asarray(a)
    if allow_1d and a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D array [n, d] with d >= 1, got shape {a.shape}.")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must hold numbers, got dtype {a.dtype}.")
    return np.ascontiguousarray(a, dtype=np.float32)
