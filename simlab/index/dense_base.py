"""`DenseIndex`: the build / search / save that every dense index type shares.

A `DenseIndex` is a faiss index plus the string ids of its vectors and the facts needed to
reuse it (model id, metric, normalisation, parameters). The index types (flat, HNSW, IVF),
their registry `INDEX_TYPES` and `load` are in `simlab.index.dense`.

Scores are always "higher is better": inner products for `metric="ip"` and *negated*
squared L2 distances for `metric="l2"`, so a `Run` built from them ranks correctly.

Saved folder (written atomically through `fsutil.staged_dir`, pickle-free):

    index.faiss     faiss.write_index of the vectors (positions 0..n-1)
    ids.json        the string id of each position
    meta.json       {"format": "simlab.dense-index", "format_version": 1, "type", "model_id",
                     "dim", "metric", "normalized", "params", "n_vectors", "faiss_version",
                     "build_seconds"}
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from simlab.errors import ConfigError, IndexMismatchError, RunFolderError
from simlab.fsutil import staged_dir, write_json
from simlab.index.faiss_runtime import faiss, faiss_threads

logger = logging.getLogger("simlab.index")

FORMAT_NAME = "simlab.dense-index"
FORMAT_VERSION = 1
METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}


def positive_int(value: Any, name: str) -> int:
    """`value` as an int; `ConfigError` naming `name` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer.")
    return int(value)


class UnknownIndexTypeError(ConfigError, KeyError):
    """An index type name that is not in `INDEX_TYPES`; the message lists the valid names."""

    __str__ = Exception.__str__  # KeyError would quote the message


class _Registry(dict):
    """`dict[str, type[DenseIndex]]` whose missing keys raise `UnknownIndexTypeError`."""

    def __missing__(self, key: str):
        raise UnknownIndexTypeError(f"unknown dense index type {key!r}; valid types: {', '.join(sorted(self))}.")


INDEX_TYPES: dict[str, type[DenseIndex]] = _Registry()


def register_index(cls: type[DenseIndex]) -> type[DenseIndex]:
    """Class decorator: add a `DenseIndex` subclass to `INDEX_TYPES` under its `type_name`, so
    `index.approximate: [<type_name>]` builds it (its `defaults` are its build parameters)."""
    INDEX_TYPES[cls.type_name] = cls
    return cls


def default_nlist(n: int) -> int:
    """About 4*sqrt(n) cells, at most n // 39 (faiss wants >= 39 training points per cell)."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39, 65536))


def resolve_ivf_params(type_name: str, n: int, resolved: dict[str, Any]) -> dict[str, Any]:
    """Fill an IVF type's `nlist` (default `default_nlist(n)`) and `train_size` (default 64*nlist, at most
    n) and clip `nprobe` to nlist, so `params` records what is searched."""
    if resolved["nlist"] is None:
        resolved["nlist"] = default_nlist(n)
    if resolved["train_size"] is None:
        resolved["train_size"] = min(n, 64 * resolved["nlist"])
    if resolved["nlist"] > n:
        raise ConfigError(f"{type_name}.nlist={resolved['nlist']} exceeds the {n} vectors to index.")
    resolved["nprobe"] = min(resolved["nprobe"], resolved["nlist"])
    resolved["train_size"] = max(resolved["nlist"], min(n, resolved["train_size"]))
    return resolved


def train_ivf(index: faiss.Index, ivf: faiss.IndexIVF, x: np.ndarray, metric: int, params: dict[str, Any]) -> None:
    """Train `index` (whose inverted file is `ivf`) on a seeded sample of `train_size` rows of `x`: k-means
    with `niter` iterations, spherical for inner product (unit-norm centroids, which suits normalised vectors)."""
    n = len(x)
    ivf.cp.niter = params["niter"]
    ivf.cp.seed = params["seed"]
    ivf.cp.max_points_per_centroid = max(256, math.ceil(params["train_size"] / params["nlist"]))
    ivf.cp.min_points_per_centroid = 1  # faiss only prints a warning below 39; we log it once
    if params["train_size"] < 39 * params["nlist"]:
        logger.warning(
            "%s: %d training points for nlist=%d (faiss suggests >= 39 per list); fewer lists train better",
            type(index).__name__,
            params["train_size"],
            params["nlist"],
        )
    ivf.cp.spherical = metric == faiss.METRIC_INNER_PRODUCT
    sample = x
    if params["train_size"] < n:
        rng = np.random.default_rng(params["seed"])
        sample = x[np.sort(rng.choice(n, params["train_size"], replace=False))]  # (train_size, d)
    index.train(sample)


def _warn_unnormalized(x: np.ndarray, ids) -> None:
    """Warn, naming the rows, when sampled rows of vectors said to be normalised are not unit-length.

    A norm of 0 is a text the encoder gave nothing for (an empty document, most often).
    """
    norms = np.linalg.norm(x[: min(len(x), 1000)], axis=1)  # (<=1000,) sampled rows
    bad = np.flatnonzero(np.abs(norms - 1) > 1e-3)
    if len(bad):
        shown = ", ".join(f"{ids[i]} (norm {norms[i]:.4f})" for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        logger.warning(
            "normalized=True but %d of the first %d vectors are not unit-length: id %s; a norm of 0 is an empty text",
            len(bad),
            len(norms),
            shown,
        )


class DenseIndex:
    """A faiss index plus the string ids of its vectors and the facts needed to reuse it.

    Build one with `simlab.index.dense.INDEX_TYPES[name].build(...)` (or a subclass's
    `build`), reopen a saved one with `simlab.index.dense.load`. Subclasses define
    `type_name`, `defaults` and `_make`.

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
            _warn_unnormalized(x, ids)
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
                resolved[name] = positive_int(value, f"{cls.type_name}.{name}")
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
        k = min(positive_int(k, "k"), len(self))
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
