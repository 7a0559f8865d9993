"""Image backbones: a name in the config becomes a transformers ResNet without its classifier.

torchvision and timm are not used: the torchvision wheels available here are CUDA builds that
do not load against the CPU torch, so the ResNets come from transformers (`ResNetModel`), with
the architectures of `microsoft/resnet-18`, `-50` and `-152`. Offline they start from random
weights; `pretrained=True` loads the hub weights for users who can reach the hub (and fails at
once, with the fix, when it cannot). A local folder of a saved transformers ResNet also works.
Any workload that needs an image tower (multi-label classification, an image field of a pair
matcher) builds it with `build_image_backbone`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from simlab.errors import ModelLoadError


@dataclass(frozen=True)
class ResNetSpec:
    """A ResNet architecture (as in its hub config) and the hub id of its pretrained weights."""

    hub_id: str
    depths: tuple[int, ...]
    layer_type: str
    hidden_sizes: tuple[int, ...]


IMAGE_BACKBONES: dict[str, ResNetSpec] = {
    "resnet18": ResNetSpec("microsoft/resnet-18", (2, 2, 2, 2), "basic", (64, 128, 256, 512)),
    "resnet50": ResNetSpec("microsoft/resnet-50", (3, 4, 6, 3), "bottleneck", (256, 512, 1024, 2048)),
    "resnet152": ResNetSpec("microsoft/resnet-152", (3, 8, 36, 3), "bottleneck", (256, 512, 1024, 2048)),
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def is_image_backbone(name: str) -> bool:
    """True for a registered ResNet name or a folder holding a transformers ResNet config."""
    if name in IMAGE_BACKBONES:
        return True
    config = Path(name).expanduser() / "config.json"
    if config.is_file():
        import json

        return json.loads(config.read_text(encoding="utf-8")).get("model_type") == "resnet"
    return False


class PooledResNet(torch.nn.Module):
    """A transformers `ResNetModel` returning its pooled features as (batch, features)."""

    def __init__(self, resnet):
        super().__init__()
        self.resnet = resnet

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, C)
        return self.resnet(pixel_values=pixels).pooler_output.flatten(1)

    def save(self, folder: Path) -> None:
        """A transformers folder: `ResNetModel.from_pretrained(folder)` (or model.backbone: folder) reloads it."""
        self.resnet.save_pretrained(str(folder))


def build_image_backbone(name: str, pretrained: bool = False) -> tuple[PooledResNet, int]:
    """A ResNet feature extractor and its feature size: `module(pixels)` -> (batch, features).

    Args:
        name: A key of `IMAGE_BACKBONES` or a folder of a saved transformers ResNet.
        pretrained: Load `IMAGE_BACKBONES[name].hub_id` from the Hugging Face hub.

    Raises:
        ModelLoadError: an unknown name (the message lists the registered ones), or
            `pretrained` while the hub is unreachable.
    """
    from transformers import ResNetConfig, ResNetModel

    folder = Path(name).expanduser()
    if name not in IMAGE_BACKBONES:
        if (folder / "config.json").is_file():
            model = ResNetModel.from_pretrained(str(folder))
            return PooledResNet(model), model.config.hidden_sizes[-1]
        raise ModelLoadError(
            f"model.backbone: {name!r} is not an image backbone; choose one of: {', '.join(sorted(IMAGE_BACKBONES))} "
            "or a folder with a saved transformers ResNet."
        )
    spec = IMAGE_BACKBONES[name]
    if pretrained:
        from simlab.models import hub_reachable

        if not hub_reachable():
            raise ModelLoadError(
                f"model.pretrained: true needs {spec.hub_id} from the Hugging Face hub, which is unreachable here "
                "(no network, or HF_HUB_OFFLINE=1). Set model.pretrained: false to start from random weights, or "
                f"download it where the hub works (`huggingface-cli download {spec.hub_id} --local-dir "
                f"models/{name}`) and set model.backbone to that folder."
            )
        model = ResNetModel.from_pretrained(spec.hub_id)
    else:
        config = ResNetConfig(
            depths=list(spec.depths),
            layer_type=spec.layer_type,
            hidden_sizes=list(spec.hidden_sizes),
            num_channels=3,
        )
        model = ResNetModel(config)
    return PooledResNet(model), spec.hidden_sizes[-1]
