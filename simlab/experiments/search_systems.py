"""The systems a `RunSearcher` loads: BM25, a dense index with its query encoder, a sparse index with its encoder.

Each has `rank(query, k) -> (ranked, terms, expansion)`: `(doc id, score)` pairs best first,
doc id -> the `Term`s it matched, and the query's top expansion tokens (sparse only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simlab.errors import RunFolderError

if TYPE_CHECKING:
    from simlab.experiments.search import RunSearcher

Ranked = list[tuple[str, float]]
TERMS_PER_HIT = 20
"""Matched terms kept per hit (and expansion tokens per query), by weight."""


@dataclass(frozen=True)
class Term:
    """A term a hit matched: its share of the score, and (sparse models) the query's and the document's weight."""

    token: str
    weight: float
    query_weight: float | None = None
    doc_weight: float | None = None


class BM25System:
    """The run's saved BM25 index; a hit's terms are the query terms it contains, with their BM25 score."""

    def __init__(self, folder: Path) -> None:
        from simlab.index.bm25 import BM25Retriever

        self.index = BM25Retriever.load(folder)

    def rank(self, query: str, k: int, with_terms: bool = True) -> tuple[Ranked, dict[str, list[Term]], list]:
        from simlab.records import Queries

        ranked = self.index.search(Queries(["q"], [query]), k).ranked("q")
        return ranked, self.terms(query, [d for d, _ in ranked]) if with_terms else {}, []

    def terms(self, query: str, doc_ids: list[str]) -> dict[str, list[Term]]:
        per_doc = self.index.term_scores(query, doc_ids)
        return {d: [Term(t, w) for t, w in ts[:TERMS_PER_HIT]] for d, ts in per_doc.items()}


class DenseSystem:
    """A saved faiss index searched with the query vectors of its model (no term matching: the model's own space)."""

    def __init__(self, model, folder: Path) -> None:
        from simlab.index.dense import load

        self.model = model
        self.index = load(folder, expect_dim=model.get_embedding_dimension())

    def terms(self, query: str, doc_ids: list[str]) -> dict[str, list[Term]]:
        return {}

    def rank(self, query: str, k: int, with_terms: bool = True) -> tuple[Ranked, dict[str, list[Term]], list]:
        vec = self.model.encode_query([query], convert_to_numpy=True, show_progress_bar=False).astype("float32")
        ids, scores = self.index.search(vec, k)
        return [(d, float(s)) for d, s in zip(ids[0], scores[0])], {}, []


class SparseSystem:
    """A saved sparse index (exact or Seismic) searched with its SPLADE model's query vectors.

    A hit's terms are the vocabulary tokens the query and the document share, each with both
    weights; their products sum to the exact score (`simlab inspect RUN QUERY --doc ID`). The
    document weights come from the exact index of the same model (`exact`).
    """

    def __init__(self, model, folder: Path, exact=None) -> None:
        from simlab.index.sparse import load
        from simlab.models.sparse import vocabulary_fingerprint

        self.model = model
        self.index = load(folder, expect_vocab=vocabulary_fingerprint(model))
        self.exact = exact if exact is not None else (self.index if hasattr(self.index, "postings") else None)
        self._position = None
        self._recent: dict[str, object] = {}

    def _encode(self, query: str):
        """The query's vector `(1, vocab)` CSR; the last few are kept (the hybrid asks twice)."""
        from simlab.models.sparse import encode_sparse

        q = self._recent.get(query)
        if q is None:
            q = encode_sparse(self.model, [query], "query")
            self._recent = dict(list(self._recent.items())[-15:]) | {query: q}
        return q

    def rank(self, query: str, k: int, with_terms: bool = True) -> tuple[Ranked, dict[str, list[Term]], list]:
        q = self._encode(query)
        ids, scores = self.index.search(q, k)
        ranked = [(d, float(s)) for d, s in zip(ids[0], scores[0]) if np.isfinite(s)]
        order = np.argsort(-q.data, kind="stable")
        tokens = self.model.tokenizer.convert_ids_to_tokens(q.indices[order].tolist())
        expansion = [(t, float(w)) for t, w in zip(tokens, q.data[order])][:TERMS_PER_HIT]
        return ranked, self.terms(query, [d for d, _ in ranked]) if with_terms else {}, expansion

    def terms(self, query: str, doc_ids: list[str]) -> dict[str, list[Term]]:
        q = self._encode(query)
        if self.exact is None or not doc_ids:
            return {}
        if self._position is None:
            self._position = {d: i for i, d in enumerate(self.exact.ids)}
        cols = [self._position[d] for d in doc_ids]
        weights = self.exact.postings[q.indices][:, cols].toarray()  # (query terms, hits): the documents' weights
        names = self.model.tokenizer.convert_ids_to_tokens(q.indices.tolist())
        out = {}
        for j, doc in enumerate(doc_ids):
            shared = [(names[i], float(qw), float(weights[i, j])) for i, qw in enumerate(q.data) if weights[i, j] > 0]
            shared.sort(key=lambda t: -t[1] * t[2])
            out[doc] = [Term(t, qw * dw, qw, dw) for t, qw, dw in shared[:TERMS_PER_HIT]]
        return out


def load_system(searcher: RunSearcher, name: str, meta: dict):
    """The system saved as `indexes/<name>` (`meta`: its meta.json), its query encoder loaded once per model."""
    folder = searcher.path / "indexes" / name
    fmt = meta.get("format")
    if fmt == "simlab-bm25":
        return BM25System(folder)
    prefix = name.split(".", 1)[0]
    if fmt == "simlab.sparse-index":
        exact = searcher._loaded.get(f"{prefix}.flat")
        return SparseSystem(searcher.model(prefix, sparse=True), folder, getattr(exact, "index", None))
    check_model_id(folder, meta, searcher.config)
    return DenseSystem(searcher.model(prefix, sparse=False), folder)


def load_encoder(searcher: RunSearcher, prefix: str, sparse: bool):
    """`trained`: the run's saved model; `zeroshot`: the configured model, built as the run built it; a reference
    model's prefix: that model (`eval.reference_models`)."""
    from simlab.config import ModelConfig

    cfg = searcher.config.get("model") or {}
    if prefix == "trained":
        path = searcher.path / "model"
        if not path.is_dir():
            raise RunFolderError(f"{path} is missing; the run folder is incomplete, re-run it")
        if sparse:
            from simlab.models.sparse import load_saved_sparse

            model = load_saved_sparse(path)
        else:
            from sentence_transformers import SentenceTransformer

            return _with_backend(SentenceTransformer(str(path), device="cpu"), cfg)
    elif sparse and (searcher.path / "zeroshot-model" / "modules.json").is_file():  # a model the run built
        from simlab.models.sparse import load_saved_sparse

        model = load_saved_sparse(searcher.path / "zeroshot-model")
    elif sparse:
        from simlab.models.sparse import load_sparse_model

        model_cfg = ModelConfig.model_validate(cfg)
        texts = searcher.collection.corpus.full_texts() if model_cfg.name == "bert-mlm-scratch" else ()
        model = load_sparse_model(model_cfg, texts)
    else:
        from simlab.config.retrieval import reference_config, reference_prefix
        from simlab.models import load_model

        model_cfg = ModelConfig.model_validate(cfg)
        references = {reference_prefix(n): n for n in (searcher.config.get("eval") or {}).get("reference_models", [])}
        if prefix in references:  # a reference model the run searched zero-shot beside its own
            model_cfg = reference_config(model_cfg, references[prefix])
        return _with_backend(load_model(model_cfg), cfg)
    if (cfg.get("sparse") or {}).get("quantize"):  # encode queries as the run evaluated them
        from simlab.models.sparse import quantize_for_cpu

        model = quantize_for_cpu(model)
    return model


def _with_backend(model, cfg: dict):
    """The dense model on the run's `model.backend`, so queries are encoded as its documents were."""
    from simlab.models.backends import with_backend

    return with_backend(model, str(cfg.get("backend", "torch")))


def check_model_id(index_dir: Path, index_meta: dict, run_cfg: dict) -> None:
    """The index was built with the run's model: its model_id is `model.name` (`+trained:<run>` once trained), or
    the reference model its folder is named after (`eval.reference_models`)."""
    from simlab.config.retrieval import reference_prefix
    from simlab.errors import IndexMismatchError

    name = str((run_cfg.get("model") or {}).get("name", ""))
    references = {reference_prefix(n): n for n in (run_cfg.get("eval") or {}).get("reference_models", [])}
    prefix = index_dir.name.split(".", 1)[0]
    if prefix in references:
        name = references[prefix]
    model_id = index_meta.get("model_id")
    if name and isinstance(model_id, str) and model_id != name and not model_id.startswith(f"{name}+"):
        raise IndexMismatchError(
            f"{index_dir}: index built with model {model_id!r}, but this run's model is {name!r}; rebuild the index "
            "with the run's model (re-run the experiment), or search the run that built it."
        )
