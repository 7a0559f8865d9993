"""A vocabulary mask for SPLADE: zero chosen vocabulary ids in the pooled sparse vector.

A SPLADE model trained without care spends its largest weights on punctuation
(`('.', 2.81), (',', 2.73), ...` in the seed's log): those tokens match every document and
carry no meaning. `VocabularyMask` is a sentence-transformers module placed after
`SpladePooling` (or after the query/document `Router`), so it acts on every output of the
model, in training (the loss and the FLOPS regulariser never see the masked ids) and at
inference, and it is saved in `modules.json` with the model.

Categories (`MASK_CATEGORIES`) name which ids to mask; `masked_token_ids` resolves them
against a tokenizer:

- `special`: the tokenizer's special tokens ([CLS], [SEP], [PAD], [MASK], [UNK], ...);
- `unused`: reserved placeholder tokens such as BERT's `[unused0]` .. `[unused993]`;
- `punctuation`: tokens (and `##` continuations) made only of Unicode punctuation or symbols;
- `stopwords`: whole-word tokens in an English stop-word list (bm25s' list) or a given list.

Example:
    >>> import torch
    >>> mask = VocabularyMask(vocab_size=5, masked_ids=[0, 3])
    >>> mask({"sentence_embedding": torch.ones(1, 5)})["sentence_embedding"].tolist()
    [[0.0, 1.0, 1.0, 0.0, 1.0]]

Loading a saved model: sentence-transformers 6 imports module classes outside its own
package only with `trust_remote_code=True`; `simlab.models.sparse.load_saved_sparse` checks
that `modules.json` names nothing but sentence-transformers and simlab classes and loads it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from sentence_transformers.base.modules.module import Module

MASK_CATEGORIES = ("punctuation", "special", "stopwords", "unused")
_UNUSED = re.compile(r"^(\[unused\d+\]|<unused\d+>|\[UNUSED_\d+\])$")


def _is_punctuation(token: str) -> bool:
    """True for tokens made only of punctuation/symbol characters: '.', '##,', '...', '--'."""
    core = token[2:] if token.startswith("##") and len(token) > 2 else token
    core = core.lstrip("Ġ▁")  # byte-level BPE / sentencepiece word-start markers
    return bool(core) and all(unicodedata.category(c)[0] in "PS" for c in core)


def english_stopwords() -> list[str]:
    """bm25s' English stop-word list (the one simlab's BM25 uses)."""
    from bm25s.stopwords import STOPWORDS_EN

    return list(STOPWORDS_EN)


def masked_token_ids(tokenizer: Any, categories: Iterable[str], stopwords: Sequence[str] | None = None) -> list[int]:
    """The vocabulary ids of `tokenizer` that fall in any of `categories` (sorted, unique).

    Args:
        tokenizer: A Hugging Face tokenizer (`get_vocab()`, `all_special_ids`).
        categories: Names from `MASK_CATEGORIES`.
        stopwords: The stop-word list for the `stopwords` category; None: `english_stopwords()`.

    Raises:
        ValueError: an unknown category (the message lists the valid ones).
    """
    categories = set(categories)
    unknown = sorted(categories - set(MASK_CATEGORIES))
    if unknown:
        raise ValueError(f"unknown mask categories {unknown}; choose from: {', '.join(MASK_CATEGORIES)}")
    vocab: dict[str, int] = tokenizer.get_vocab()
    ids: set[int] = set()
    if "special" in categories:
        ids.update(int(i) for i in tokenizer.all_special_ids)
    if "unused" in categories:
        ids.update(i for t, i in vocab.items() if _UNUSED.match(t))
    if "punctuation" in categories:
        ids.update(i for t, i in vocab.items() if _is_punctuation(t))
    if "stopwords" in categories:
        words = {w.lower() for w in (stopwords if stopwords is not None else english_stopwords())}
        ids.update(i for t, i in vocab.items() if t.lstrip("Ġ▁").lower() in words and not t.startswith("##"))
    return sorted(ids)


class VocabularyMask(Module):
    """Zero the `masked_ids` dimensions of `sentence_embedding` (shape `[batch, vocab_size]`).

    Args:
        vocab_size: Width of the sparse vectors (the tokenizer's vocabulary size).
        masked_ids: Vocabulary ids to zero.
        categories: The mask categories the ids came from (recorded in the saved config).
    """

    config_keys: list[str] = ["vocab_size", "masked_ids", "categories"]

    def __init__(self, vocab_size: int, masked_ids: Sequence[int] = (), categories: Sequence[str] = ()) -> None:
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.masked_ids = sorted({int(i) for i in masked_ids})
        self.categories = list(categories)
        bad = [i for i in self.masked_ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"masked ids {bad[:5]} are outside the vocabulary [0, {self.vocab_size})")
        keep = torch.ones(self.vocab_size)
        keep[self.masked_ids] = 0.0
        self.register_buffer("keep", keep, persistent=False)  # (vocab_size,) 1 = kept, 0 = masked

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        emb = features["sentence_embedding"]  # (batch, vocab_size)
        if emb.shape[-1] != self.vocab_size:
            raise ValueError(
                f"VocabularyMask is for vectors of width {self.vocab_size}, got {emb.shape[-1]}; "
                "build the mask from the model's own tokenizer."
            )
        features["sentence_embedding"] = emb * self.keep.to(dtype=emb.dtype, device=emb.device)
        return features

    def get_embedding_dimension(self) -> int:
        return self.vocab_size

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)

    def __repr__(self) -> str:
        return (
            f"VocabularyMask(vocab_size={self.vocab_size}, masked={len(self.masked_ids)}, categories={self.categories})"
        )
