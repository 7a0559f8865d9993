"""Compressed codes with exact re-ranking: approximate dense indexes that stay fast in batches.

Exact batched search is a matrix product at BLAS speed, so an approximate index only beats it
batched if it touches far less data per query. These types search compressed codes (4-bit
product-quantizer codes scanned with faiss' SIMD "fast-scan" kernels: `pq_m / 2` bytes per vector
instead of `4 * dim`; or 8-bit scalar codes under an HNSW graph), keep
`k_factor * k` candidates, and re-rank them with the exact float vectors (faiss
`IndexRefineFlat`, the `,RFlat` of `faiss.index_factory`). The candidates' order comes from
the codes, the final scores are exact inner products (or L2 distances), so a true neighbour is
found whenever it is among the candidates.

- `ivfpq_refine`: `IVF{nlist},PQ{pq_m}x4fsr,RFlat`: k-means cells as in `ivf`, the residuals to the
  cell centroid PQ-coded; a query scans the codes of its `nprobe` nearest cells.
- `pq_refine`: `PQ{pq_m}x4fs,RFlat`: no cells, every code is scanned (recall depends only on
  `pq_m` and `k_factor`; cost grows with n).
- `hnsw_sq_refine`: `HNSW{m},SQ8,RFlat`: an HNSW graph whose walk reads 8-bit codes (1 byte per
  dimension instead of 4); its recall is the graph's (`ef_search`), the re-ranking makes scores exact.

Memory: the float vectors (kept for re-ranking) plus the codes, `pq_m / 2` bytes per vector
(`dim` bytes and the graph's links for `hnsw_sq_refine`); `index_size_bytes` of the saved folder
reports it all. Saved like every `DenseIndex`
(`index.faiss` holds the codes, the vectors and the coarse centroids).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((2000, 16)).astype("float32")
    >>> index = PQRefineIndex.build(x, [str(i) for i in range(2000)], model_id="demo", normalized=False, k_factor=50)
    >>> index.search(x[:1], k=1)[0]
    [['0']]
"""

from __future__ import annotations

from typing import Any, ClassVar

from simlab.errors import ConfigError
from simlab.index.dense_base import DenseIndex, positive_int, register_index, resolve_ivf_params, train_ivf
from simlab.index.faiss_runtime import faiss


def resolve_pq_m(type_name: str, dim: int, pq_m: int | None) -> int:
    """`pq_m` (4-bit sub-quantizers per vector), default dim/4; `ConfigError` unless it divides `dim`."""
    if pq_m is None:
        pq_m = next(m for m in (dim // 4, dim // 2, dim) if m >= 1 and dim % m == 0)
    if dim % pq_m:
        divisors = [m for m in (dim // 8, dim // 4, dim // 2) if m >= 1 and dim % m == 0]
        raise ConfigError(f"{type_name}.pq_m={pq_m} must divide the vector dimension {dim}; e.g. {divisors or [dim]}.")
    return pq_m


class _Refined(DenseIndex):
    """A compressed-code faiss index wrapped in `IndexRefineFlat`; `k_factor` is tunable after build or load."""

    def _apply_runtime_params(self) -> None:
        self._index.k_factor = float(self.params["k_factor"])

    @property
    def k_factor(self) -> int:
        """Candidates re-ranked exactly per query, as a multiple of k (>= 1; higher is slower and more exact)."""
        return self.params["k_factor"]

    @k_factor.setter
    def k_factor(self, value: int) -> None:
        self.params["k_factor"] = positive_int(value, f"{self.type_name}.k_factor")
        self._apply_runtime_params()

    @classmethod
    def _check_dim(cls, x, params) -> str:
        """The faiss PQ code string for `x`'s dimension; fills `params['pq_m']`."""
        params["pq_m"] = resolve_pq_m(cls.type_name, x.shape[1], params["pq_m"])
        return f"PQ{params['pq_m']}x4fs"


@register_index
class IVFPQRefineIndex(_Refined):
    """IVF cells over 4-bit PQ fast-scan codes of the residuals, exact re-ranking of `k_factor * k`.

    Params: `nlist`, `nprobe`, `train_size`, `niter`, `seed` as for `ivf` (`IVFIndex`); `pq_m`
    (sub-quantizers, each coding dim/pq_m dimensions in 4 bits; default dim/4) and `k_factor`.
    `nprobe` and `k_factor` are tunable after build or load through their properties.
    """

    type_name = "ivfpq_refine"
    defaults: ClassVar[dict[str, Any]] = {
        "nlist": None,
        "nprobe": 256,
        "pq_m": None,
        "k_factor": 16,
        "train_size": None,
        "niter": 10,
        "seed": 1234,
    }

    @classmethod
    def _resolve_params(cls, n, params):
        return resolve_ivf_params(cls.type_name, n, super()._resolve_params(n, params))

    @classmethod
    def _make(cls, x, metric, params):
        code = cls._check_dim(x, params)
        index = faiss.index_factory(x.shape[1], f"IVF{params['nlist']},{code}r,RFlat", metric)
        train_ivf(index, faiss.extract_index_ivf(index), x, metric, params)
        index.add(x)
        return index

    def _apply_runtime_params(self) -> None:
        super()._apply_runtime_params()
        faiss.extract_index_ivf(self._index).nprobe = self.params["nprobe"]

    @property
    def nprobe(self) -> int:
        """Cells scanned per query, 1..nlist."""
        return self.params["nprobe"]

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        value = positive_int(value, f"{self.type_name}.nprobe")
        if value > self.params["nlist"]:
            raise ConfigError(f"{self.type_name}.nprobe={value} exceeds nlist={self.params['nlist']}.")
        self.params["nprobe"] = value
        self._apply_runtime_params()


@register_index
class PQRefineIndex(_Refined):
    """Every vector's 4-bit PQ fast-scan code scanned, exact re-ranking of `k_factor * k` candidates.

    Params: `pq_m` (default dim/4), `k_factor` (tunable after build or load), `seed` (PQ training).
    """

    type_name = "pq_refine"
    defaults: ClassVar[dict[str, Any]] = {"pq_m": None, "k_factor": 32, "train_size": 65536, "seed": 1234}

    @classmethod
    def _resolve_params(cls, n, params):
        resolved = super()._resolve_params(n, params)
        resolved["train_size"] = min(n, resolved["train_size"])  # record what was trained on
        return resolved

    @classmethod
    def _make(cls, x, metric, params):
        index = faiss.index_factory(x.shape[1], f"{cls._check_dim(x, params)},RFlat", metric)
        index.train(_sample(x, params["train_size"], params["seed"]))
        index.add(x)
        return index


@register_index
class HNSWSQRefineIndex(_Refined):
    """An HNSW graph over 8-bit scalar-quantized vectors (faiss `IndexHNSWSQ`), exact re-ranking of `k_factor * k`.

    The graph walk reads 1 byte per dimension instead of 4, so a wide `ef_search` costs less than
    with `hnsw`; the re-ranking restores exact scores. Params: `m`, `ef_construction`, `ef_search`
    as for `hnsw` (`ef_search` and `k_factor` tunable after build or load), `train_size` and
    `seed` (the sample that sets the 8-bit ranges).
    """

    type_name = "hnsw_sq_refine"
    defaults: ClassVar[dict[str, Any]] = {
        "m": 32,
        "ef_construction": 200,
        "ef_search": 512,
        "k_factor": 4,
        "train_size": 65536,
        "seed": 1234,
    }

    @classmethod
    def _resolve_params(cls, n, params):
        resolved = super()._resolve_params(n, params)
        resolved["train_size"] = min(n, resolved["train_size"])
        return resolved

    @classmethod
    def _make(cls, x, metric, params):
        index = faiss.index_factory(x.shape[1], f"HNSW{params['m']},SQ8,RFlat", metric)
        faiss.downcast_index(index.base_index).hnsw.efConstruction = params["ef_construction"]
        index.train(_sample(x, params["train_size"], params["seed"]))
        index.add(x)
        return index

    def _apply_runtime_params(self) -> None:
        super()._apply_runtime_params()
        faiss.downcast_index(self._index.base_index).hnsw.efSearch = self.params["ef_search"]

    @property
    def ef_search(self) -> int:
        """Search beam width of the graph walk (>= 1); faiss raises it to k * k_factor when smaller."""
        return self.params["ef_search"]

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self.params["ef_search"] = positive_int(value, f"{self.type_name}.ef_search")
        self._apply_runtime_params()


def _sample(x, size: int, seed: int):
    """`size` rows of `x` drawn with `seed` (all of `x` when it has no more rows)."""
    import numpy as np

    if size >= len(x):
        return x
    rng = np.random.default_rng(seed)
    return x[np.sort(rng.choice(len(x), size, replace=False))]  # (size, d)
