"""`FieldFusion`: a siamese encoder over a record's fields, with shared or per-field encoders.

Input format: one string per record, its field values in a fixed order joined by the ASCII
unit separator `FIELD_SEP` ("\\x1f"), e.g. ``"acme laptop x1\\x1f999.00"`` for (name, price).
Empty fields stay as empty strings so that positions line up. A string with fewer parts
than `n_fields` is padded with empty fields (a plain string is field 0 only); more parts
than `n_fields` is an error.

Field i is encoded by encoder i (per-field encoders, `len(encoders) == n_fields`), by the
one shared encoder (`len(encoders) == 1`), or by `encoders[field_encoders[i]]` (e.g. the text
fields by one shared text encoder and an image field by an `ImageTower`; every encoder has
the same output dimension), and the fields' `sentence_embedding`s are fused:
`concat` (dimension `n_fields * d`) or `mean` (dimension `d`). It is a sentence-transformers
input module, so it works as the first module of `SentenceTransformer(modules=[FieldFusion(...),
Normalize()])`, trains with the sentence-transformers trainer, and saves each sub-encoder in a
subfolder `encoder_<j>` of its own folder. Features are field i's encoder features under
`field<i>.<key>`. Sub-encoders of the classes `encoder_type` knows (`StaticEmbedding`,
`ImageTower`) save and load.

Loading: sentence-transformers (>= 6) only imports module classes outside its own package
with `trust_remote_code=True`, so a saved model loads with
``SentenceTransformer(path, trust_remote_code=True)`` (simlab must be importable).
"""

from __future__ import annotations

import math
import os

import torch
from sentence_transformers.base.modules.input_module import InputModule
from torch import nn

FIELD_SEP = "\x1f"
"""Separates a record's field values in the text `FieldFusion` reads."""
FUSIONS = ("concat", "mean")


class FieldFusion(InputModule):
    """Encode each field of a `FIELD_SEP`-joined record and fuse the embeddings; see the module docstring."""

    config_keys = ["n_fields", "fusion", "n_encoders", "field_encoders", "encoder_types"]
    save_in_root = False

    def __init__(
        self,
        encoders: list[nn.Module],
        n_fields: int | None = None,
        fusion: str = "concat",
        field_encoders: list[int] | None = None,
        **kwargs,
    ):
        super().__init__()
        n_fields = len(encoders) if n_fields is None else int(n_fields)
        if field_encoders is None:
            if len(encoders) not in (1, n_fields):
                raise ValueError(
                    f"FieldFusion: {len(encoders)} encoders for {n_fields} fields; need 1 (shared) or 1 each"
                )
            field_encoders = [0 if len(encoders) == 1 else i for i in range(n_fields)]
        if len(field_encoders) != n_fields or not all(0 <= j < len(encoders) for j in field_encoders):
            raise ValueError(
                f"FieldFusion: field_encoders {field_encoders} must name one of {len(encoders)} encoders "
                f"for each of {n_fields} fields"
            )
        if fusion not in FUSIONS:
            raise ValueError(f"FieldFusion: fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
        self.encoders = nn.ModuleList(encoders)
        self.n_fields, self.fusion, self.field_encoders = n_fields, fusion, [int(j) for j in field_encoders]

    @property
    def n_encoders(self) -> int:
        return len(self.encoders)

    @property
    def encoder_types(self) -> list[str]:
        return [type(e).__name__ for e in self.encoders]

    @property
    def shared(self) -> bool:
        return self.n_encoders == 1

    def encoder(self, i: int) -> nn.Module:
        """The encoder of field `i`."""
        return self.encoders[self.field_encoders[i]]

    @property
    def tokenizer(self):
        return self.encoders[0].tokenizer

    @property
    def max_seq_length(self) -> float:
        return math.inf

    def get_embedding_dimension(self) -> int:
        d = self.encoders[0].get_embedding_dimension()
        return d * self.n_fields if self.fusion == "concat" else d

    def split(self, text: str) -> list[str]:
        """The `n_fields` field values of one record text."""
        parts = text.split(FIELD_SEP)
        if len(parts) > self.n_fields:
            raise ValueError(f"FieldFusion: a record has {len(parts)} fields, the model reads {self.n_fields}")
        return parts + [""] * (self.n_fields - len(parts))

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs) -> dict[str, torch.Tensor]:
        columns = list(zip(*(self.split(t) for t in inputs))) if inputs else [()] * self.n_fields
        # `input_ids` (the record positions) marks the feature group for the trainer's `collect_features`
        features = {"input_ids": torch.arange(len(inputs))}
        for i, column in enumerate(columns):
            for key, value in self.encoder(i).preprocess(list(column), prompt=prompt).items():
                features[f"field{i}.{key}"] = value
        return features

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        embeddings = []
        for i in range(self.n_fields):
            prefix = f"field{i}."
            sub = {k[len(prefix) :]: v for k, v in features.items() if k.startswith(prefix)}
            embeddings.append(self.encoder(i)(sub)["sentence_embedding"])  # (batch, d)
        if self.fusion == "concat":
            features["sentence_embedding"] = torch.cat(embeddings, dim=-1)  # (batch, n_fields * d)
        else:
            features["sentence_embedding"] = torch.stack(embeddings).mean(dim=0)  # (batch, d)
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)
        for j, enc in enumerate(self.encoders):
            sub = os.path.join(output_path, f"encoder_{j}")
            os.makedirs(sub, exist_ok=True)
            enc.save(sub, safe_serialization=safe_serialization)

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
    ) -> FieldFusion:
        hub = {"token": token, "cache_folder": cache_folder, "revision": revision, "local_files_only": local_files_only}
        config = cls.load_config(model_name_or_path, subfolder=subfolder, **hub)
        types = config.get("encoder_types") or ["StaticEmbedding"] * config["n_encoders"]
        encoders = [
            encoder_type(name).load(model_name_or_path, subfolder=f"{subfolder}/encoder_{j}".lstrip("/"), **hub)
            for j, name in enumerate(types)
        ]
        return cls(encoders, config["n_fields"], config["fusion"], config.get("field_encoders"))


def encoder_type(name: str) -> type[nn.Module]:
    """The sub-encoder class a saved `FieldFusion` names in its `encoder_types`."""
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    from simlab.models.image_tower import ImageTower

    types = {"StaticEmbedding": StaticEmbedding, "ImageTower": ImageTower}
    if name not in types:
        raise ValueError(f"FieldFusion: unknown sub-encoder {name!r}; known: {', '.join(sorted(types))}")
    return types[name]
