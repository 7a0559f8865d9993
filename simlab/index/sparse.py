r"""Sparse (learned lexical) indexes: exact inverted-index search and approximate Seismic.

The score of a document is the dot product of the query and document vectors over the
vocabulary, $s(q, d) = \sum_{t} q_t d_t$, summed over the terms both have.

- `exact` keeps the document matrix transposed, as scipy CSR `[vocab, n_docs]`: row $t$ is
  the posting list of term $t$. A query batch `Q` (`[b, vocab]` CSR) is scored as the sparse
  product `Q @ D^T`, which reads only the posting lists of the query terms (an
  inverted-index traversal, done by scipy's compiled kernel), then a top-k per row over the
  documents that share a term with the query.
- `seismic` is pyseismic-lsr's approximate index (Bruch et al., SIGIR 2024): posting lists
  pruned to the `n_postings` heaviest entries, grouped in blocks with summary vectors that
  let a query skip blocks; `query_cut` and `heap_factor` trade speed for recall at search
  time. Trap of the library: `batch_search` returns the queries' results out of input
  order; they are matched back by query id here.

Saved folder (written atomically through `fsutil.staged_dir`, pickle-free):

    matrix.npz          exact: scipy.sparse.save_npz of the [vocab, n_docs] posting matrix
    index.seismic       seismic: SeismicIndex.save
    ids.json            the string id of each document position
    meta.json           {"format": "simlab.sparse-index", "format_version": 1, "type", "model_id",
                         "vocab_size", "vocab_sha256", "params", "n_docs", "nnz", "build_seconds"}

`load` checks the format and, when given the model's vocabulary fingerprint
(`simlab.models.sparse.vocabulary_fingerprint`), refuses an index built over another
vocabulary: its term ids would mean other tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from simlab.errors import ConfigError, DataError, IndexMismatchError, RunFolderError
from simlab.fsutil import read_meta, staged_dir, write_json

FORMAT_NAME = "simlab.sparse-index"
FORMAT_VERSION = 1


def as_csr(x: Any, vocab_size: int | None = None, name: str = "queries") -> sp.csr_matrix:
    """`x` (scipy sparse, dense array, one row or many) as float32 CSR `[n, vocab]`."""
    m = x if sp.issparse(x) else np.asarray(x, dtype=np.float32)
    if not sp.issparse(m) and m.ndim == 1:
        m = m[None, :]
    if not (isinstance(m, sp.csr_matrix) and m.dtype == np.float32):
        m = sp.csr_matrix(m, dtype=np.float32)
    if vocab_size is not None and m.shape[1] != vocab_size:
        raise IndexMismatchError(
            f"{name} have {m.shape[1]} vocabulary dimensions but the index has {vocab_size}; "
            "encode with the model the index was built with."
        )
    return m


def _topk_sparse_rows(scores: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of the sparse `scores` `[b, n]`: (positions, values) of the k largest stored entries, best first
    (ties by position), padded with position 0 and -inf.

    Only the stored entries (the documents sharing a term with the query) are ranked: a dense
    row of every document and a top-k over it cost twice the sparse product itself here.
    """
    b = scores.shape[0]
    pos = np.zeros((b, k), dtype=np.int64)
    val = np.full((b, k), -np.inf, dtype=np.float32)
    for i in range(b):
        lo, hi = scores.indptr[i], scores.indptr[i + 1]
        cols, data = scores.indices[lo:hi], scores.data[lo:hi]
        if len(data) > k:  # the k-th largest score, then every entry at or above it (ties included)
            keep = np.flatnonzero(data >= data[np.argpartition(-data, k - 1)[k - 1]])
            cols, data = cols[keep], data[keep]
        order = np.lexsort((cols, -data))[:k]  # score descending, then position
        pos[i, : len(order)], val[i, : len(order)] = cols[order], data[order]
    return pos, val


class SparseIndex:
    """Documents' sparse vectors under string ids, searchable by sparse query vectors.

    Build with `SPARSE_INDEX_TYPES[name].build(...)`, reopen with `load`.

    Attributes:
        ids: Document id of each position.
        model_id: The encoder that produced the vectors.
        vocab: `{"vocab_size", "vocab_sha256"}` of the encoder's tokenizer.
        params: Build and search parameters.
        build_seconds: Wall time of building.
    """

    type_name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    files: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ids: list[str], *, model_id: str, vocab: dict, params: dict, build_seconds: float = 0.0):
        self.ids = list(ids)
        self._id_array = np.asarray(self.ids, dtype=object)
        self.model_id = model_id
        self.vocab = dict(vocab)
        self.params = dict(params)
        self.build_seconds = float(build_seconds)

    @property
    def vocab_size(self) -> int:
        return int(self.vocab["vocab_size"])

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, docs: Any, ids: list[str], *, model_id: str, vocab: dict, **params: Any) -> SparseIndex:
        """Index the rows of `docs` (`[n, vocab]`, scipy sparse or dense) under `ids`.

        Raises:
            ConfigError: an unknown parameter.
            ValueError: no rows, ids that do not match the rows or are not unique, negative or
                non-finite weights, or a width other than `vocab["vocab_size"]`.
        """
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            raise ConfigError(
                f"{cls.type_name} index: unknown parameter(s) {unknown}; valid: {', '.join(sorted(cls.defaults))}."
            )
        resolved = {**cls.defaults, **{k: v for k, v in params.items() if v is not None}}
        d = as_csr(docs, name="documents")
        if d.shape[0] == 0:
            raise ValueError("documents is empty: an index needs at least one document.")
        if d.shape[1] != vocab["vocab_size"]:
            raise ValueError(f"documents have {d.shape[1]} columns but the vocabulary has {vocab['vocab_size']}.")
        if len(ids) != d.shape[0] or len(set(ids)) != len(ids):
            raise ValueError(
                f"{d.shape[0]} documents need {d.shape[0]} unique ids, got {len(ids)} ({len(set(ids))} unique)."
            )
        if d.nnz and (not np.isfinite(d.data).all() or d.data.min() < 0):
            raise ValueError("document weights must be finite and >= 0 (SPLADE vectors are).")
        d.sum_duplicates()
        d.eliminate_zeros()
        d.sort_indices()
        t0 = time.perf_counter()
        state = cls._make(d, resolved)
        index = cls([str(i) for i in ids], model_id=model_id, vocab=vocab, params=resolved)
        index._set_state(state)
        index.build_seconds = time.perf_counter() - t0
        return index

    @classmethod
    def _make(cls, docs: sp.csr_matrix, params: dict) -> Any:
        raise NotImplementedError

    def _set_state(self, state: Any) -> None:
        raise NotImplementedError

    def search(self, queries: Any, k: int) -> tuple[list[list[str]], np.ndarray]:
        """The best `k` documents per query row, best first.

        Returns:
            `(ids, scores)`: ids per query (shorter than k when fewer documents match
            any query term) and a float32 `[q, k]` score array padded with -inf.

        Raises:
            IndexMismatchError: the queries' width is not the index vocabulary size.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k={k!r} must be a positive integer.")
        q = as_csr(queries, self.vocab_size)
        k = min(int(k), len(self))
        return self._search(q, k)

    def _search(self, q: sp.csr_matrix, k: int) -> tuple[list[list[str]], np.ndarray]:
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "type": self.type_name,
            "model_id": self.model_id,
            "vocab_size": self.vocab_size,
            "vocab_sha256": self.vocab.get("vocab_sha256"),
            "params": dict(self.params),
            "n_docs": len(self),
            "build_seconds": round(self.build_seconds, 4),
        }

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the index files, ids.json and meta.json to `folder`, atomically."""
        folder = Path(folder)
        if folder.exists() and not overwrite:
            raise RunFolderError(f"{folder} already exists; pass overwrite=True or choose another folder.")
        with staged_dir(folder, overwrite=overwrite) as tmp:
            self._save(tmp)
            write_json(tmp / "ids.json", self.ids)
            write_json(tmp / "meta.json", self.meta())
        return folder

    def _save(self, folder: Path) -> None:
        raise NotImplementedError

    def serialized_nbytes(self) -> int:
        """Bytes `save` writes (measured by saving to a temporary folder)."""
        with tempfile.TemporaryDirectory() as tmp:
            out = self.save(Path(tmp) / "index")
            return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


class ExactSparseIndex(SparseIndex):
    """Exhaustive search: the sparse product of the queries with the posting matrix."""

    type_name = "exact"
    defaults: ClassVar[dict[str, Any]] = {"batch_size": 256}
    files = ("matrix.npz",)

    @classmethod
    def _make(cls, docs: sp.csr_matrix, params: dict) -> sp.csr_matrix:
        return docs.T.tocsr()  # (vocab, n_docs): row t = posting list of term t

    def _set_state(self, state: sp.csr_matrix) -> None:
        self.postings = state

    @property
    def nnz(self) -> int:
        return int(self.postings.nnz)

    def _search(self, q: sp.csr_matrix, k: int) -> tuple[list[list[str]], np.ndarray]:
        out_pos = np.zeros((q.shape[0], k), dtype=np.int64)
        out_val = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        bs = int(self.params["batch_size"])
        for s in range(0, q.shape[0], bs):
            scores = q[s : s + bs] @ self.postings  # sparse (b, n_docs): the documents sharing a query term
            out_pos[s : s + bs], out_val[s : s + bs] = _topk_sparse_rows(scores, k)
        found = out_val > 0
        out_val = np.where(found, out_val, -np.inf).astype(np.float32)
        mapped = self._id_array[out_pos]
        if found.all():
            return mapped.tolist(), out_val
        return [row[ok].tolist() for row, ok in zip(mapped, found)], out_val

    def _save(self, folder: Path) -> None:
        sp.save_npz(folder / "matrix.npz", self.postings, compressed=False)

    @classmethod
    def _load(cls, folder: Path, index: ExactSparseIndex, meta: dict) -> None:
        postings = sp.load_npz(folder / "matrix.npz").tocsr()
        if postings.shape != (meta["vocab_size"], meta["n_docs"]):
            raise DataError(
                f"{folder}: matrix.npz has shape {postings.shape}, meta.json says "
                f"({meta['vocab_size']}, {meta['n_docs']}); rebuild the index."
            )
        index.postings = postings


@contextlib.contextmanager
def _native_stdout_silenced():
    """Seismic (Rust) prints its build and save steps on the process's stdout (file descriptor 1),
    past Python's sys.stdout: point descriptor 1 at /dev/null meanwhile, so a run's log holds only simlab's lines."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class SeismicSparseIndex(SparseIndex):
    """pyseismic-lsr's approximate index (see the module docstring for the parameters)."""

    type_name = "seismic"
    defaults: ClassVar[dict[str, Any]] = {
        "n_postings": 3500,
        "centroid_fraction": 0.1,
        "summary_energy": 0.4,
        "query_cut": 10,
        "heap_factor": 0.7,
        "threads": 0,
    }
    files = ("index.seismic",)
    search_params = ("query_cut", "heap_factor", "threads")

    @classmethod
    def _make(cls, docs: sp.csr_matrix, params: dict):
        import seismic

        ds = seismic.SeismicDataset(dim=docs.shape[1])
        ds.add_documents_by_id(
            [str(i) for i in range(docs.shape[0])],  # positions; mapped back to ids at search
            docs.indices.astype(np.int64),
            docs.data.astype(np.float32),
            docs.indptr.astype(np.int64),
        )
        with _native_stdout_silenced():
            return seismic.SeismicIndex.build_from_dataset(
                ds,
                n_postings=int(params["n_postings"]),
                centroid_fraction=float(params["centroid_fraction"]),
                summary_energy=float(params["summary_energy"]),
                num_threads=int(params["threads"]),
            )

    def _set_state(self, state) -> None:
        self._seismic = state
        import seismic

        # Seismic names terms by strings: one array of every term id's name, indexed per query.
        self._str = seismic.get_seismic_string()
        self._names = np.arange(self.vocab_size).astype(str).astype(self._str)

    def _search(self, q: sp.csr_matrix, k: int) -> tuple[list[list[str]], np.ndarray]:
        nq = q.shape[0]
        comps = [self._names[q.indices[q.indptr[i] : q.indptr[i + 1]]] for i in range(nq)]
        vals = [q.data[q.indptr[i] : q.indptr[i + 1]] for i in range(nq)]  # float32 (as_csr)
        cut, heap = int(self.params["query_cut"]), float(self.params["heap_factor"])
        if nq == 1:
            results = [self._seismic.search("0", comps[0], vals[0], k, cut, heap)] if len(comps[0]) else [[]]
        else:
            qids = np.arange(nq).astype(str).astype(self._str)
            results = self._seismic.batch_search(
                qids, comps, vals, k, cut, heap, num_threads=int(self.params["threads"])
            )
        ids: list[list[str]] = [[] for _ in range(nq)]
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        for res in results:  # batch_search returns the queries out of input order: key by query id
            hits = sorted((h for h in res if h[1] > 0), key=lambda h: -h[1])[:k]
            if hits:
                i = int(hits[0][0])
                ids[i] = [self.ids[int(d)] for _, _, d in hits]
                scores[i, : len(hits)] = [s for _, s, _ in hits]
        return ids, scores

    def _save(self, folder: Path) -> None:
        with _native_stdout_silenced():
            self._seismic.save(str(folder / "index"))
        written = [p for p in folder.iterdir() if p.name.startswith("index") and p.is_file()]
        if written and written[0].name != "index.seismic":
            written[0].rename(folder / "index.seismic")

    @classmethod
    def _load(cls, folder: Path, index: SeismicSparseIndex, meta: dict) -> None:
        import seismic

        with _native_stdout_silenced():
            index._set_state(seismic.SeismicIndex.load(str(folder / "index.seismic")))


SPARSE_INDEX_TYPES: dict[str, type[SparseIndex]] = {
    "exact": ExactSparseIndex,
    "seismic": SeismicSparseIndex,
}


def load(folder: str | Path, *, expect_vocab: dict | None = None) -> SparseIndex:
    """Reopen a saved sparse index; check it against the model's vocabulary fingerprint.

    Raises:
        DataError: not a sparse index folder, or its files are missing or disagree.
        IndexMismatchError: another format version, or built over another vocabulary than
            `expect_vocab` (`simlab.models.sparse.vocabulary_fingerprint(model)`).
    """
    folder = Path(folder)
    meta = read_meta(
        folder,
        FORMAT_NAME,
        FORMAT_VERSION,
        "simlab sparse index",
        "build one with SPARSE_INDEX_TYPES[type].build(docs, ids, ...).save(folder)",
    )
    cls = SPARSE_INDEX_TYPES.get(meta.get("type"))
    if cls is None:
        raise DataError(
            f"{folder / 'meta.json'}: unknown sparse index type {meta.get('type')!r}; "
            f"valid: {', '.join(sorted(SPARSE_INDEX_TYPES))}."
        )
    if expect_vocab is not None and (
        meta.get("vocab_size") != expect_vocab.get("vocab_size")
        or meta.get("vocab_sha256") != expect_vocab.get("vocab_sha256")
    ):
        raise IndexMismatchError(
            f"{folder}: index built over another vocabulary ({meta.get('vocab_size')} tokens, "
            f"sha256 {str(meta.get('vocab_sha256'))[:12]}, model {meta.get('model_id')!r}) than this model's "
            f"({expect_vocab.get('vocab_size')} tokens, sha256 {str(expect_vocab.get('vocab_sha256'))[:12]}): "
            "its term ids would mean other tokens. Rebuild the index with this model, or load the model "
            "the index was built with."
        )
    for name in (*cls.files, "ids.json"):
        if not (folder / name).is_file():
            raise DataError(f"{folder / name} is missing; the index folder is incomplete, rebuild it.")
    ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
    if len(ids) != meta.get("n_docs"):
        raise DataError(f"{folder}: ids.json has {len(ids)} ids, meta.json says {meta.get('n_docs')}; rebuild it.")
    index = cls(
        ids,
        model_id=meta["model_id"],
        vocab={"vocab_size": meta["vocab_size"], "vocab_sha256": meta.get("vocab_sha256")},
        params=meta["params"],
        build_seconds=meta.get("build_seconds", 0.0),
    )
    cls._load(folder, index, meta)
    return index
