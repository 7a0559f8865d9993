"""`ImageTower`: the image field of a record as an embedding, for the pair matcher's `FieldFusion`.

A vision backbone from transformers (ResNet-18/50/152 by name, randomly initialised or, with
`pretrained`, Microsoft's ImageNet weights from the hub; a CLIP vision model or any other
transformers vision model by hub name or local folder), its pooled output projected by a
linear layer to the text encoders' dimension so that fields fuse by `concat` or `mean`.

Its input is the image path (the field's value, made absolute when the records are read);
an empty path (a record without an image) is a black image. Images are resized to
`image_size` squared and normalised with the ImageNet mean and standard deviation: the
few lines below do it directly because torchvision, whose transforms would be the usual
choice, is not loadable with the CPU torch build this project targets, and the backbones'
own image processors would tie the input size to the checkpoint.

The tower saves into its folder (`vision/` with the backbone's `save_pretrained`,
`projection.safetensors`, `config.json`) and loads back with `ImageTower.load`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from sentence_transformers.base.modules.input_module import InputModule
from torch import nn

from simlab.errors import ConfigError

RESNETS: dict[str, dict[str, Any]] = {
    "resnet18": {"depths": [2, 2, 2, 2], "hidden_sizes": [64, 128, 256, 512], "layer_type": "basic"},
    "resnet50": {"depths": [3, 4, 6, 3], "hidden_sizes": [256, 512, 1024, 2048], "layer_type": "bottleneck"},
    "resnet152": {"depths": [3, 8, 36, 3], "hidden_sizes": [256, 512, 1024, 2048], "layer_type": "bottleneck"},
}
"""ResNet shapes by name, as the `microsoft/resnet-*` checkpoints of the hub have them."""
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def vision_backbone(name: str, pretrained: bool = False) -> nn.Module:
    """A transformers vision model whose output has a `pooler_output`.

    Args:
        name: A key of `RESNETS`, a local folder with a saved transformers vision model, or a
            hub name (e.g. `openai/clip-vit-base-patch32`: its vision tower is used).
        pretrained: For a `RESNETS` name: load `microsoft/resnet-<n>` from the hub instead of
            initialising randomly.

    Raises:
        ConfigError: the hub is needed but unreachable, or `name` is neither a ResNet name,
            nor a folder, nor a hub name.
    """
    from transformers import AutoConfig, AutoModel, CLIPVisionModel, ResNetConfig, ResNetModel

    from simlab.models import hub_reachable

    if name in RESNETS and not pretrained:
        return ResNetModel(ResNetConfig(embedding_size=64, **RESNETS[name]))
    hub_name = f"microsoft/resnet-{name.removeprefix('resnet')}" if name in RESNETS else name
    if not os.path.isdir(hub_name) and not hub_reachable():
        raise ConfigError(
            f"model.image.backbone: {name!r}{' (pretrained)' if name in RESNETS else ''} needs the Hugging Face "
            f"hub ({hub_name}), which is unreachable; use one of {', '.join(sorted(RESNETS))} with "
            "model.image.pretrained: false, or a local model folder."
        )
    config = AutoConfig.from_pretrained(hub_name)
    if config.model_type == "clip":
        return CLIPVisionModel.from_pretrained(hub_name)
    return ResNetModel.from_pretrained(hub_name) if name in RESNETS else AutoModel.from_pretrained(hub_name)


def _pooled_size(vision: nn.Module) -> int:
    config = vision.config
    sizes = getattr(config, "hidden_sizes", None)
    return int(sizes[-1]) if sizes else int(config.hidden_size)


class ImageTower(InputModule):
    """Image path -> `sentence_embedding` of size `dim`; see the module docstring."""

    config_keys = ["backbone", "dim", "image_size"]
    save_in_root = False

    def __init__(self, backbone: str, dim: int, image_size: int = 64, pretrained: bool = False, vision=None):
        super().__init__()
        self.backbone, self.dim, self.image_size = backbone, int(dim), int(image_size)
        self.vision = vision if vision is not None else vision_backbone(backbone, pretrained)
        self.projection = nn.Linear(_pooled_size(self.vision), self.dim)

    def get_embedding_dimension(self) -> int:
        return self.dim

    def load_image(self, path: str) -> torch.Tensor:
        """One image as a normalised `(3, image_size, image_size)` tensor; `""` gives zeros."""
        import numpy as np
        from PIL import Image

        if not path:
            return torch.zeros(3, self.image_size, self.image_size)
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((self.image_size, self.image_size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)  # (3, H, W)
        mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
        return (x - mean) / std

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs) -> dict[str, torch.Tensor]:
        if not inputs:
            return {"pixel_values": torch.zeros(0, 3, self.image_size, self.image_size)}
        return {"pixel_values": torch.stack([self.load_image(p.strip()) for p in inputs])}  # (batch, 3, H, W)

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        pooled = self.vision(pixel_values=features["pixel_values"]).pooler_output.flatten(1)  # (batch, C)
        features["sentence_embedding"] = self.projection(pooled)  # (batch, dim)
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        from safetensors.torch import save_file

        os.makedirs(output_path, exist_ok=True)
        self.save_config(output_path)
        self.vision.save_pretrained(os.path.join(output_path, "vision"))
        save_file(self.projection.state_dict(), os.path.join(output_path, "projection.safetensors"))

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs) -> ImageTower:
        from safetensors.torch import load_file
        from transformers import AutoModel

        folder = os.path.join(model_name_or_path, subfolder)
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        tower = cls(vision=AutoModel.from_pretrained(os.path.join(folder, "vision")), **config)
        tower.projection.load_state_dict(load_file(os.path.join(folder, "projection.safetensors")))
        return tower
