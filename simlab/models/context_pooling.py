"""`ContextPooling`: layer-sum pooling, optionally restricted to a marked target word (workload B).

Input format: a text whose target word is wrapped in `TARGET_OPEN` / `TARGET_CLOSE`
("\\x02" / "\\x03"), e.g. ``"the \\x02mouse\\x03 gnaws the grain"``; the markers are removed
before tokenising and give the target's character span. A text without markers has no
target and is pooled over all its tokens.

Pooling, for a transformer encoder (a sentence-transformers `Transformer`):

- token vectors = the sum (`layer_mode: sum`) or mean (`mean`) of the last `layers` hidden
  states, `hidden_states[-k:]` of the Hugging Face model (the seed's "sum of the last 4
  layers");
- the sentence vector = the mean of the token vectors over the pooled tokens: all tokens of
  the attention mask (`scope: sentence`), the tokens overlapping the target span (`target`),
  or those within `window` tokens of it (`window`); a text without a target pools all tokens.

For a static encoder (a sentence-transformers `StaticEmbedding`, e.g. wordllama) there are
no layers (`layers` must be 0); the scope selects which tokens' vectors are averaged, so
`window` pools the context around the target word.

It is a sentence-transformers input module (like `simlab.models.fields.FieldFusion`): it trains
with the model, and saves its config plus the inner encoder in the subfolder `encoder/`.
sentence-transformers (>= 6) imports module classes outside its own package only with
``SentenceTransformer(path, trust_remote_code=True)`` (simlab must be importable).
"""

from __future__ import annotations

import os

import torch
from sentence_transformers.base.modules.input_module import InputModule
from torch import nn

TARGET_OPEN, TARGET_CLOSE = "\x02", "\x03"
SCOPES = ("sentence", "target", "window")


def mark_target(text: str, start: int, end: int) -> str:
    """`text` with its target span `[start, end)` wrapped in the markers.

    Example:
        >>> mark_target("the mouse ran", 4, 9) == "the \\x02mouse\\x03 ran"
        True
    """
    return f"{text[:start]}{TARGET_OPEN}{text[start:end]}{TARGET_CLOSE}{text[end:]}"


def strip_target(text: str) -> tuple[str, tuple[int, int] | None]:
    """The text without markers, and the target's character span in it (None without markers)."""
    start = text.find(TARGET_OPEN)
    end = text.find(TARGET_CLOSE)
    if start < 0 or end < start:
        return text.replace(TARGET_OPEN, "").replace(TARGET_CLOSE, ""), None
    clean = text[:start] + text[start + 1 : end] + text[end + 1 :]
    return clean.replace(TARGET_OPEN, "").replace(TARGET_CLOSE, ""), (start, end - 1)


def select_tokens(offsets: list[tuple[int, int]], span: tuple[int, int] | None, scope: str, window: int) -> list[int]:
    """Positions of the tokens to pool, given each token's character offsets (special tokens: (0, 0)).

    Example:
        >>> select_tokens([(0, 3), (4, 9), (10, 13)], (4, 9), "target", 0)
        [1]
        >>> select_tokens([(0, 3), (4, 9), (10, 13)], (4, 9), "window", 1)
        [0, 1, 2]
    """
    real = [i for i, (a, b) in enumerate(offsets) if b > a]
    if span is None or scope == "sentence":
        return real
    hit = [i for i in real if offsets[i][0] < span[1] and offsets[i][1] > span[0]]
    if not hit:  # the target was truncated away
        return real
    if scope == "target":
        return hit
    lo, hi = real.index(hit[0]), real.index(hit[-1])
    return real[max(0, lo - window) : hi + window + 1]


class ContextPooling(InputModule):
    """Pool an inner encoder's tokens over the last `layers` layers and a scope; see the module docstring."""

    config_keys = ["layers", "layer_mode", "scope", "window", "inner"]
    save_in_root = False

    def __init__(
        self,
        encoder: nn.Module,
        layers: int = 0,
        layer_mode: str = "sum",
        scope: str = "sentence",
        window: int = 5,
        **kw,
    ):
        super().__init__()
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding

        self.encoder = encoder
        self.inner = "static" if isinstance(encoder, StaticEmbedding) else "transformer"
        if scope not in SCOPES:
            raise ValueError(f"ContextPooling: scope {scope!r}; choose one of {', '.join(SCOPES)}")
        if layer_mode not in ("sum", "mean"):
            raise ValueError(f"ContextPooling: layer_mode {layer_mode!r}; choose sum or mean")
        if self.inner == "static" and layers:
            raise ValueError("ContextPooling: a static embedding has no hidden layers; use layers=0")
        if self.inner == "transformer":
            n = encoder.model.config.num_hidden_layers
            if not 1 <= layers <= n + 1:
                raise ValueError(f"ContextPooling: layers={layers}, but the model has {n} layers (+ embeddings)")
            encoder.model.config.output_hidden_states = True
        self.layers, self.layer_mode, self.scope, self.window = int(layers), layer_mode, scope, int(window)

    @property
    def tokenizer(self):
        return self.encoder.tokenizer

    @property
    def max_seq_length(self):
        return self.encoder.max_seq_length

    def get_embedding_dimension(self) -> int:
        return self.encoder.get_embedding_dimension()

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs) -> dict[str, torch.Tensor]:
        cleaned = [strip_target(t) for t in inputs]
        texts = [c for c, _ in cleaned]
        if self.inner == "static":
            # StaticEmbedding reads flat token ids + bag offsets (an EmbeddingBag): keep only the selected tokens
            encodings = self.encoder.tokenizer.encode_batch(texts, add_special_tokens=False)
            ids, starts = [], []
            for enc, (_, span) in zip(encodings, cleaned):
                starts.append(len(ids))
                ids.extend(enc.ids[i] for i in select_tokens(enc.offsets, span, self.scope, self.window))
            return {"input_ids": torch.tensor(ids, dtype=torch.long), "offsets": torch.tensor(starts, dtype=torch.long)}
        features = self.encoder.preprocess(texts, prompt=prompt, **kwargs)
        enc = self.encoder.tokenizer(
            texts,
            padding=True,
            truncation="longest_first",
            max_length=self.encoder.max_seq_length,
            return_offsets_mapping=True,
        )
        mask = torch.zeros_like(features["attention_mask"], dtype=torch.float)  # (batch, seq)
        for row, (offsets, (_, span)) in enumerate(zip(enc["offset_mapping"], cleaned)):
            chosen = select_tokens([tuple(o) for o in offsets], span, self.scope, self.window)
            if span is None or self.scope == "sentence":  # every token of the attention mask, as mean pooling
                chosen = [i for i, m in enumerate(features["attention_mask"][row].tolist()) if m]
            mask[row, chosen] = 1.0
        features["pool_mask"] = mask
        return features

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        if self.inner == "static":
            return self.encoder(features)
        pool_mask = features.pop("pool_mask")  # (batch, seq)
        out = self.encoder(features)
        stacked = torch.stack(out["all_layer_embeddings"][-self.layers :])  # (k, batch, seq, hidden)
        tokens = stacked.sum(0) if self.layer_mode == "sum" else stacked.mean(0)  # (batch, seq, hidden)
        weights = pool_mask.unsqueeze(-1).to(tokens.dtype)  # (batch, seq, 1)
        out["token_embeddings"] = tokens
        out["sentence_embedding"] = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)  # (batch, hidden)
        out["pool_mask"] = pool_mask
        return out

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)
        sub = os.path.join(output_path, "encoder")
        os.makedirs(sub, exist_ok=True)
        self.encoder.save(sub, safe_serialization=safe_serialization)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs,
    ) -> ContextPooling:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding, Transformer

        hub = {"token": token, "cache_folder": cache_folder, "revision": revision, "local_files_only": local_files_only}
        config = cls.load_config(model_name_or_path, subfolder=subfolder, **hub)
        inner_cls = StaticEmbedding if config.pop("inner", "transformer") == "static" else Transformer
        encoder = inner_cls.load(model_name_or_path, subfolder=f"{subfolder}/encoder".lstrip("/"), **hub)
        return cls(encoder, **config)


def parse_layers(spec: str | None) -> tuple[int, str]:
    """`"last4_sum"` -> (4, "sum"); None -> (0, "sum") (no layer pooling).

    Example:
        >>> parse_layers("last4_mean")
        (4, 'mean')
    """
    if not spec:
        return 0, "sum"
    k, mode = spec.removeprefix("last").split("_")
    return int(k), mode
