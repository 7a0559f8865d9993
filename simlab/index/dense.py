"""Dense vector indexes over faiss: exact (flat) and approximate (HNSW, IVF, and compressed codes with
exact re-ranking: `ivfpq_refine`, `pq_refine` in `simlab.index.dense_refine`) top-k search.

Every index type is one small class registered in `INDEX_TYPES`; all share the build /
search / save of `simlab.index.dense_base.DenseIndex` (which also describes the saved
folder and the scores) and the module-level `load`, which dispatches on the saved type.

`load` checks the format, the version, the sizes and, when asked, the model id and the
dimension before the index answers a query.

Threads and BLAS: faiss' process-wide settings are changed only for a block of code, by
`simlab.index.faiss_runtime` (pass `threads=` to `search` to limit the OpenMP threads of
one call). A flat search of a small batch takes faiss' per-query loop, barely faster than
one query at a time (BENCHMARKS.md, 100k x 256: batches of 64 at 213 QPS vs 1,788 with
BLAS); `FlatIndex.search` therefore computes every call with at least `BLAS_MIN_QUERIES`
queries through BLAS (`faiss_runtime.always_blas`); one query at a time is faster without.

Example:
    >>> import numpy as np
    >>> x = np.eye(4, dtype="float32")
    >>> index = INDEX_TYPES["flat"].build(x, ["a", "b", "c", "d"], model_id="demo", normalized=True)
    >>> ids, scores = index.search(x[:1], k=2)
    >>> ids[0][0], float(scores[0, 0])
    ('a', 1.0)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

from simlab.errors import ConfigError, DataError, IndexMismatchError
from simlab.fsutil import read_meta
from simlab.index.dense_base import (
    FORMAT_NAME,
    FORMAT_VERSION,
    INDEX_TYPES,
    DenseIndex,
    UnknownIndexTypeError,
    default_nlist,
    positive_int,
    register_index,
    resolve_ivf_params,
    train_ivf,
)
from simlab.index.dense_refine import (  # registers the compressed + refine types
    HNSWSQRefineIndex,
    IVFPQRefineIndex,
    PQRefineIndex,
)
from simlab.index.faiss_runtime import always_blas, faiss

logger = logging.getLogger("simlab.index")

__all__ = [
    "INDEX_TYPES",
    "DenseIndex",
    "FlatIndex",
    "HNSWIndex",
    "HNSWSQRefineIndex",
    "IVFIndex",
    "IVFPQRefineIndex",
    "PQRefineIndex",
    "UnknownIndexTypeError",
    "default_nlist",
    "index_class",
    "load",
    "register_index",
]

BLAS_MIN_QUERIES = 8
"""A flat search with at least this many queries uses BLAS (see the module docstring)."""


@register_index
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
        with always_blas():
            return self._index.search(q, k)


@register_index
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
        self.params["ef_search"] = positive_int(value, "hnsw.ef_search")
        self._apply_runtime_params()


@register_index
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
        return resolve_ivf_params(cls.type_name, n, super()._resolve_params(n, params))

    @classmethod
    def _make(cls, x, metric, params):
        quantizer = faiss.IndexFlat(x.shape[1], metric)
        index = faiss.IndexIVFFlat(quantizer, x.shape[1], params["nlist"], metric)
        index.own_fields = True
        quantizer.this.disown()  # the IVF index now frees it
        train_ivf(index, index, x, metric, params)
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
        value = positive_int(value, "ivf.nprobe")
        if value > self.params["nlist"]:
            raise ConfigError(f"ivf.nprobe={value} exceeds nlist={self.params['nlist']}.")
        self.params["nprobe"] = value
        self._apply_runtime_params()


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
        DataError: `folder` is not a simlab dense index, a file is unreadable (a truncated
            `index.faiss`, `ids.json` not JSON), or its files disagree.
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
    try:
        index = faiss.read_index(str(folder / "index.faiss"))
    except RuntimeError as e:  # truncated or not a faiss file
        reason = str(e).rsplit("failed: ", 1)[-1].strip()
        raise DataError(
            f"{folder / 'index.faiss'}: cannot be read by faiss ({reason}); the file is truncated or damaged, "
            "rebuild the index (re-run the experiment)."
        ) from None
    try:
        ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(
            f"{folder / 'ids.json'}:{getattr(e, 'lineno', 1)}: invalid JSON ({getattr(e, 'msg', e)}); "
            "the index folder is damaged, rebuild the index (re-run the experiment)."
        ) from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DataError(f"{folder / 'ids.json'}: not a list of string ids; rebuild the index (re-run the experiment).")
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
