"""`simlab inspect`: what a sparse (SPLADE) run's model makes of a query, token by token.

For a query: its expansion, the tokens with the largest weights, and its number of active
dimensions. With a document id: the tokens the query and the document share, each with
both weights and their product; the products sum to the query-document score, the same
dot product the sparse indexes rank by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from simlab.errors import DataError, RunFolderError


@dataclass(frozen=True)
class Inspection:
    """One query's sparse vector, and optionally its overlap with one document."""

    query: str
    active_dims: int
    vocab_size: int
    tokens: list[tuple[str, float]]
    model: str = ""
    doc_id: str | None = None
    doc_active_dims: int | None = None
    overlap: list[tuple[str, float, float]] = field(default_factory=list)  # token, query weight, doc weight
    score: float | None = None
    n_shared: int = 0

    def render(self) -> str:
        lines = [
            f"Model: {self.model}",
            f"Query: {self.query}",
            f"Active dimensions: {self.active_dims} of {self.vocab_size:,}",
            f"Top tokens ({len(self.tokens)}):",
        ]
        lines += [f"  {rank:>3}  {tok:<20} {w:.4f}" for rank, (tok, w) in enumerate(self.tokens, start=1)]
        if self.doc_id is not None:
            lines += [
                "",
                f"Document {self.doc_id}: {self.doc_active_dims} active dimensions; "
                f"{self.n_shared} tokens shared with the query; score {self.score:.4f} (the sum of all products); "
                f"the {len(self.overlap)} largest:",
                f"  {'token':<20} {'query':>8} {'doc':>8} {'product':>9}",
            ]
            lines += [f"  {t:<20} {q:8.4f} {d:8.4f} {q * d:9.4f}" for t, q, d in self.overlap]
        return "\n".join(lines)


def _vector(model, text: str, side: str):
    from simlab.models.sparse import encode_sparse

    row = encode_sparse(model, [text], side)
    return dict(zip(row.indices.tolist(), row.data.tolist()))


def _corpus(run_dir: Path):
    import json

    from simlab.data.loader import load_collection

    meta_path = run_dir / "meta.json"
    if not meta_path.is_file():
        raise RunFolderError(f"{run_dir}: no meta.json; the run folder is incomplete")
    return load_collection(Path(json.loads(meta_path.read_text(encoding="utf-8"))["data"])).corpus


def inspect_run(run_dir: Path, query: str, top: int = 20, doc_id: str | None = None) -> Inspection:
    """Encode `query` (and document `doc_id` of the run's collection) with the run's model.

    The run's trained model (`run_dir/model`), or for an evaluation-only run the configured
    `model` section, loaded as the run evaluated it zero-shot.

    Raises:
        RunFolderError: not a run folder, or not a sparse run.
        DataError: `doc_id` is not in the run's collection.
    """
    from simlab.models.sparse import load_saved_sparse
    from simlab.tasks.skeleton import run_task

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise RunFolderError(f"{run_dir}: not a simlab run folder (no config.yaml); make one with `simlab run`")
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    run_task(run_dir, "inspect")  # the vocabulary weights of sparse (SPLADE) runs
    if top < 1:
        raise RunFolderError(f"--top {top}: must be at least 1")
    model_source = f"{run_dir / 'model'} (trained)"
    if (run_dir / "model" / "modules.json").is_file():
        model = load_saved_sparse(run_dir / "model")
    elif (run_dir / "zeroshot-model" / "modules.json").is_file():  # a zero-shot model the run built and kept
        model = load_saved_sparse(run_dir / "zeroshot-model")
        model_source = f"{run_dir / 'zeroshot-model'} (zero-shot: the run has no trained model)"
    else:  # an evaluation-only run (e.g. a pretrained SPLADE): the configured model, as evaluated zero-shot
        from simlab.config import ModelConfig
        from simlab.models.sparse import load_sparse_model

        model_cfg = ModelConfig.model_validate(cfg["model"])
        texts = _corpus(run_dir).full_texts() if model_cfg.name == "bert-mlm-scratch" else ()
        model = load_sparse_model(model_cfg, texts)
        model_source = f"{model_cfg.name} (zero-shot: the run has no trained model)"
    if cfg.get("model", {}).get("sparse", {}).get("quantize"):  # the vectors the run evaluated with
        from simlab.models.sparse import quantize_for_cpu

        model = quantize_for_cpu(model)
    tokenizer = model.tokenizer
    vocab_size = len(tokenizer.get_vocab())
    q = _vector(model, query, "query")
    ranked = sorted(q.items(), key=lambda kv: -kv[1])[:top]
    names = tokenizer.convert_ids_to_tokens([i for i, _ in ranked])
    result = Inspection(query, len(q), vocab_size, [(t, w) for t, (_, w) in zip(names, ranked)], model=model_source)
    if doc_id is None:
        return result
    corpus = _corpus(run_dir)
    texts = dict(zip(corpus.ids, corpus.full_texts()))
    if doc_id not in texts:
        raise DataError(f"--doc {doc_id!r}: no such document in the run's collection ({len(texts)} documents)")
    d = _vector(model, texts[doc_id], "document")
    shared = sorted(set(q) & set(d), key=lambda i: -q[i] * d[i])
    tokens = tokenizer.convert_ids_to_tokens(shared)
    overlap = [(t, q[i], d[i]) for t, i in zip(tokens, shared)]
    score = float(sum(qw * dw for _, qw, dw in overlap))
    return Inspection(
        result.query,
        result.active_dims,
        vocab_size,
        result.tokens,
        model_source,
        doc_id,
        len(d),
        overlap[:top],
        score,
        len(overlap),
    )
