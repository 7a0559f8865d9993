"""`PairHead`: the seed's classifier over (usage example, definition) embeddings (workload B).

Two branches, one for the example embedding and one for the definition embedding, each a
stack of `Linear -> tanh` layers of the configured `widths` (the seed's `[1024, 1024]`,
`[32, 1]`, `[128, 32]`, `[512, 128]`); then

- `mlp`: a linear layer over the chosen `features` of the branch outputs u and v (`u`, `v`,
  `|u - v|`, `u * v`), giving one logit;
- `cosine`: the logit `scale * cos(u, v) + bias` with a learnt scale and bias.

`forward` returns logits; `torch.sigmoid(logits)` is the probability of a match. Training uses
`BCEWithLogitsLoss`, the numerically stable form of sigmoid + BCE. The head is saved as
`head.safetensors` + `head.json` (its constructor arguments) in a folder of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

FEATURES = ("u", "v", "absdiff", "product")
KINDS = ("mlp", "cosine")


def _branch(dim: int, widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(dim, w), nn.Tanh()]
        dim = w
    return nn.Sequential(*layers)


class PairHead(nn.Module):
    """See the module docstring. `dim` is the encoder's embedding dimension."""

    def __init__(self, dim: int, kind: str = "mlp", widths: list[int] | None = None, features: list[str] | None = None):
        super().__init__()
        widths = list(widths or [])
        features = list(features or FEATURES)
        if kind not in KINDS:
            raise ValueError(f"PairHead: kind {kind!r}; choose one of {', '.join(KINDS)}")
        unknown = [f for f in features if f not in FEATURES]
        if unknown:
            raise ValueError(f"PairHead: features {unknown}; choose from {', '.join(FEATURES)}")
        self.config = {"dim": dim, "kind": kind, "widths": widths, "features": features}
        self.example = _branch(dim, widths)
        self.definition = _branch(dim, widths)
        out = widths[-1] if widths else dim
        if kind == "mlp":
            self.linear = nn.Linear(out * len(features), 1)
        else:
            self.scale = nn.Parameter(torch.tensor(5.0))
            self.bias = nn.Parameter(torch.tensor(0.0))

    def forward(self, example: torch.Tensor, definition: torch.Tensor) -> torch.Tensor:
        """Logits (batch,) for example embeddings (batch, dim) and definition embeddings (batch, dim)."""
        u, v = self.example(example), self.definition(definition)  # (batch, w) each
        if self.config["kind"] == "cosine":
            return self.scale * nn.functional.cosine_similarity(u, v, dim=-1) + self.bias  # (batch,)
        parts = {"u": u, "v": v, "absdiff": (u - v).abs(), "product": u * v}
        x = torch.cat([parts[f] for f in self.config["features"]], dim=-1)  # (batch, w * n_features)
        return self.linear(x).squeeze(-1)  # (batch,)

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        from simlab import fsutil

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "head.safetensors"))
        fsutil.write_text(folder / "head.json", json.dumps(self.config, indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> PairHead:
        from safetensors.torch import load_file

        folder = Path(folder)
        head = cls(**json.loads((folder / "head.json").read_text(encoding="utf-8")))
        head.load_state_dict(load_file(str(folder / "head.safetensors")))
        return head.eval()
