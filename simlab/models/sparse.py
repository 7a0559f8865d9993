"""SPLADE models (`model.kind: sparse`): sentence-transformers `SparseEncoder`s.

`model.name` is a registered name (`sorted(SPARSE_MODELS)`), a local folder (a saved
`SparseEncoder`, or a plain transformers masked-language model, which becomes MLM
transformer + `SpladePooling`), or a Hugging Face hub name such as
`naver/splade-cocondenser-ensembledistil` (for users with the hub; offline it fails at once
with a clear message).

`bert-mlm-scratch` is the offline choice: no pretrained masked-language model can be
downloaded here, so it trains a WordPiece vocabulary on the collection and initialises a
small BERT-MLM at random (`model.sparse.scratch`); SPLADE training then learns it from the
triples. Its numbers are those of a model trained from nothing on the given data.

On top of the base model, `load_sparse_model` adds the options of `model.sparse`:
`inference_free` (queries by a static per-token weight through a `Router`, documents by
SPLADE) and `mask` (a `simlab.models.vocab_mask.VocabularyMask` after the pooling).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simlab.console import wants_bar
from simlab.errors import ModelLoadError

if TYPE_CHECKING:
    import scipy.sparse
    from sentence_transformers import SparseEncoder

    from simlab.config import ModelConfig

TRUSTED_MODULE_PREFIXES = ("sentence_transformers.", "simlab.")
"""Module classes `load_saved_sparse` imports from a saved model's modules.json."""


def build_scratch_mlm(cfg: ModelConfig, texts: Sequence[str]) -> SparseEncoder:
    """A random BERT-MLM + SpladePooling over a WordPiece vocabulary trained on `texts`."""
    import torch
    from sentence_transformers import SparseEncoder
    from transformers import BertConfig, BertForMaskedLM

    from simlab.models.wordpiece import train_wordpiece

    if not texts:
        raise ModelLoadError("model.name: bert-mlm-scratch needs the collection's texts to train its vocabulary")
    sc = cfg.sparse.scratch
    fast = train_wordpiece(texts, sc.vocab_size, cfg.max_length)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=sc.hidden_size,
        num_hidden_layers=sc.layers,
        num_attention_heads=sc.heads,
        intermediate_size=4 * sc.hidden_size,
        max_position_embeddings=max(cfg.max_length, 64),
    )
    torch.manual_seed(sc.seed)
    with tempfile.TemporaryDirectory() as tmp:
        fast.save_pretrained(tmp)
        BertForMaskedLM(config).save_pretrained(tmp)
        return SparseEncoder(tmp, device="cpu")


SPARSE_MODELS: dict[str, Callable[[ModelConfig, Sequence[str]], SparseEncoder]] = {
    "bert-mlm-scratch": build_scratch_mlm,
}


def load_saved_sparse(path: str | Path) -> SparseEncoder:
    """A saved `SparseEncoder` folder, simlab's `VocabularyMask` included.

    sentence-transformers imports module classes from outside its own package only with
    `trust_remote_code=True`; it is passed here only after checking that modules.json names
    nothing but sentence-transformers and simlab classes, both installed packages.

    Raises:
        ModelLoadError: modules.json is unreadable or names another package's class.
    """
    from sentence_transformers import SparseEncoder

    path = Path(path)
    try:
        types = [m["type"] for m in json.loads((path / "modules.json").read_text(encoding="utf-8"))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"{path / 'modules.json'}: not a readable sentence-transformers module list ({exc})"
        ) from None
    foreign = [t for t in types if not t.startswith(TRUSTED_MODULE_PREFIXES)]
    if foreign:
        raise ModelLoadError(
            f"{path}: modules.json names classes outside sentence-transformers and simlab ({', '.join(foreign)}); "
            "load it yourself with SparseEncoder(path, trust_remote_code=True) if you trust that code."
        )
    trusted = any(t.startswith("simlab.") for t in types)
    return SparseEncoder(str(path), device="cpu", trust_remote_code=trusted)


def _load_base(cfg: ModelConfig, texts: Sequence[str]) -> SparseEncoder:
    from sentence_transformers import SparseEncoder

    from simlab.models import MODELS, from_hub

    if cfg.name in SPARSE_MODELS:
        return SPARSE_MODELS[cfg.name](cfg, texts)
    if cfg.name in MODELS:
        raise ModelLoadError(
            f"model.name: {cfg.name!r} is a dense model; with model.kind: sparse choose one of "
            f"{', '.join(sorted(SPARSE_MODELS))}, a local masked-language-model folder, or a hub name "
            "(e.g. naver/splade-cocondenser-ensembledistil)."
        )
    path = Path(cfg.name).expanduser()
    if path.is_dir():
        if (path / "modules.json").is_file():
            return load_saved_sparse(path)
        config = path / "config.json"
        if config.is_file():
            archs = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
            if not any(a.endswith("ForMaskedLM") for a in archs):
                raise ModelLoadError(
                    f"model.name: {path} is a transformers model of architecture {archs or 'unknown'}, not a "
                    "masked-language model (…ForMaskedLM): SPLADE needs the MLM head's vocabulary logits."
                )
            return SparseEncoder(str(path), device="cpu")
        raise ModelLoadError(
            f"model.name: {path} is a folder but neither a sentence-transformers model (modules.json) "
            "nor a transformers model (config.json)."
        )
    registered = f"sparse: {', '.join(sorted(SPARSE_MODELS))}"
    fallback = "bert-mlm-scratch, which needs no download"
    load = lambda name: SparseEncoder(name, device="cpu")  # noqa: E731
    return from_hub(cfg.name, load, registered=registered, fallback=fallback)


def idf_weights(tokenizer, texts: Sequence[str]) -> np.ndarray:
    r"""Per vocabulary id, $\ln(1 + N / (1 + df_t))$ over `texts` (1.0 for unseen ids): the static query weights."""
    vocab_size = len(tokenizer.get_vocab())
    df: Counter[int] = Counter()
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        df.update(set(ids))
    w = np.ones(vocab_size, dtype=np.float32)
    n = max(len(texts), 1)
    for i, d in df.items():
        if i < vocab_size:
            w[i] = math.log(1 + n / (1 + d))
    return w


def load_sparse_model(cfg: ModelConfig, texts: Sequence[str] = ()) -> SparseEncoder:
    """The configured SPLADE model: base encoder, optional inference-free query side, optional mask.

    Args:
        cfg: The `model` section (`kind: sparse`).
        texts: The collection's document texts: the vocabulary of `bert-mlm-scratch`, and the
            document frequencies of the inference-free query weights.
    """
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Router
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding

    from simlab.models.vocab_mask import VocabularyMask, masked_token_ids

    model = _load_base(cfg, texts)
    modules = [m for m in model if not isinstance(m, VocabularyMask)]
    if cfg.sparse.inference_free and not any(isinstance(m, Router) for m in modules):
        weights = idf_weights(model.tokenizer, texts) if texts else None
        static = SparseStaticEmbedding(
            model.tokenizer, weight=None if weights is None else torch.from_numpy(weights), frozen=False
        )
        modules = [Router.for_query_document(query_modules=[static], document_modules=modules)]
    if cfg.sparse.mask:
        vocab = len(model.tokenizer.get_vocab())
        ids = masked_token_ids(model.tokenizer, cfg.sparse.mask, cfg.sparse.stopwords)
        modules.append(VocabularyMask(vocab, ids, list(cfg.sparse.mask)))
    if modules != list(model):
        model = SparseEncoder(modules=modules, device="cpu")
    model.max_seq_length = cfg.max_length
    return model


def vocabulary_fingerprint(model: SparseEncoder) -> dict[str, object]:
    """`{"vocab_size", "vocab_sha256"}` of the model's tokenizer: the tokens in id order, hashed.

    A sparse index stores it; an index is only valid for query vectors over the same vocabulary.
    """
    vocab = model.tokenizer.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    digest = hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()
    return {"vocab_size": len(tokens), "vocab_sha256": digest}


def to_csr(embeddings) -> scipy.sparse.csr_matrix:
    """A torch sparse (COO/CSR) or dense `[n, vocab]` tensor as a float32 scipy CSR matrix."""
    import scipy.sparse
    import torch

    if isinstance(embeddings, torch.Tensor):
        if embeddings.is_sparse:
            coo = embeddings.coalesce()
            idx = coo.indices().cpu().numpy()
            vals = coo.values().detach().cpu().float().numpy()
            m = scipy.sparse.csr_matrix((vals, (idx[0], idx[1])), shape=tuple(coo.shape), dtype=np.float32)
        else:
            m = scipy.sparse.csr_matrix(embeddings.detach().cpu().float().numpy())
    else:
        m = scipy.sparse.csr_matrix(embeddings, dtype=np.float32)
    m.eliminate_zeros()
    m.sort_indices()
    return m


def quantize_for_cpu(model: SparseEncoder) -> SparseEncoder:
    """A copy of `model` whose `nn.Linear` layers run in int8 (`model.sparse.quantize`).

    PyTorch's dynamic quantization (`torch.ao.quantization.quantize_dynamic`): weights stored
    as int8, activations quantized on the fly, for CPU inference. The transformer's and the MLM
    head's matrix products dominate a SPLADE query's cost; BENCHMARKS.md measures the speed-up
    and how close the quantized vectors and rankings stay to float32.
    """
    import copy
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear}, torch.qint8)


def encode_sparse(model: SparseEncoder, texts: Sequence[str], side: str, batch_size: int = 32):
    """`texts` encoded on the `side` route ("query" or "document") as a scipy CSR `[n, vocab]`."""
    if not texts:
        import scipy.sparse

        return scipy.sparse.csr_matrix((0, len(model.tokenizer.get_vocab())), dtype=np.float32)
    fn = model.encode_query if side == "query" else model.encode_document
    emb = fn(
        list(texts),
        batch_size=batch_size,
        convert_to_sparse_tensor=True,
        show_progress_bar=wants_bar(len(texts), 2000),
    )
    return to_csr(emb)
