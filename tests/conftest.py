"""Shared fixtures: everything offline, tiny models built in-process."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` beside the project; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


SENTENCES = [
    "boundary layer flow over a flat plate",
    "heat transfer in supersonic flow",
    "how to bake sourdough bread at home",
    "fixing a flat bicycle tyre with a patch kit",
    "the telescope shows the rings of saturn",
    "pressure distribution on a swept wing",
]


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer BERT (hidden 32) with a WordPiece tokenizer trained on a few sentences, saved to disk."""
    from transformers import BertConfig, BertModel

    from simlab.models.wordpiece import train_wordpiece

    folder = tmp_path_factory.mktemp("tiny-bert")
    fast = train_wordpiece(SENTENCES * 5, vocab_size=200, max_length=64)
    fast.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder
