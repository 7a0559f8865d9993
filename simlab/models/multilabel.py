"""A multi-label classifier: a text or image backbone, a linear or MLP head, one logit per label.

Text backbones are the encoders of the model registry (`simlab.models.load_model`: wordllama,
a local folder, a hub name), used through sentence-transformers (`preprocess` + forward, so they
can be trained); image backbones are the ResNets of `simlab.models.images`. A frozen backbone
runs without gradients and only the head learns.

Saved as a plain folder (`save` / `load_multilabel_model`): `meta.json` (format, kind, labels,
thresholds, head), `head.safetensors`, and `encoder/` (a sentence-transformers folder or a
transformers ResNet folder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from simlab import fsutil
from simlab.errors import ConfigError
from simlab.models.frozen import FrozenFeatures
from simlab.models.images import IMAGENET_MEAN, IMAGENET_STD, build_image_backbone, is_image_backbone

MODEL_FORMAT = {"format": "simlab.multilabel_model", "format_version": 1}


def make_head(dim: int, n_labels: int, kind: str, hidden: int, dropout: float) -> nn.Module:
    """`linear`: dropout + Linear(dim, L); `mlp`: Linear(dim, hidden) + ReLU + dropout + Linear(hidden, L)."""
    if kind == "mlp":
        return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_labels))
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_labels))


class MultiLabelModel(nn.Module):
    """backbone -> features (B, D) -> head -> logits (B, L).

    `forward` takes a list of texts (`kind="text"`) or a float pixel tensor (B, 3, H, W),
    already normalised (`pixels`).
    """

    def __init__(
        self, kind: str, encoder: nn.Module, dim: int, head: nn.Module, freeze: bool = False, cache: bool = True
    ):
        super().__init__()
        self.kind, self.encoder, self.dim, self.head, self.freeze = kind, encoder, dim, head, freeze
        if freeze:
            for p in self.encoder.parameters():
                p.requires_grad_(False)
        # a frozen text encoder encodes each distinct text once (`simlab.models.frozen`); not a module: the
        # features are not saved with the weights
        self.frozen = FrozenFeatures(encoder, cache=cache) if freeze and kind == "text" else None

    def features(self, batch) -> torch.Tensor:
        if self.frozen is not None:
            return self.frozen(list(batch))
        return self._encode(batch)

    def _encode(self, batch) -> torch.Tensor:
        if self.kind == "text":
            feats = self.encoder.preprocess(list(batch))
            return self.encoder(feats)["sentence_embedding"]  # (B, D)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return self.encoder(batch)  # (B, D)

    def encode_once(self, texts) -> None:
        """Encode the texts not encoded yet (a frozen text encoder only): the head then trains for every epoch on
        the same features, without running the encoder again."""
        if self.frozen is not None:
            self.frozen.add(texts)

    def forward(self, batch) -> torch.Tensor:
        return self.head(self.features(batch))  # (B, L)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.encoder.eval()  # a frozen backbone keeps its batch-norm statistics and no dropout
        return self

    def n_parameters(self) -> tuple[int, int]:
        """(all parameters, trainable parameters)."""
        params = list(self.parameters())
        return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)

    def save(self, folder: Path, labels: list[str], thresholds: np.ndarray, info: dict) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(folder / "head.safetensors"))
        self.encoder.save(str(folder / "encoder"))
        fsutil.write_json(
            folder / "meta.json",
            MODEL_FORMAT
            | {"kind": self.kind, "dim": self.dim, "labels": labels, "thresholds": [float(t) for t in thresholds]}
            | info,
        )


def build_model(cfg, kind: str, n_labels: int, cache: bool = True) -> MultiLabelModel:
    """The model of a `MultilabelConfig` for `kind` ("text" or "image") items and `n_labels` labels; `cache`: a
    frozen text encoder encodes each text once (False: every batch, as a baseline to measure the cache against).

    Raises:
        ConfigError: an image backbone for texts, or a text encoder for images.
    """
    m = cfg.model
    image_backbone = is_image_backbone(m.backbone)
    if kind == "image":
        if not image_backbone:
            from simlab.models.images import IMAGE_BACKBONES

            raise ConfigError(
                f"model.backbone: {m.backbone!r} is not an image backbone, and the data are images; choose one of: "
                f"{', '.join(sorted(IMAGE_BACKBONES))} (or a saved ResNet folder)."
            )
        encoder, dim = build_image_backbone(m.backbone, m.pretrained)
    else:
        if image_backbone:
            raise ConfigError(
                f"model.backbone: {m.backbone!r} is an image backbone, but the data are texts; use a text encoder "
                "(e.g. wordllama, or a sentence-transformers folder)."
            )
        from simlab.config import ModelConfig
        from simlab.models import load_model

        encoder = load_model(ModelConfig(name=m.backbone, max_length=m.max_length, normalize=False))
        dim = encoder.get_embedding_dimension()
    head = make_head(dim, n_labels, m.head, m.hidden, m.dropout)
    return MultiLabelModel(kind, encoder, dim, head, m.freeze, cache)


def load_multilabel_model(folder: Path) -> tuple[MultiLabelModel, dict]:
    """A saved model and its meta.json (labels, thresholds, image size...)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = fsutil.read_meta(
        folder, MODEL_FORMAT["format"], MODEL_FORMAT["format_version"], "multilabel model", "train one with simlab run"
    )
    if meta["kind"] == "image":
        encoder, dim = build_image_backbone(str(folder / "encoder"))
    else:
        from sentence_transformers import SentenceTransformer

        encoder, dim = SentenceTransformer(str(folder / "encoder"), device="cpu"), meta["dim"]
    head_cfg = meta.get("head", {})
    head = make_head(dim, len(meta["labels"]), head_cfg.get("kind", "linear"), head_cfg.get("hidden", 256), 0.0)
    head.load_state_dict(load_file(str(folder / "head.safetensors")))
    model = MultiLabelModel(meta["kind"], encoder, dim, head)
    model.eval()
    return model, meta


def to_pixels(images: np.ndarray, augment=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, H, W) normalised with the ImageNet mean/std.

    With `augment` (an `AugmentConfig`): reflect-pad by `crop_padding` and crop back at a random
    offset per image, and flip left-right with probability 1/2 (`flip`). Written with torch ops
    because torchvision's transforms do not load here.
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0  # (B, 3, H, W)
    if augment is not None and (augment.crop_padding or augment.flip):
        b, _, h, w = x.shape
        if augment.crop_padding:
            p = augment.crop_padding
            padded = torch.nn.functional.pad(x, (p, p, p, p), mode="reflect")  # (B, 3, H+2p, W+2p)
            dy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
            dx = torch.randint(0, 2 * p + 1, (b,), generator=generator)
            x = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
        if augment.flip:
            flip = torch.rand(b, generator=generator) < 0.5
            x[flip] = x[flip].flip(-1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def info_of(cfg) -> dict:
    """What `meta.json` records of the config besides labels and thresholds."""
    return {
        "backbone": cfg.model.backbone,
        "head": {"kind": cfg.model.head, "hidden": cfg.model.hidden},
        "image_size": cfg.data.image_size,
        "loss": cfg.loss.name,
    }
